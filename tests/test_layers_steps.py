"""Chapter 6 helpers: layer norm step by step, an encoder block step by step, seeded layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transformer_tutorial.layers import (
    EncoderBlock,
    encoder_block_steps,
    layer_norm_steps,
    seeded_encoder_layer,
)
from transformer_tutorial.multihead import max_abs_difference


def test_layer_norm_steps_equal_torch_layer_norm():
    norm = nn.LayerNorm(8)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 8))
        norm.bias.copy_(torch.linspace(-1.0, 1.0, 8))
    x = 3.0 + 2.0 * torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    steps = layer_norm_steps(x, norm)
    expected = F.layer_norm(x, (8,), norm.weight, norm.bias, norm.eps)
    assert max_abs_difference(steps["output"], expected) < 1e-6
    assert steps["mean"].shape == steps["variance"].shape == (2, 5, 1)
    assert steps["standardized"].mean(-1).abs().max() < 1e-6
    assert (steps["standardized"].var(-1, unbiased=False) - 1).abs().max() < 1e-4
    assert max_abs_difference(steps["mean"][..., 0], x.mean(-1)) < 1e-6
    with pytest.raises(ValueError, match=r"\(\.\.\., 8\)"):
        layer_norm_steps(torch.zeros(3, 4), norm)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_steps_end_where_torch_ends(norm_first):
    layer = seeded_encoder_layer(16, 4, 32, norm_first=norm_first, seed=1)
    block = EncoderBlock.from_torch(layer)
    x = torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(2))
    steps = encoder_block_steps(block, x)
    assert max_abs_difference(steps["output"], layer(x)) < 1e-5
    assert torch.equal(steps["output"], block(x)[0])  # a trace of the forward pass itself
    trace: dict[str, torch.Tensor] = {}
    causal, _ = block(x, causal=True, trace=trace)
    assert list(trace) == list(steps) and torch.equal(trace["output"], causal)
    square = torch.nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.bool)
    assert max_abs_difference(causal, layer(x, src_mask=square, is_causal=True)) < 1e-5
    if norm_first:
        assert list(steps) == ["x", "LN(x)", "attention", "h", "LN(h)", "ffn", "output"]
        assert max_abs_difference(steps["h"], x + steps["attention"]) == 0.0
    else:
        assert list(steps) == ["x", "attention", "x + attention", "h", "ffn", "h + ffn", "output"]
        expected_h = F.layer_norm(x + steps["attention"], (16,), layer.norm1.weight,
                                  layer.norm1.bias, layer.norm1.eps)
        assert max_abs_difference(steps["h"], expected_h) < 1e-5


def test_seeded_encoder_layer_is_reproducible_and_leaves_the_global_seed_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = seeded_encoder_layer(8, 2, 16, seed=5)
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = seeded_encoder_layer(8, 2, 16, seed=5)
    c = seeded_encoder_layer(8, 2, 16, seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.linear1.weight, c.linear1.weight)
    assert not torch.equal(a.norm1.weight, torch.ones(8))  # gamma and beta really used
    assert a.norm1.bias.abs().max() > 0 and a.dropout.p == 0.0 and not a.training
    with pytest.raises(ValueError, match="divisible"):
        seeded_encoder_layer(10, 3, 16)
