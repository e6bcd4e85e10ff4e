"""Multi-scale models (finest output first) run through deblur() and the ONNX export."""

import numpy as np
import torch

from deblurkit.infer import deblur
from deblurkit.infer.backends import export_onnx
from deblurkit.models import create
from deblurkit.train.losses import build_loss


def test_multiscale_model_runs_through_deblur_and_onnx():
    torch.manual_seed(0)
    model = create("nah2017", size="tiny").eval()
    img = np.random.default_rng(0).random((37, 45, 3)).astype(np.float32)
    out = deblur(img, model=model, backend="torch")
    assert out.shape == img.shape and out.dtype == np.float32
    with torch.no_grad():
        ref = model(torch.from_numpy(img).permute(2, 0, 1)[None])[0][0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, np.clip(ref, 0, 1), atol=1e-5)
    assert len(export_onnx(model)) > 0  # checked against torch inside


def test_noroozi_loss_is_registered():
    loss = build_loss([{"name": "noroozi"}])
    t = torch.rand(1, 3, 16, 16)
    outs = [t, torch.nn.functional.interpolate(t, scale_factor=0.5, mode="bilinear")]
    assert float(loss(outs, t)) >= 0.0
