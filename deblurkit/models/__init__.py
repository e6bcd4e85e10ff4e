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
_NAFNET_BASE = {"in_channels": 3, "dw_expand": 2, "ffn_expand": 2, "pad_mode": "reflect", "identity_init": True}
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

from . import kupyn2018 as _kupyn2018  # noqa: E402
from . import ramakrishnan2017 as _ramakrishnan2017  # noqa: E402
from . import zhang2018 as _zhang2018  # noqa: E402

# --- zhang2018 (Zhang et al., spatially variant RNNs, CVPR 2018; survey eq. 22) ----------------
_ZHANG_PAPER = {"feat_channels": 16, "rnn_channels": 32, "rnn_layers": 4, "feat_kernels": [11, 7],
                "dec_kernels": [9, 5], "guide_width": 64, "guide_convs": [2, 2, 3, 3], "gate_kernel": 3}
_ZHANG_CPU = {"feat_channels": 8, "rnn_channels": 16, "rnn_layers": 4, "feat_kernels": [5, 3],
              "dec_kernels": [3, 3], "guide_width": 8, "guide_convs": [1, 1, 2, 2], "gate_kernel": 1}
_ZHANG_TINY = {"feat_channels": 4, "rnn_channels": 4, "rnn_layers": 2, "feat_kernels": [3, 3],
               "dec_kernels": [3, 3], "guide_width": 4, "guide_convs": [1, 1, 1, 1], "gate_kernel": 1}
register(ModelSpec(
    name="zhang2018",
    constructor=_zhang2018.ZhangSVRNN,
    defaults={"in_channels": 3, **_ZHANG_CPU, "global_residual": False, "pad_mode": "reflect"},
    description="Spatially variant RNN deblurring: feature CNN, weight-generation encoder-decoder, "
                "eq. 22 recurrences in four directions with conv fusion; CPU size by default",
    paper="J. Zhang, J. Pan, J. Ren, Y. Song, L. Bao, R. W. H. Lau, M.-H. Yang, Dynamic Scene "
          "Deblurring Using Spatially Variant Recurrent Neural Networks, CVPR 2018",
    sizes={"paper": _ZHANG_PAPER, "cpu": _ZHANG_CPU, "tiny": _ZHANG_TINY},
))

# --- ramakrishnan2017 (Ramakrishnan et al., Deep Generative Filter, ICCVW 2017) ---------------
_RAMA_PAPER = {"growth_rate": 64, "num_layers": 10, "pixel_unshuffle": 1}
_RAMA_CPU = {"growth_rate": 8, "num_layers": 6, "pixel_unshuffle": 2}
_RAMA_TINY = {"growth_rate": 4, "num_layers": 3, "pixel_unshuffle": 1}
register(ModelSpec(
    name="ramakrishnan2017",
    constructor=_ramakrishnan2017.DeepGenerativeFilter,
    defaults={"in_channels": 3, **_RAMA_CPU, "dilations": [1, 2], "dropout": 0.5, "global_skip": True},
    description="DenseNet generator with alternating dilated convolutions (1, 2) and a global skip "
                "connection; CPU size (space-to-depth stem) by default",
    paper="S. Ramakrishnan, S. Pachori, A. Gangopadhyay, S. Raman, Deep Generative Filter for "
          "Motion Deblurring, ICCV Workshops 2017",
    sizes={"paper": _RAMA_PAPER, "cpu": _RAMA_CPU, "tiny": _RAMA_TINY},
))

# --- kupyn2018 (Kupyn et al., DeblurGAN, CVPR 2018) --------------------------------------------
_KUPYN_PAPER = {"width": 64, "n_blocks": 9}
_KUPYN_CPU = {"width": 12, "n_blocks": 9}
_KUPYN_TINY = {"width": 4, "n_blocks": 2}
register(ModelSpec(
    name="kupyn2018",
    constructor=_kupyn2018.DeblurGANGenerator,
    defaults={"in_channels": 3, **_KUPYN_CPU, "dropout": 0.5, "clamp_output": True, "pad_mode": "reflect"},
    description="DeblurGAN ResNet generator (7x7 conv, 2 strided convs, ResBlocks with InstanceNorm "
                "and dropout, 2 transposed convs, tanh residual); CPU size by default",
    paper="O. Kupyn, V. Budzan, M. Mykhailych, D. Mishkin, J. Matas, DeblurGAN: Blind Motion "
          "Deblurring Using Conditional Adversarial Networks, CVPR 2018",
    sizes={"paper": _KUPYN_PAPER, "cpu": _KUPYN_CPU, "tiny": _KUPYN_TINY},
))

from . import nah2017 as _nah2017  # noqa: E402
from . import noroozi2017 as _noroozi2017  # noqa: E402
from . import tao2018 as _tao2018  # noqa: E402

register(ModelSpec(
    name="nah2017", constructor=_nah2017.DeepDeblur, defaults=_nah2017.DEFAULTS,
    description="DeepDeblur: 3-scale Gaussian pyramid, 19 ResBlocks per scale, up-convolution "
                "between scales; outputs finest first; CPU size by default",
    paper=_nah2017.PAPER,
    sizes={"paper": _nah2017.PAPER_SIZE, "cpu": _nah2017.CPU_SIZE, "tiny": _nah2017.TINY_SIZE},
))
register(ModelSpec(
    name="tao2018", constructor=_tao2018.SRNDeblurNet, defaults=_tao2018.DEFAULTS,
    description="SRN-DeblurNet: encoder / ConvLSTM / decoder with weights shared across 3 scales; "
                "outputs finest first; CPU size by default",
    paper=_tao2018.PAPER,
    sizes={"paper": _tao2018.PAPER_SIZE, "cpu": _tao2018.CPU_SIZE, "tiny": _tao2018.TINY_SIZE},
))
register(ModelSpec(
    name="noroozi2017", constructor=_noroozi2017.NorooziNet, defaults=_noroozi2017.DEFAULTS,
    description="Three pyramid stages with residuals added at 1/4, 1/2 and 1 (eq. 21); outputs "
                "finest first; CPU size by default",
    paper=_noroozi2017.PAPER,
    sizes={"paper": _noroozi2017.PAPER_SIZE, "cpu": _noroozi2017.CPU_SIZE,
           "tiny": _noroozi2017.TINY_SIZE},
))
