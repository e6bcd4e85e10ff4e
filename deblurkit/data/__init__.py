"""deblurkit.data: datasets of blurred/sharp pairs for training and evaluation.

- :mod:`.folders`: paired folders and the layouts of the benchmarks the survey reports (Sahu, Lenka,
  Sa, arXiv 1907.10128, §III-B/C): GoPro (Nah et al. 2017), Köhler et al. 2012, Levin et al. 2009,
  Lai et al. 2016; plus :class:`ImageFolder` for inference.
- :mod:`.synthetic`: training pairs synthesised on the fly from sharp photos (survey eq. 1,
  ``B = K * I + N``) through a small :class:`BlurGenerator` protocol.
- :mod:`.augment`: the crop / mirror / quarter-turn applied alike to every image of an item, and
  the per-item seeding that makes any number of DataLoader workers give the same items.

Items are dicts of float32 tensors in [0, 1], images ``(C, H, W)``.
"""

from .augment import (
    PairAugment,
    crop_box,
    dihedral,
    dihedral_inverse,
    dihedral_kernel,
    dihedral_torch,
    item_rng,
    parse_size,
    to_chw,
)
from .folders import (
    IMAGE_EXTENSIONS,
    FolderDataset,
    GoProDataset,
    ImageFolder,
    KohlerDataset,
    LaiDataset,
    LevinDataset,
    PairedFolder,
    list_images,
    match_pairs,
)
from .synthetic import KERNEL_KINDS, BlurGenerator, SyntheticBlurDataset, UniformKernelBlur

__all__ = [
    "IMAGE_EXTENSIONS",
    "KERNEL_KINDS",
    "BlurGenerator",
    "FolderDataset",
    "GoProDataset",
    "ImageFolder",
    "KohlerDataset",
    "LaiDataset",
    "LevinDataset",
    "PairAugment",
    "PairedFolder",
    "SyntheticBlurDataset",
    "UniformKernelBlur",
    "crop_box",
    "dihedral",
    "dihedral_inverse",
    "dihedral_kernel",
    "dihedral_torch",
    "item_rng",
    "list_images",
    "match_pairs",
    "parse_size",
    "to_chw",
]
