"""benchmarks/learning_curve.py: log reading, step -> hours, checkpoint lists, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmark_loader import load_benchmark

from deblurkit.errors import ConfigError


@pytest.fixture(scope="module")
def lc():
    return load_benchmark("learning_curve")


def _log(path: Path, rows: list[tuple[int, float]]) -> Path:
    path.write_text("step,loss,lr,seconds,val_psnr,val_ssim,val_gain\n"
                    + "".join(f"{s},0.05,1e-4,{t},,,\n" for s, t in rows))
    return path


def test_hours_interpolate_the_log_and_refuse_extrapolation(lc, tmp_path):
    steps, seconds = lc.read_log(_log(tmp_path / "log.csv", [(200, 720.0), (100, 360.0), (400, 1800.0)]))
    assert list(steps) == [100, 200, 400]  # sorted by step
    assert lc.hours_at(0, steps, seconds) == 0
    assert lc.hours_at(50, steps, seconds) == pytest.approx(180 / 3600)
    assert lc.hours_at(300, steps, seconds) == pytest.approx((720 + 540) / 3600)
    # one log interval past the end: the last rate goes on (a checkpoint between two log rows)
    assert lc.hours_at(500, steps, seconds) == pytest.approx((1800 + 100 * 1080 / 200) / 3600)
    with pytest.raises(ConfigError, match="checkpoint step 601: beyond the log's last step 400"):
        lc.hours_at(601, steps, seconds)
    with pytest.raises(ConfigError, match="training log not found"):
        lc.read_log(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="expected a CSV with columns 'step' and 'seconds'"):
        lc.read_log(tmp_path / "bad.csv")


def test_checkpoint_steps_from_paths_globs_and_overrides(lc, tmp_path):
    for step in (500, 1000):
        (tmp_path / "run2" / "checkpoints" / f"step_{step:07d}").mkdir(parents=True)
        (tmp_path / "run2" / "checkpoints" / f"step_{step:07d}" / "ema.safetensors").write_bytes(b"x")
    init = tmp_path / "gpu-l1fft" / "ema.safetensors"
    init.parent.mkdir()
    init.write_bytes(b"x")
    spec = f"{init}=0,{tmp_path}/run2/checkpoints/step_*/ema.safetensors"
    got = lc.checkpoint_list(spec)
    assert [s for s, _ in got] == [0, 500, 1000]
    assert got[0][1] == init
    with pytest.raises(ConfigError, match="no such file"):
        lc.checkpoint_list(f"{tmp_path}/nothing_*.safetensors")
    with pytest.raises(ConfigError, match="given twice"):
        lc.checkpoint_list(f"{init}=500,{spec}")
    with pytest.raises(ConfigError, match="step 'x' is not an integer"):
        lc.checkpoint_list(f"{init}=x")


def test_offset_must_name_an_arm(lc, tmp_path):
    log = _log(tmp_path / "log.csv", [(100, 10.0)])
    with pytest.raises(ConfigError, match=r"--offset b: no --arm of that name \(arms: a\)"):
        lc.main(["--arm", "a", str(log), f"{log}=0", "--offset", "b", "1"])
    with pytest.raises(ConfigError, match="hours 'x' is not a number"):
        lc.main(["--arm", "a", str(log), f"{log}=0", "--offset", "a", "x"])
