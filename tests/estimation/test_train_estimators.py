"""train_estimators: runs on a tiny constructed photo folder, resumes exactly, writes loadable
safetensors, evaluates, and refuses bad command lines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from deblurkit.errors import ConfigError, DeblurkitError
from deblurkit.estimation import train_estimators as te
from deblurkit.estimation.chakrabarti2016 import Chakrabarti2016Estimator
from deblurkit.estimation.schuler2014 import Schuler2014Estimator
from deblurkit.models.weights import file_sha256

TINY = {
    "schuler2014": {"size": "tiny", "batch": 2, "crop": 64, "kernel_size": 15, "size_range": [3, 9],
                    "warmup_steps": 2},
    "chakrabarti2016": {"size": "tiny", "batch": 4, "size_range": [3, 9], "whitening_patches": 250,
                        "warmup_steps": 2},
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, astronaut):
    root = tmp_path_factory.mktemp("data")
    (root / "train").mkdir()
    for i in range(10):
        y, x = 20 * i, 15 * i
        tile = (astronaut[y:y + 140, x:x + 150] * 255).astype(np.uint8)
        Image.fromarray(tile).save(root / "train" / f"p{i:02d}.png")
    return root / "train"


def test_split_holds_out_every_tenth(data_dir):
    train, held = te.split_photos(data_dir)
    assert [p.name for p in held] == ["p00.png"]
    assert len(train) == 9 and not set(train) & set(held)


@pytest.mark.parametrize("name", ["schuler2014", "chakrabarti2016"])
def test_train_resume_exact_and_weights_load(tmp_path, data_dir, name):
    msgs = []
    a = te.train(name, tmp_path / "a", steps=2, data=data_dir, recipe=TINY[name], log_every=1,
                 progress=msgs.append)
    with pytest.raises(DeblurkitError, match="--resume"):
        te.train(name, tmp_path / "a", steps=3, data=data_dir, recipe=TINY[name])
    a = te.train(name, tmp_path / "a", steps=3, resume=True, data=data_dir, recipe=TINY[name], log_every=1)
    b = te.train(name, tmp_path / "b", steps=3, data=data_dir, recipe=TINY[name], log_every=1)
    assert a["step"] == b["step"] == 3
    wa, wb = load_file(a["weights"]), load_file(b["weights"])
    assert set(wa) == set(wb)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=1e-6)
    assert a["sha256"] == file_sha256(a["weights"])
    rows = (tmp_path / "a" / "log.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]
    est_cls = Schuler2014Estimator if name == "schuler2014" else Chakrabarti2016Estimator
    est = est_cls(weights=a["weights"], kernel_size=15)
    k = est.estimate_kernel(np.full((64, 64), 0.5, np.float32) + np.eye(64, dtype=np.float32) * 0.3)
    assert k.shape == (15, 15) and abs(float(k.sum()) - 1) < 1e-5


def test_evaluate_reports_baselines(data_dir):
    out = te.evaluate("schuler2014", None, images=1, data=data_dir, crop=96, size_range=(5, 9),
                      kernel_size=15, progress=lambda m: None, options={"stages": 1, "features": 2,
                                                                        "filters": 4, "filter_size": 3,
                                                                        "hidden_layers": 0})
    for key in ("psnr_blur", "psnr_est", "psnr_true", "psnr_delta", "ratio_est", "ratio_delta",
                "kernel_sse", "kernel_sse_delta", "similarity_est", "similarity_delta", "seconds"):
        assert np.isfinite(out[key])
    assert abs(out["ratio_true"] - 1) < 1e-9          # the reference against itself


def test_command_line_refusals(tmp_path, data_dir, capsys):
    assert te.main(["schuler2014", "--out", str(tmp_path / "r"), "--data", str(data_dir)]) == 2
    assert "--minutes or --steps" in capsys.readouterr().err
    assert te.main(["chakrabarti2016", "--out", str(tmp_path / "r"), "--steps", "1", "--size", "huge",
                    "--data", str(data_dir)]) == 2
    assert "--size" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="model"):
        te.train("nafnet", tmp_path / "x", steps=1)
    with pytest.raises(DeblurkitError, match="at least 10"):
        te.split_photos(tmp_path)
