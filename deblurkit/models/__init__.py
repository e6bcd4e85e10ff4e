"""deblurkit.models: the model registry and the learned end-to-end deblurring networks.

The registry (:data:`MODELS`) is a plain dict filled below by explicit :func:`register` calls, one
block per model file; add a model by importing its file here and registering its specs. Nothing is
discovered by scanning folders.

    >>> from deblurkit import models
    >>> net = models.create("nafnet")                 # untrained, default CPU-fast size
    >>> net = models.create("nafnet", size="tiny")    # a named preset
    >>> net = models.load_pretrained("default")       # shipped weights, sha256 checked
"""

from __future__ import annotations

from . import nafnet as _nafnet
from .registry import (
    MODELS,
    ModelSpec,
    count_parameters,
    create,
    list_models,
    load_pretrained,
    model_options,
    register,
    resolve_weights_entry,
    weights_registry,
)

__all__ = ["MODELS", "ModelSpec", "register", "create", "list_models", "load_pretrained",
           "model_options", "count_parameters", "weights_registry", "resolve_weights_entry"]

# --- nafnet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022) ----------------
_NAFNET_PAPER = "L. Chen, X. Chu, X. Zhang, J. Sun, Simple Baselines for Image Restoration, ECCV 2022"
_NAFNET_BASE = {"in_channels": 3, "dw_expand": 2, "ffn_expand": 2, "pad_mode": "reflect"}
_NAFNET_TINY = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1],
                "pixel_unshuffle": 1}
# The CPU-fast default (2.2 M parameters): a space-to-depth stem so that no block runs at full
# resolution, no encoder block at half resolution (both memory-bound on a 2-core CPU: a 16-channel
# block at full resolution costs ~1 s on 1280x720), one decoder block there to refine detail, and
# most blocks deep where they are cheap; 1/32 resolution at the bottom for a large receptive field.
_NAFNET_DEFAULT = {"width": 16, "enc_blocks": [0, 1, 2, 6], "middle_blocks": 2,
                   "dec_blocks": [1, 1, 1, 1], "pixel_unshuffle": 2}
# The paper's GoPro layouts (megvii-research/NAFNet options/test/GoPro/NAFNet-width{32,64}.yml).
_NAFNET_GOPRO = {"enc_blocks": [1, 1, 1, 28], "middle_blocks": 1, "dec_blocks": [1, 1, 1, 1],
                 "pixel_unshuffle": 1}

register(ModelSpec(
    name="nafnet",
    constructor=_nafnet.NAFNet,
    defaults={**_NAFNET_BASE, **_NAFNET_DEFAULT},
    description="NAFNet-style U-Net (LayerNorm, SimpleGate, simplified channel attention), "
                "CPU-fast default size",
    paper=_NAFNET_PAPER,
    sizes={
        "tiny": _NAFNET_TINY,
        "default": _NAFNET_DEFAULT,
        "w32": {"width": 32, **_NAFNET_GOPRO},
        "w64": {"width": 64, **_NAFNET_GOPRO},
    },
))
register(ModelSpec(
    name="nafnet-w32",
    constructor=_nafnet.NAFNet,
    defaults={**_NAFNET_BASE, "width": 32, **_NAFNET_GOPRO},
    description="NAFNet, the paper's GoPro width-32 layout (enc [1,1,1,28], middle 1, dec [1,1,1,1])",
    paper=_NAFNET_PAPER,
    sizes={"tiny": _NAFNET_TINY},
))
register(ModelSpec(
    name="nafnet-w64",
    constructor=_nafnet.NAFNet,
    defaults={**_NAFNET_BASE, "width": 64, **_NAFNET_GOPRO},
    description="NAFNet, the paper's GoPro width-64 layout (enc [1,1,1,28], middle 1, dec [1,1,1,1])",
    paper=_NAFNET_PAPER,
    sizes={"tiny": _NAFNET_TINY},
))
