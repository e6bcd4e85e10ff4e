"""Atomic writes: write a temporary file in the target folder, then rename it over the target."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator


def _current_umask() -> int:
    # os.umask can only be read by setting it; do it once, at import, before any threads write.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``: renamed to ``path`` on success, deleted on error.

    The temporary file (``.<name>.tmp-XXXX<suffix>`` in the target's folder, created empty) keeps
    the target's suffix (or ``suffix``) so that writers that choose a format from the extension
    (Pillow, numpy) behave as they would on the target. No partial file is ever left at ``path``: a
    reader sees either the old file or the complete new one, and after an exception in the block
    (or a failed rename) the old file is untouched and the temporary file is gone.

    The new file gets the permissions of the file it replaces, or ``0o666`` less the umask for a
    new file (``tempfile.mkstemp`` alone would leave ``0o600``), and is flushed to disk (fsync)
    before the rename. Missing parent folders are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.tmp-", suffix=suffix if suffix is not None else target.suffix,
        dir=target.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_UMASK
        os.chmod(tmp_path, mode)
        _fsync(tmp_path)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
