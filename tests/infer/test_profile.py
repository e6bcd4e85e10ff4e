"""MAC and parameter counts against an independent reference (torch's FlopCounterMode)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deblurkit.errors import ConfigError
from deblurkit.infer.profile import count_macs, count_parameters


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 5, padding=2, groups=8)
        self.down = nn.Conv2d(8, 16, 2, stride=2, bias=False)
        self.up = nn.ConvTranspose2d(16, 4, 2, stride=2)
        self.grouped_up = nn.ConvTranspose2d(4, 6, 3, stride=1, padding=1, groups=2)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        y = self.grouped_up(self.up(self.down(self.dw(self.conv(x)))))
        return self.fc(y.mean(dim=(2, 3)))


def test_macs_match_flop_counter():
    model = Mixed().eval()
    x = torch.rand(2, 3, 20, 26)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert count_macs(model, x) * 2 == counter.get_total_flops()
    assert count_macs(model, (2, 3, 20, 26)) == count_macs(model, x)
    assert count_macs(Mixed().to("meta"), (2, 3, 20, 26)) == count_macs(model, x)  # shapes only


def test_single_conv_by_hand():
    conv = nn.Conv2d(4, 6, (3, 5), padding=(1, 2))
    # every one of the 1*6*10*12 outputs takes 4*3*5 multiply-adds
    assert count_macs(conv, (1, 4, 10, 12)) == 6 * 10 * 12 * 4 * 3 * 5


def test_parameters_counted_once():
    lin = nn.Linear(10, 3)
    tied = nn.Sequential(lin, nn.ReLU(), nn.Linear(3, 10), lin)  # lin shared
    assert count_parameters(tied) == (10 * 3 + 3) + (3 * 10 + 10)
    lin.bias.requires_grad_(False)
    assert count_parameters(tied, trainable_only=True) == 30 + 40


def test_bad_arguments():
    with pytest.raises(ConfigError, match="model: expected"):
        count_macs("net", (1, 3, 4, 4))
    with pytest.raises(ConfigError, match="x: expected"):
        count_macs(nn.Identity(), 5)
