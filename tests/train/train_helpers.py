"""Helpers shared by the engine and GAN tests (imported by name: pytest puts tests/train on the path)."""

from __future__ import annotations

import torch


class PairSet(torch.utils.data.Dataset):
    """Deterministic blur/sharp pairs: item i depends only on i (a box blur of a seeded image)."""

    def __init__(self, n: int = 10_000, size: int = 16):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(int(i))
        sharp = torch.rand(3, self.size, self.size, generator=g)
        blur = torch.nn.functional.avg_pool2d(sharp[None], 3, 1, 1, count_include_pad=False)[0]
        return {"blur": blur, "sharp": sharp}
