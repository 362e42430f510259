"""copy_parameters: every parameter mapped, every tensor present, every shape equal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from transformer_tutorial.weights import copy_parameters

NAMES = {"weight": "dense.kernel", "bias": "dense.bias"}


def _tensors(rows: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"dense.kernel": rng.normal(size=(rows, 2)), "dense.bias": rng.normal(size=rows)}


def test_copies_values_as_float32():
    layer, tensors = nn.Linear(2, 3), _tensors()
    copy_parameters(layer, NAMES, tensors)
    assert layer.weight.dtype == torch.float32
    np.testing.assert_allclose(layer.weight.detach().numpy(), tensors["dense.kernel"], rtol=1e-6)
    np.testing.assert_allclose(layer.bias.detach().numpy(), tensors["dense.bias"], rtol=1e-6)
    assert layer.weight.requires_grad


def test_refuses_partial_or_mismatched_loads():
    with pytest.raises(ValueError, match=r"unmapped parameters: \['bias'\]"):
        copy_parameters(nn.Linear(2, 3), {"weight": "dense.kernel"}, _tensors())
    with pytest.raises(ValueError, match="the file has no 'dense.bias' \\(for our 'bias'\\)"):
        copy_parameters(nn.Linear(2, 3), NAMES, {"dense.kernel": np.zeros((3, 2))}, "the file")
    with pytest.raises(ValueError, match=r"dense.kernel has shape \(4, 2\), expected \(3, 2\)"):
        copy_parameters(nn.Linear(2, 3), NAMES, _tensors(rows=4))
