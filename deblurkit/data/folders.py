"""Datasets on disk: paired folders and the layouts of GoPro, Köhler, Levin and Lai.

Every dataset is a ``torch.utils.data.Dataset`` whose items are dicts of float32 tensors in [0, 1]:

- ``"blur"``: ``(C, H, W)`` the blurred photo (``"image"`` for :class:`ImageFolder`);
- ``"sharp"``: ``(C, H, W)`` its ground truth, where there is one;
- ``"sharp_frames"``: ``(N, C, H, W)`` for :class:`KohlerDataset` (the recorded sharp frames);
- ``"kernel"``: ``(kh, kw)`` for :class:`LevinDataset` (true convolution orientation);
- ``"name"``: a ``str`` that identifies the item (relative path without extension), plus paths.

Files are listed and paired when the dataset is built, without decoding a pixel: ``dataset.pairs``
is a list of ``(blur_path, sharp_path)`` (``sharp_path`` is ``None`` where there is no ground
truth). Images are decoded by :func:`deblurkit.io.read_image` when an item is asked for.

Common keyword options (all datasets):

- ``crop``: ``None``, ``s`` or ``(h, w)``: crop every image of the item to that size;
- ``random_crop``: random (default) or centred window;
- ``flip``: random mirror / quarter turns (:class:`deblurkit.data.augment.PairAugment`), applied
  alike to blur, sharp, frames and kernel;
- ``seed`` and :meth:`set_epoch`: an item's randomness comes only from ``(seed, epoch, index)``
  (:func:`deblurkit.data.augment.item_rng`), so any number of DataLoader workers gives the same items;
- ``transform``: a callable ``dict -> dict`` applied last, to the dict of tensors.

Hidden files (names starting with ``.``, e.g. half-written temporary files) are ignored. Image files
are recognised by extension: see :data:`IMAGE_EXTENSIONS`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DeblurkitError, ImageError
from ..io.image import IMAGE_EXTENSIONS as _READABLE
from .augment import PairAugment, item_rng, to_chw

#: extensions (lower case) recognised as images: those :func:`deblurkit.io.read_image` decodes.
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(sorted(_READABLE))

_SHOW = 5  # how many unmatched names an error message lists


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (by extension, case-insensitive), sorted by relative path.

    Hidden files and folders (names starting with ``.``) are skipped. A missing folder raises
    :class:`DeblurkitError` naming it; an empty result is returned as ``[]``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DeblurkitError(f"{folder}: not a folder")
    found: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found.extend(Path(dirpath) / f for f in filenames if _is_image(f))
    else:
        found = [p for p in folder.iterdir() if p.is_file() and _is_image(p.name)]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _is_image(filename: str) -> bool:
    return not filename.startswith(".") and os.path.splitext(filename)[1].lower() in IMAGE_EXTENSIONS


def _key(path: Path, folder: Path) -> str:
    """Relative path without extension, '/'-separated: the name that pairs files across folders."""
    return path.relative_to(folder).with_suffix("").as_posix()


def _keyed(folder: Path, what: str) -> dict[str, Path]:
    files = list_images(folder)
    if not files:
        raise DeblurkitError(
            f"{what} {folder}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    keyed: dict[str, Path] = {}
    for path in files:
        key = _key(path, folder)
        if key in keyed:
            raise DeblurkitError(
                f"{what} {folder}: two images share the name {key!r} "
                f"({keyed[key].name}, {path.name}); cannot tell which one to pair")
        keyed[key] = path
    return keyed


def match_pairs(blur_dir: Path, sharp_dir: Path, what: str) -> list[tuple[str, Path, Path]]:
    """Pair ``blur_dir`` and ``sharp_dir`` files by relative path without extension (recursive).

    Returns ``[(name, blur_path, sharp_path), ...]`` sorted by name. An empty folder, a name used
    twice (``a.png`` and ``a.jpg``) or any unpaired file raises :class:`DeblurkitError` naming the
    folders and the first unmatched names.
    """
    blurs = _keyed(blur_dir, what)
    sharps = _keyed(sharp_dir, what)
    only_blur = sorted(set(blurs) - set(sharps))
    only_sharp = sorted(set(sharps) - set(blurs))
    if only_blur or only_sharp:
        parts = []
        if only_blur:
            parts.append(f"{len(only_blur)} in {blur_dir} have no partner in {sharp_dir} "
                         f"(first: {', '.join(only_blur[:_SHOW])})")
        if only_sharp:
            parts.append(f"{len(only_sharp)} in {sharp_dir} have no partner in {blur_dir} "
                         f"(first: {', '.join(only_sharp[:_SHOW])})")
        raise DeblurkitError(f"{what}: unmatched images: " + "; ".join(parts))
    return [(key, blurs[key], sharps[key]) for key in sorted(blurs)]


def _read(path: Path) -> np.ndarray:
    """Decode one image to ``H x W x C`` float32 in [0, 1] with :func:`deblurkit.io.read_image`."""
    from ..io import read_image

    return np.asarray(read_image(path).pixels, dtype=np.float32)


def _read_kernel(path: Path) -> np.ndarray:
    from ..io import read_kernel

    return np.asarray(read_kernel(path), dtype=np.float32)


def _need_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DeblurkitError(f"{what}: {path} is not a folder")
    return path


class FolderDataset(Dataset):
    """Base of the datasets of this module: augmentation, seeding, tensor conversion.

    Subclasses fill ``self.pairs`` and implement ``_arrays(index) -> (images, kernels, meta)``
    where ``images`` maps keys to ``H x W x C`` (or ``N x H x W x C``) float32 arrays.
    """

    pairs: list[tuple[Path, Path | None]]

    def __init__(
        self,
        *,
        crop: int | tuple[int, int] | None = None,
        random_crop: bool = True,
        flip: bool = False,
        seed: int = 0,
        transform: Callable[[dict], dict] | None = None,
    ) -> None:
        self.augment = PairAugment(crop=crop, random_crop=bool(random_crop), flip=bool(flip))
        item_rng(seed, 0, 0)  # validates seed
        if transform is not None and not callable(transform):
            raise ConfigError(f"transform: expected a callable dict -> dict, got {transform!r}")
        self.seed = int(seed)
        self.epoch = 0
        self.transform = transform

    def set_epoch(self, epoch: int) -> None:
        """Use the random crops/flips of ``epoch`` (a non-negative int) from now on.

        With DataLoader workers, call it before iterating (workers copy the dataset when an
        iterator starts; with ``persistent_workers=True`` they keep the old epoch).
        """
        item_rng(self.seed, epoch, 0)  # validates epoch
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        index = self._index(index)
        images, kernels, meta = self._arrays(index)
        if self.augment.active:
            images, kernels = self.augment(
                images, item_rng(self.seed, self.epoch, index), kernels, what=str(meta.get("name")))
        else:
            sizes = {k: a.shape[-3:-1] for k, a in images.items()}
            if len(set(sizes.values())) > 1:
                listed = ", ".join(f"{k} {h}x{w}" for k, (h, w) in sizes.items())
                raise ImageError(f"{meta.get('name')}: images differ in size ({listed}); "
                                 "a pair must be aligned")
        item = {k: to_chw(a) for k, a in images.items()}
        item.update({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
                     for k, v in kernels.items()})
        item.update(meta)
        item = self._complete(item)
        return self.transform(item) if self.transform is not None else item

    def _complete(self, item: dict) -> dict:
        """Hook: add entries derived from the augmented tensors (before ``transform``)."""
        return item

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an int, got {index!r}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {type(self).__name__} of {n} items")
        return int(index) % n

    def _arrays(self, index: int):  # pragma: no cover - abstract
        raise NotImplementedError


class PairedFolder(FolderDataset):
    """Pairs ``root/blur/**`` with ``root/sharp/**`` by relative path without extension.

    ``root/blur/a/x.png`` pairs with ``root/sharp/a/x.png`` (or ``x.jpg``, ...). The folder names can
    be changed (``blur_dir="input", sharp_dir="target"`` for RealBlur/HIDE-style layouts).
    An empty folder or any unpaired file raises :class:`DeblurkitError` naming the folder and the
    first unmatched names.

    Items: ``{"blur": (C,H,W), "sharp": (C,H,W), "name": str, "blur_path": str, "sharp_path": str}``.
    """

    def __init__(self, root: str | os.PathLike, *, blur_dir: str = "blur", sharp_dir: str = "sharp",
                 **options) -> None:
        super().__init__(**options)
        self.root = _need_dir(Path(root), "PairedFolder root")
        what = f"PairedFolder {self.root}"
        triples = match_pairs(_need_dir(self.root / blur_dir, what),
                              _need_dir(self.root / sharp_dir, what), what)
        self.names = [t[0] for t in triples]
        self.pairs = [(t[1], t[2]) for t in triples]

    def _arrays(self, index: int):
        blur_path, sharp_path = self.pairs[index]
        images = {"blur": _read(blur_path), "sharp": _read(sharp_path)}
        meta = {"name": self.names[index], "blur_path": str(blur_path), "sharp_path": str(sharp_path)}
        return images, {}, meta


class GoProDataset(FolderDataset):
    """GOPRO_Large (Nah et al. 2017): ``root/<split>/<sequence>/{blur,blur_gamma,sharp}/<frame>.png``.

    ``split``: ``"test"`` (11 sequences, 1111 pairs in the release) or ``"train"`` (22 sequences,
    2103 pairs). ``blur_kind``: ``"blur"`` (frames averaged in linear light) or ``"blur_gamma"``
    (averaged in gamma-encoded values, the variant most published GoPro numbers use). Every sequence
    folder must hold the ``blur_kind`` and ``sharp`` folders, with the same frame names.

    Items: ``{"blur", "sharp", "name": "<sequence>/<frame>", "sequence", "blur_path", "sharp_path"}``.
    """

    SPLITS = ("train", "test")
    BLUR_KINDS = ("blur", "blur_gamma")

    def __init__(self, root: str | os.PathLike, split: str = "test", blur_kind: str = "blur",
                 **options) -> None:
        super().__init__(**options)
        if split not in self.SPLITS:
            raise ConfigError(f"split: expected one of {', '.join(self.SPLITS)}, got {split!r}")
        if blur_kind not in self.BLUR_KINDS:
            raise ConfigError(
                f"blur_kind: expected one of {', '.join(self.BLUR_KINDS)}, got {blur_kind!r}")
        self.root = _need_dir(Path(root), "GoProDataset root")
        self.split, self.blur_kind = split, blur_kind
        split_dir = self.root / split
        if not split_dir.is_dir():
            raise DeblurkitError(f"GoProDataset {self.root}: no {split}/ folder (root must be the "
                                 f"GOPRO_Large folder that holds train/ and test/)")
        sequences = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not sequences:
            raise DeblurkitError(f"GoProDataset {split_dir}: no sequence folders")
        self.names, self.sequences, self.pairs = [], [], []
        for seq in sequences:
            what = f"GoProDataset sequence {seq}"
            for name, b, s in match_pairs(_need_dir(seq / blur_kind, what),
                                          _need_dir(seq / "sharp", what), what):
                self.names.append(f"{seq.name}/{name}")
                self.sequences.append(seq.name)
                self.pairs.append((b, s))

    def _arrays(self, index: int):
        blur_path, sharp_path = self.pairs[index]
        images = {"blur": _read(blur_path), "sharp": _read(sharp_path)}
        meta = {"name": self.names[index], "sequence": self.sequences[index],
                "blur_path": str(blur_path), "sharp_path": str(sharp_path)}
        return images, {}, meta


_BLURRY = re.compile(r"^Blurry(\d+)_(\d+)$", re.IGNORECASE)
_GROUND_TRUTH = re.compile(r"^GroundTruth(\d+)_(\d+)_(\d+)$", re.IGNORECASE)


class KohlerDataset(FolderDataset):
    """Köhler et al. 2012, "Recording and Playback of Camera Shake" (ECCV): 4 printed images x 12
    recorded camera trajectories = 48 real blurred photos, each with the ~200 sharp frames recorded
    along its trajectory.

    File naming, as unpacked from the benchmark's archives (``BlurryImages.zip`` and
    ``GroundTruth_pngs_Image{i}.zip``; the same names are used by public loaders, e.g. deepinv's
    ``Kohler`` dataset, which puts frames in ``Image{i}/Kernel{j}/``):

    - blurred photo of printout ``i`` (1-4) and trajectory ``j`` (1-12): ``Blurry{i}_{j}.png``;
    - sharp frame ``k`` (1-based, usually 1..199, 198 or 200 for a few) of that recording:
      ``GroundTruth{i}_{j}_{k}.png``.

    Both are searched recursively under ``root`` (flat, or ``Image{i}/Kernel{j}/`` sub-folders);
    a subset of the 48 is fine. The original evaluation code reads ``GroundTruth{i}_{j}.mat`` files
    instead of PNGs; those are not read here. Items are ordered printout first
    (``Blurry1_1, Blurry1_2, ...``).

    ``frames`` picks the sharp frames returned: ``"all"`` (default; note ~200 full-size frames per
    item, about 1.5 GB as float32 at 800x800 RGB), ``"first"``, ``"middle"`` (frame ``(n + 1) // 2``),
    ``"last"``, a frame number ``k`` or a list of frame numbers.

    Items: ``{"blur": (C,H,W), "sharp_frames": (N,C,H,W), "sharp": (C,H,W) the middle selected frame
    (index ``(N - 1) // 2``), "name": "Blurry{i}_{j}", "printout": i, "trajectory": j,
    "frame_numbers": (N,) int64 tensor, "blur_path": str}``. ``pairs`` holds ``(blur, middle frame)``;
    ``frame_paths[index]`` all frame paths of an item in frame order.
    """

    def __init__(self, root: str | os.PathLike, frames: str | int | Sequence[int] = "all",
                 **options) -> None:
        super().__init__(**options)
        self.root = _need_dir(Path(root), "KohlerDataset root")
        blurry: dict[tuple[int, int], Path] = {}
        truth: dict[tuple[int, int], dict[int, Path]] = {}
        for path in list_images(self.root):
            stem = path.with_suffix("").name
            if m := _BLURRY.match(stem):
                key = (int(m[1]), int(m[2]))
                if key in blurry:
                    raise DeblurkitError(
                        f"KohlerDataset {self.root}: two files for Blurry{key[0]}_{key[1]} "
                        f"({blurry[key]}, {path})")
                blurry[key] = path
            elif m := _GROUND_TRUTH.match(stem):
                truth.setdefault((int(m[1]), int(m[2])), {})[int(m[3])] = path
        if not blurry:
            raise DeblurkitError(f"KohlerDataset {self.root}: no Blurry<i>_<j>.png files found")
        self.keys = sorted(blurry)
        no_truth = [f"Blurry{i}_{j}" for i, j in self.keys if (i, j) not in truth]
        if no_truth:
            raise DeblurkitError(
                f"KohlerDataset {self.root}: {len(no_truth)} blurred photos have no "
                f"GroundTruth<i>_<j>_<k>.png frames (first: {', '.join(no_truth[:_SHOW])})")
        self.frames = frames
        self.frame_paths = [[truth[key][k] for k in sorted(truth[key])] for key in self.keys]
        self.frame_numbers = [sorted(truth[key]) for key in self.keys]
        self.selected = [self._select(key, nums, frames)
                         for key, nums in zip(self.keys, self.frame_numbers)]
        self.names = [f"Blurry{i}_{j}" for i, j in self.keys]
        self.pairs = [(blurry[key], truth[key][sel[(len(sel) - 1) // 2]])
                      for key, sel in zip(self.keys, self.selected)]
        self._truth = truth

    @staticmethod
    def _select(key: tuple[int, int], numbers: list[int], frames) -> list[int]:
        where = f"KohlerDataset Blurry{key[0]}_{key[1]}"
        n = len(numbers)
        if isinstance(frames, str):
            choice = {"all": numbers, "first": numbers[:1], "last": numbers[-1:],
                      "middle": [numbers[(n + 1) // 2 - 1]]}.get(frames)
            if choice is None:
                raise ConfigError(f"frames: expected 'all', 'first', 'middle', 'last', a frame "
                                  f"number or a list of them, got {frames!r}")
            return list(choice)
        wanted = [frames] if isinstance(frames, (int, np.integer)) else list(frames)
        if not wanted or any(isinstance(k, bool) or not isinstance(k, (int, np.integer))
                             for k in wanted):
            raise ConfigError(f"frames: expected 'all', 'first', 'middle', 'last', a frame number "
                              f"or a non-empty list of them, got {frames!r}")
        missing = [int(k) for k in wanted if k not in set(numbers)]
        if missing:
            raise DeblurkitError(f"{where}: frames {missing[:_SHOW]} not found "
                                 f"(has {n} frames numbered {numbers[0]}..{numbers[-1]})")
        return [int(k) for k in wanted]

    def _arrays(self, index: int):
        key = self.keys[index]
        blur_path = self.pairs[index][0]
        selected = self.selected[index]
        stack = np.stack([_read(self._truth[key][k]) for k in selected])
        images = {"blur": _read(blur_path), "sharp_frames": stack}
        meta = {"name": self.names[index], "printout": key[0], "trajectory": key[1],
                "frame_numbers": torch.tensor(selected, dtype=torch.int64),
                "blur_path": str(blur_path)}
        return images, {}, meta

    def _complete(self, item: dict) -> dict:
        frames = item["sharp_frames"]
        item["sharp"] = frames[(frames.shape[0] - 1) // 2]
        return item


_LEVIN_BLUR = re.compile(r"^(.+)_ker(\d+)$")


class LevinDataset(FolderDataset):
    """Levin et al. 2009, "Understanding and evaluating blind deconvolution algorithms" (CVPR), in the
    layout of deblurkit's shared data (``shared/data/dev/levin``)::

        root/sharp/<image>.png          ground truth x (8-bit grey; im1..im4)
        root/blur/<image>_ker<K>.png    blurred y for kernel K
        root/kernels/ker<K>.npy         kernel f (any format deblurkit.io.read_kernel reads)

    The original release stores each case in ``im<NN>_flit<KK>.mat`` with fields ``x`` (sharp),
    ``y`` (blurred, camera-captured) and ``f`` (kernel); convert those to the folders above.

    Kernel orientation, checked on the shared copy (im1, im2 x 8 kernels, 255x255): each blur equals
    ``scipy.signal.convolve2d(x, f, mode="same", boundary="wrap")`` to a mean absolute error of
    0.250/255 (exactly 8-bit rounding), while the 180-degree-flipped ``f`` leaves 3.3 to 24/255 and a
    symmetric (reflect) boundary 0.7 to 3.4/255. So the shipped kernels are true convolution kernels
    (deblurkit's convention, no flip needed) and these blurs are noise-free *circular* convolutions:
    compare with ``boundary="wrap"`` or only away from the border. ``tests/data`` reproduces the
    check on a constructed circular blur.

    Items: ``{"blur": (1,H,W), "sharp": (1,H,W), "kernel": (kh,kw) float32, "name": "im1_ker1",
    "image": "im1", "kernel_index": 1, "blur_path", "sharp_path", "kernel_path"}``. Kernels differ in
    size (13 to 27), so batch with ``batch_size=1`` or a collate function that pads.
    """

    def __init__(self, root: str | os.PathLike, **options) -> None:
        super().__init__(**options)
        self.root = _need_dir(Path(root), "LevinDataset root")
        what = f"LevinDataset {self.root}"
        blur_dir = _need_dir(self.root / "blur", what)
        sharp = _keyed(_need_dir(self.root / "sharp", what), what)
        kernel_dir = _need_dir(self.root / "kernels", what)
        kernels: dict[str, Path] = {}
        for p in sorted(kernel_dir.iterdir()):
            if p.is_file() and not p.name.startswith("."):
                kernels.setdefault(p.with_suffix("").name, p)
        self.names, self.images, self.kernel_indices = [], [], []
        self.pairs, self.kernel_paths = [], []
        problems = []
        for name, blur_path in _keyed(blur_dir, what).items():
            m = _LEVIN_BLUR.match(name)
            if m is None:
                problems.append(f"{name} (expected <image>_ker<K>)")
                continue
            image, k = m[1], int(m[2])
            kernel_path = kernels.get(f"ker{k}")
            if image not in sharp or kernel_path is None:
                problems.append(f"{name} (no sharp/{image}.*)" if image not in sharp
                                else f"{name} (no kernels/ker{k}.*)")
                continue
            self.names.append(name)
            self.images.append(image)
            self.kernel_indices.append(k)
            self.pairs.append((blur_path, sharp[image]))
            self.kernel_paths.append(kernel_path)
        if problems:
            raise DeblurkitError(f"{what}: {len(problems)} blurred images cannot be paired "
                                 f"(first: {', '.join(problems[:_SHOW])})")

    def _arrays(self, index: int):
        blur_path, sharp_path = self.pairs[index]
        images = {"blur": _read(blur_path), "sharp": _read(sharp_path)}
        kernels = {"kernel": _read_kernel(self.kernel_paths[index])}
        meta = {"name": self.names[index], "image": self.images[index],
                "kernel_index": self.kernel_indices[index], "blur_path": str(blur_path),
                "sharp_path": str(sharp_path), "kernel_path": str(self.kernel_paths[index])}
        return images, kernels, meta


class LaiDataset(FolderDataset):
    """Lai et al. 2016, "A Comparative Study for Single Image Blind Deblurring" (CVPR): the 100 real
    blurred photos (70 in deblurkit's shared copy), no ground truth.

    ``root`` holds the photos (searched recursively) and optionally ``attribute.txt``: one line per
    photo, its file stem then its attributes separated by white space, e.g. ``car2  manmade
    saturated`` (attributes in the release: manmade, natural, people, saturated, text).

    ``subset``: ``None`` (all photos), an attribute, or several: keeps the photos that have *every*
    listed attribute. An attribute no photo has, or a photo named in ``attribute.txt`` but missing,
    raises :class:`DeblurkitError`.

    Items: ``{"blur": (C,H,W), "name": str, "attributes": "manmade,saturated" (comma-joined, so that
    the default collate works), "blur_path": str}``; ``pairs`` holds ``(blur_path, None)``.
    """

    def __init__(self, root: str | os.PathLike, subset: str | Iterable[str] | None = None,
                 attributes_file: str = "attribute.txt", **options) -> None:
        super().__init__(**options)
        self.root = _need_dir(Path(root), "LaiDataset root")
        what = f"LaiDataset {self.root}"
        photos = _keyed(self.root, what)
        by_stem = {Path(key).name: key for key in photos}
        self.attributes: dict[str, tuple[str, ...]] = {key: () for key in photos}
        attr_path = self.root / attributes_file
        if attr_path.is_file():
            missing = []
            for lineno, line in enumerate(attr_path.read_text(encoding="utf-8").splitlines(), 1):
                fields = line.split()
                if not fields:
                    continue
                key = by_stem.get(fields[0])
                if key is None:
                    missing.append(fields[0])
                    continue
                self.attributes[key] = tuple(fields[1:])
            if missing:
                raise DeblurkitError(f"{attr_path}: {len(missing)} names have no photo in {self.root} "
                                     f"(first: {', '.join(missing[:_SHOW])})")
        keys = sorted(photos)
        if subset is not None:
            wanted = (subset,) if isinstance(subset, str) else tuple(subset)
            if not wanted or not all(isinstance(a, str) for a in wanted):
                raise ConfigError(f"subset: expected None, an attribute or a list of attributes, "
                                  f"got {subset!r}")
            if not attr_path.is_file():
                raise DeblurkitError(f"subset {subset!r}: {attr_path} not found")
            known = sorted({a for attrs in self.attributes.values() for a in attrs})
            unknown = [a for a in wanted if a not in known]
            if unknown:
                raise ConfigError(f"subset: no photo has attribute {unknown[0]!r}; "
                                  f"{attr_path.name} lists {', '.join(known)}")
            keys = [k for k in keys if set(wanted) <= set(self.attributes[k])]
            if not keys:
                raise DeblurkitError(f"subset {subset!r}: no photo in {self.root} has all of "
                                     f"{', '.join(wanted)}")
        self.subset = subset
        self.names = keys
        self.paths = [photos[k] for k in keys]
        self.pairs = [(p, None) for p in self.paths]

    def _arrays(self, index: int):
        path = self.paths[index]
        name = self.names[index]
        meta = {"name": name, "attributes": ",".join(self.attributes[name]), "blur_path": str(path)}
        return {"blur": _read(path)}, {}, meta


class ImageFolder(FolderDataset):
    """Single images for inference and contact sheets: every image under ``root`` (recursive by
    default, sorted by relative path), or ``root`` itself when it is an image file.

    Items: ``{"image": (C,H,W), "name": relative path without extension, "path": str}``;
    ``paths`` lists the files, ``pairs`` holds ``(path, None)``.
    """

    def __init__(self, root: str | os.PathLike, recursive: bool = True, **options) -> None:
        super().__init__(**options)
        self.root = Path(root)
        if self.root.is_file():
            if not _is_image(self.root.name):
                raise DeblurkitError(f"ImageFolder {self.root}: not an image file "
                                     f"(expected one of {', '.join(IMAGE_EXTENSIONS)})")
            self.paths, self.names = [self.root], [self.root.with_suffix("").name]
        else:
            _need_dir(self.root, "ImageFolder root")
            self.paths = list_images(self.root, recursive=recursive)
            if not self.paths:
                raise DeblurkitError(f"ImageFolder {self.root}: no images found "
                                     f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
            self.names = [_key(p, self.root) for p in self.paths]
        self.pairs = [(p, None) for p in self.paths]

    def _arrays(self, index: int):
        path = self.paths[index]
        return {"image": _read(path)}, {}, {"name": self.names[index], "path": str(path)}
