"""Pack ../shared/data/train into .gpudata/train (git-ignored) small enough to travel to a lent GPU
machine (the device tool sends at most 64 MiB with the repository): upright RGB, long side <= 640 px
(Lanczos), short side >= 304 px (one 256 px crop plus the 24 px synthesis margin), WebP quality 85.

    python tools/pack_train_data.py [--src ../shared/data/train] [--out .gpudata/train]
"""

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageOps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/train")
    p.add_argument("--out", type=Path, default=Path(".gpudata/train"))
    p.add_argument("--long", type=int, default=640)
    p.add_argument("--short-min", type=int, default=304)
    p.add_argument("--quality", type=int, default=85)
    a = p.parse_args(argv)
    files = sorted(f for f in a.src.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if not files:
        print(f"{a.src}: no images", file=sys.stderr)
        return 1
    a.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for f in files:
        im = ImageOps.exif_transpose(Image.open(f)).convert("RGB")
        if max(im.size) > a.long:
            r = a.long / max(im.size)
            im = im.resize((round(im.width * r), round(im.height * r)), Image.LANCZOS)
        if min(im.size) < a.short_min:
            r = a.short_min / min(im.size)
            im = im.resize((round(im.width * r), round(im.height * r)), Image.LANCZOS)
        dst = a.out / (f.stem + ".webp")
        im.save(dst, quality=a.quality, method=4)
        total += dst.stat().st_size
    print(f"{len(files)} images, {total / 2**20:.1f} MiB in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
