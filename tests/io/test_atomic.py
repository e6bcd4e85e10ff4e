"""Atomic writes: a failure leaves neither a partial target nor a temporary file."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import deblurkit.io.image as image_mod
from deblurkit.errors import ImageError
from deblurkit.io import atomic_path, read_array, write_image


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_success_renames_and_uses_target_suffix(tmp_path):
    target = tmp_path / "sub" / "out.png"  # parent folder is created
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".png" and tmp != target
        assert tmp.exists()  # created empty, owned by us
        tmp.write_bytes(b"new")
        assert not target.exists()  # nothing visible before the block ends
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]


def test_exception_in_block_removes_temp_and_keeps_old_file(tmp_path):
    target = tmp_path / "out.npy"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target, suffix=".tmpx") as tmp:
            assert tmp.suffix == ".tmpx"
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.npy"]


def test_failed_rename_onto_a_directory_leaves_nothing(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"] and not any(target.iterdir())


def test_permissions_new_file_follows_umask_and_replacement_keeps_mode(tmp_path):
    new = tmp_path / "new.bin"
    with atomic_path(new) as tmp:
        tmp.write_bytes(b"1")
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~_current_umask()
    old = tmp_path / "old.bin"
    old.write_bytes(b"0")
    old.chmod(0o640)
    with atomic_path(old) as tmp:
        tmp.write_bytes(b"1")
    assert stat.S_IMODE(old.stat().st_mode) == 0o640 and old.read_bytes() == b"1"


def test_write_image_failing_mid_write_leaves_no_file(tmp_path, monkeypatch, astronaut):
    def broken_writer(tmp, *args, **kwargs):
        tmp.write_bytes(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(image_mod, "_write8", broken_writer)
    target = tmp_path / "out.png"
    with pytest.raises(ImageError) as exc:
        write_image(target, astronaut[:8, :8])
    assert str(exc.value) == f"{target}: cannot write (No space left on device)"
    assert list(tmp_path.iterdir()) == []


def test_write_image_failure_keeps_existing_target_intact(tmp_path, monkeypatch, astronaut):
    target = tmp_path / "out.png"
    write_image(target, astronaut[:8, :8])
    before = target.read_bytes()
    with pytest.raises(ImageError):  # refused before writing
        write_image(target, np.full((8, 8, 3), np.nan, np.float32))

    def broken_writer(tmp, *args, **kwargs):
        tmp.write_bytes(b"garbage")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(image_mod, "_write8", broken_writer)
    with pytest.raises(ImageError, match="Input/output error"):  # fails while writing
        write_image(target, astronaut[8:16, :8])
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    np.testing.assert_allclose(read_array(target), astronaut[:8, :8], atol=0.5 / 255)
