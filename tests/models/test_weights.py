"""Weights as safetensors with a sha256 check; never pickle."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch
from safetensors.torch import save_file

from deblurkit.errors import WeightsError
from deblurkit.models.nafnet import NAFNet
from deblurkit.models.weights import file_sha256, load_weights, read_metadata, save_weights

TINY = dict(width=8, enc_blocks=[1, 1], middle_blocks=1, dec_blocks=[1, 1])


def _net(seed: int, **overrides) -> NAFNet:
    torch.manual_seed(seed)
    net = NAFNet(**{**TINY, **overrides})
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    return net


def test_round_trip_restores_every_tensor_and_the_metadata(tmp_path):
    src, dst = _net(0), _net(1)
    path = tmp_path / "w.safetensors"
    meta = {"model": "nafnet", "options": TINY, "step": 12, "psnr": 28.5}
    digest = save_weights(src, path, metadata=meta)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() == file_sha256(path)
    assert read_metadata(path) == meta
    assert load_weights(dst, path, sha256=digest) == meta
    for (k, a), (k2, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    assert load_weights(_net(2), path, sha256=None) == meta  # the hash check is optional
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary files left


def test_sha_mismatch_is_refused_naming_file_and_both_hashes(tmp_path):
    path = tmp_path / "w.safetensors"
    digest = save_weights(_net(0), path, metadata={})
    wrong = "f" * 64
    dst = _net(1)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(WeightsError) as err:
        load_weights(dst, path, sha256=wrong)
    msg = str(err.value)
    assert str(path) in msg and wrong in msg and digest in msg and "\n" not in msg
    assert all(torch.equal(before[k], v) for k, v in dst.state_dict().items())  # untouched


def test_a_flipped_byte_changes_the_hash_and_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    digest = save_weights(_net(0), path, metadata={})
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # inside the tensor data: still parses, but is not the recorded file
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_weights(_net(1), path, sha256=digest)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "pickle"])
def test_corrupt_files_are_refused(tmp_path, damage):
    path = tmp_path / "w.safetensors"
    save_weights(_net(0), path, metadata={})
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(1000))
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a torch pickle must never be loaded
        torch.save(_net(0).state_dict(), path)
    with pytest.raises(WeightsError, match=f"{path.name}: not a valid safetensors file"):
        load_weights(_net(1), path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="nope.safetensors: file not found"):
        load_weights(_net(0), tmp_path / "nope.safetensors")


def test_wrong_shapes_are_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(_net(0, width=8), path, metadata={})
    with pytest.raises(WeightsError, match=r"shape mismatches.*intro.weight: file \(8, 3, 3, 3\) vs model \(12, 3, 3, 3\)"):
        load_weights(_net(0, width=12), path)


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(_net(0, middle_blocks=1), path, metadata={})
    with pytest.raises(WeightsError, match=r"missing keys \(middle\.1\."):
        load_weights(_net(0, middle_blocks=2), path)
    save_weights(_net(0, middle_blocks=2), path, metadata={})
    with pytest.raises(WeightsError, match=r"unexpected keys \(middle\.1\."):
        load_weights(_net(0, middle_blocks=1), path)


def test_dtype_is_cast_to_the_models(tmp_path):
    src = _net(0)
    path = tmp_path / "w.safetensors"
    save_file({k: v.to(torch.float64).contiguous() for k, v in src.state_dict().items()}, str(path))
    dst = _net(1)
    assert load_weights(dst, path) == {}
    assert all(v.dtype == torch.float32 for v in dst.state_dict().values())
    torch.testing.assert_close(dst.intro.weight, src.intro.weight)


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "w.safetensors"
    with pytest.raises(WeightsError, match="not JSON-serialisable"):
        save_weights(_net(0), path, metadata={"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_overwrite_keeps_the_old_file_until_the_new_one_is_complete(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    first = save_weights(_net(0), path, metadata={"v": 1})
    import deblurkit.models.weights as wmod

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(wmod, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_weights(_net(1), path, metadata={"v": 2})
    assert file_sha256(path) == first and read_metadata(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
