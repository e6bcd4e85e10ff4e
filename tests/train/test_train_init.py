"""``model.init``: a run starts from given weights; a wrong file is one clear config error."""

import pytest
import torch
from safetensors.torch import save_file

from deblurkit.errors import ConfigError
from deblurkit.models import create
from deblurkit.train.config import config_from_dict
from deblurkit.train.engine import train


def _cfg(tmp_path, init):
    from PIL import Image
    import numpy as np

    photos = tmp_path / "photos"
    photos.mkdir(exist_ok=True)
    y, x = np.mgrid[0:48, 0:48]
    Image.fromarray(np.stack([x * 5, y * 5, (x + y) * 2], 2).astype(np.uint8)).save(photos / "a.png")
    return config_from_dict({
        "name": "init", "model": {"name": "nafnet", "options": {"size": "tiny"}, "init": str(init)},
        "data": {"train_dir": str(photos), "crop": 16, "batch_size": 1, "mix": {"shake": 1.0},
                 "generators": {"shake": {"size": [3, 5]}}},
        "val": {"dir": None}, "steps": 1, "optim": {"lr": 1e-12, "min_lr": 0.0}, "tensorboard": False,
        "out_dir": str(tmp_path / "run"), "device": "cpu",
    })


def test_init_weights_are_the_starting_point(tmp_path):
    torch.manual_seed(123)
    src = create("nafnet", size="tiny")
    with torch.no_grad():
        for p in src.parameters():
            p.add_(0.5)  # far from any fresh initialisation
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "w.safetensors"))
    train(_cfg(tmp_path, tmp_path / "w.safetensors"), progress=False)
    from safetensors.torch import load_file

    ck = sorted((tmp_path / "run" / "checkpoints").glob("step_*"))[-1]
    got = load_file(str(ck / "model.safetensors"))
    for k, v in src.state_dict().items():  # one step at lr 1e-12 leaves them in place
        assert torch.allclose(got[k], v, atol=1e-6), k


def test_init_missing_or_unfitting_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"model.init: .*nope.safetensors: file not found"):
        train(_cfg(tmp_path, tmp_path / "nope.safetensors"), progress=False)
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ConfigError, match="model.init: .*do not fit"):
        train(_cfg(tmp_path, tmp_path / "other.safetensors"), progress=False)
