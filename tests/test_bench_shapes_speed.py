"""benchmarks/model_shapes.py and benchmarks/train_speed.py: shapes build, refusals, the timing helper."""

from __future__ import annotations

import pytest
from benchmark_loader import load_benchmark

from deblurkit.errors import ConfigError
from deblurkit.models import create


def test_every_shape_builds_and_keeps_the_default_first():
    ms = load_benchmark("model_shapes")
    names = list(ms.SHAPES)
    assert ms.SHAPES[names[0]] == {}  # the reference row is the registry's default
    for options in ms.SHAPES.values():
        create("nafnet", **options)  # a bad option would raise ConfigError


def test_model_shapes_refuses_unknown_shapes_and_bad_counts():
    ms = load_benchmark("model_shapes")
    with pytest.raises(ConfigError, match=r"--shapes \['octagonal'\]: no such shape"):
        ms.main(["--shapes", "octagonal"])
    with pytest.raises(ConfigError, match="--threads and --repeats must be >= 1"):
        ms.main(["--repeats", "0"])


def test_train_speed_times_only_the_steps_after_warmup(tmp_path):
    ts = load_benchmark("train_speed")
    assert set(ts.VARIANTS.values()) == {("none", False), ("none", True), ("bf16", False), ("bf16", True)}
    data = ts.Fixed(4, 16)
    assert data[5]["sharp"].shape == (3, 16, 16) and (data[5]["sharp"] == data[1]["sharp"]).all()
    with pytest.raises(ConfigError, match="--steps 2: the timed steps took .* give more steps"):
        ts.run_once("bf16", True, model="nafnet", size="tiny", steps=2, warmup=2, batch=2,
                    crop=16, threads=1, data=data)
