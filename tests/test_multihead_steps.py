"""Multi-head attention step by step, and regrouped heads (on chapter 4's hand-built heads)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from transformer_tutorial.chapters.ch04_multihead import pattern_features, pattern_heads
from transformer_tutorial.multihead import (
    MultiHeadAttention,
    max_abs_difference,
    multihead_steps,
    regroup_heads,
)
from transformer_tutorial.tokens import tokenize

SENTENCE = tokenize("the cat saw the dog and the dog saw the cat .")


def _torch_mha(d_model: int, heads: int, seed: int = 0) -> nn.MultiheadAttention:
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(d_model, heads, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_bias.normal_()
        ref.out_proj.bias.normal_()
    return ref


def test_steps_end_where_torch_ends():
    ref = _torch_mha(16, 4)
    ours = MultiHeadAttention.from_torch(ref)
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1))
    steps = multihead_steps(ours, x)
    expected, expected_weights = ref(x, x, x, need_weights=True, average_attn_weights=False)
    assert max_abs_difference(steps["output"], expected) < 1e-5
    assert max_abs_difference(steps["weights"], expected_weights) < 1e-6
    shapes = {name: tuple(t.shape) for name, t in steps.items()}
    assert shapes["Q_i"] == shapes["head_i"] == (2, 4, 5, 4)
    assert shapes["scores"] == shapes["weights"] == (2, 4, 5, 5)
    assert shapes["Concat"] == shapes["output"] == (2, 5, 16)
    # Concat puts head h's features at h * d_head .. (h + 1) * d_head - 1
    assert torch.equal(steps["Concat"][:, :, 4:8], steps["head_i"][:, 1])
    np.testing.assert_allclose(steps["weights"].sum(-1).numpy(), 1.0, rtol=1e-6)


def test_steps_rejects_a_wrong_width():
    with pytest.raises(ValueError, match=r"\(batch, seq, 16\)"):
        multihead_steps(MultiHeadAttention(16, 4), torch.zeros(1, 3, 8))
    with pytest.raises(ValueError, match="MultiHeadAttention"):
        multihead_steps(nn.Linear(4, 4), torch.zeros(1, 3, 4))


def test_regrouping_into_one_head_equals_torch_with_one_head():
    ref4 = _torch_mha(16, 4)
    ours1 = regroup_heads(MultiHeadAttention.from_torch(ref4), 1)
    ref1 = nn.MultiheadAttention(16, 1, batch_first=True).eval()
    ref1.load_state_dict(ref4.state_dict())
    x = torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(2))
    out, weights = ours1(x)
    expected, expected_weights = ref1(x, x, x, need_weights=True, average_attn_weights=False)
    assert weights.shape == (1, 1, 6, 6)
    assert max_abs_difference(out, expected) < 1e-5
    assert max_abs_difference(weights, expected_weights) < 1e-6


def test_fewer_heads_add_the_scores_of_the_heads_they_merge():
    mha = pattern_heads()
    x = pattern_features(SENTENCE)
    four = multihead_steps(mha, x)
    raw = four["scores"] * math.sqrt(mha.d_head)  # undo the 1/sqrt(16): plain dot products
    one = multihead_steps(regroup_heads(mha, 1), x)
    expected = torch.softmax(raw.sum(dim=1) / math.sqrt(64), dim=-1)
    assert max_abs_difference(one["weights"][:, 0], expected) < 1e-6
    same = regroup_heads(mha, 4)
    assert max_abs_difference(same(x)[0], mha(x)[0]) == 0.0
    with pytest.raises(ValueError, match="divisible"):
        regroup_heads(mha, 3)


def test_max_abs_difference():
    assert max_abs_difference(np.array([1.0, 2.0]), torch.tensor([1.5, 1.0])) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        max_abs_difference(np.zeros(2), np.zeros(3))


def test_steps_are_a_trace_of_the_forward_pass_masks_included():
    ref = _torch_mha(16, 4, seed=3)
    ours = MultiHeadAttention.from_torch(ref)
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(4))
    output, weights = ours(x)
    steps = multihead_steps(ours, x)
    assert torch.equal(steps["output"], output) and torch.equal(steps["weights"], weights)
    trace: dict[str, torch.Tensor] = {}
    masked, masked_weights = ours(x, causal=True, trace=trace)
    assert torch.equal(trace["output"], masked) and torch.equal(trace["weights"], masked_weights)
    assert torch.equal(trace["scores"], steps["scores"])  # recorded before the mask
    causal = nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.bool)
    expected, expected_weights = ref(x, x, x, attn_mask=causal, average_attn_weights=False)
    assert max_abs_difference(trace["output"], expected) < 1e-5
    assert max_abs_difference(trace["weights"], expected_weights) < 1e-6
