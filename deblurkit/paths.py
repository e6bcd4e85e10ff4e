"""Where deblurkit finds things on disk: the shared data folder and the package's own assets."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def shared_data() -> Path:
    """The data folder: ``$DEBLURKIT_DATA`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get("DEBLURKIT_DATA")
    return Path(env) if env else (REPO_DIR.parent / "shared" / "data")


def samples_dir() -> Path:
    """Bundled sample images shipped with the package."""
    return PACKAGE_DIR / "samples"


def weights_dir() -> Path:
    """Bundled trained weights (safetensors) and their registry JSON."""
    return PACKAGE_DIR / "weights"
