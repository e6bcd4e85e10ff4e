"""Weight averaging (model soups): deblurkit.models.weights.average_state_dicts and tools/soup_weights.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from deblurkit.errors import WeightsError
from deblurkit.models import create
from deblurkit.models.weights import average_state_dicts, load_weights, read_metadata, save_weights


def _tool():
    path = Path(__file__).resolve().parents[2] / "tools" / "soup_weights.py"
    spec = importlib.util.spec_from_file_location("soup_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_average_by_hand_and_refusals():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(3)}
    out = average_state_dicts([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0])) and out["n"].item() == 3
    third = average_state_dicts([a, b], coefficients=[0.25, 0.75])
    assert torch.allclose(third["w"], torch.tensor([2.5, 5.0]))
    with pytest.raises(WeightsError, match="at least 2 inputs, got 1"):
        average_state_dicts([a])
    with pytest.raises(WeightsError, match="keys differ from A's"):
        average_state_dicts([a, {"w": a["w"]}], names=["A", "B"])
    with pytest.raises(WeightsError, match=r"B: w has shape \(3,\), A has \(2,\)"):
        average_state_dicts([a, {"w": torch.zeros(3), "n": a["n"]}], names=["A", "B"])
    with pytest.raises(WeightsError, match="integer tensor n differs"):
        average_state_dicts([a, {"w": a["w"], "n": torch.tensor(4)}])
    with pytest.raises(WeightsError, match="summing to 1"):
        average_state_dicts([a, b], coefficients=[0.5, 0.6])


def test_soup_tool_end_to_end(tmp_path):
    paths = []
    models = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        m = create("nafnet", size="tiny", identity_init=False)
        paths.append(tmp_path / f"m{seed}.safetensors")
        save_weights(m, paths[-1], metadata={"arch": "nafnet"})
        models.append(m)
    tool = _tool()
    out = tmp_path / "soup.safetensors"
    options = '{"size": "tiny"}'
    assert tool.main([str(out), *map(str, paths), "--arch", "nafnet", "--options", options]) == 0
    soup = create("nafnet", size="tiny")
    load_weights(soup, out)
    for k, v in soup.state_dict().items():
        ref = sum(m.state_dict()[k].double() for m in models) / 3
        assert torch.allclose(v.double(), ref, atol=1e-6), k
    assert read_metadata(out)["soup"] == [str(p) for p in paths]
    # bad inputs: a different architecture, the output among the inputs, malformed options
    wide = create("nafnet", width=16, enc_blocks=[1, 1], middle_blocks=1, dec_blocks=[1, 1], pixel_unshuffle=1)
    save_weights(wide, tmp_path / "wide.safetensors", metadata={})
    assert tool.main([str(tmp_path / "x.safetensors"), str(paths[0]), str(tmp_path / "wide.safetensors"),
                      "--arch", "nafnet", "--options", options]) == 2
    assert not (tmp_path / "x.safetensors").exists()
    assert tool.main([str(paths[0]), str(paths[0]), str(paths[1]), "--arch", "nafnet"]) == 2
    assert tool.main([str(out), str(paths[0]), str(paths[1]), "--arch", "nafnet", "--options", "[1]"]) == 2
