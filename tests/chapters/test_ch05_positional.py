"""Chapter 5's measurements: the causal mask against torch's own MultiheadAttention, the
naive position codes, and a previous-token head built from the sinusoidal shift property."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from explorer_frames import ROUNDED, panel
from torch import nn

from transformer_tutorial.chapters import ch05_positional as ch05
from transformer_tutorial.chapters.ch05_positional import (
    equivariance_gaps,
    naive_position_codes,
    neighbour_steps,
    previous_token_head,
    words_with_positions,
)
from transformer_tutorial.multihead import (
    MultiHeadAttention,
)
from transformer_tutorial.positional import position_dot_products, sinusoidal_encoding


def test_causal_mask_breaks_equivariance_and_torch_agrees():
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(16, 2, batch_first=True).eval()
    ours = MultiHeadAttention.from_torch(reference)
    x = torch.randn(1, 11, 16)
    perm = np.random.default_rng(0).permutation(11)
    gaps = equivariance_gaps(ours, x, perm)
    assert gaps.encoder < 1e-6
    assert gaps.causal > 0.1
    blocked = torch.ones(11, 11, dtype=torch.bool).triu(1)  # torch: True = blocked

    def theirs(t):
        return reference(t, t, t, attn_mask=blocked, need_weights=False)[0]

    with torch.no_grad():
        torch_gap = (theirs(x)[:, perm] - theirs(x[:, perm])).abs().max().item()
    assert gaps.causal == pytest.approx(torch_gap, rel=1e-4)


def test_equivariance_gaps_refuses_other_modules():
    with pytest.raises(TypeError, match="MultiHeadAttention"):
        equivariance_gaps(nn.Linear(4, 4), torch.zeros(1, 3, 4), [0, 1, 2])


def test_naive_codes_depend_on_the_length_and_sinusoids_do_not():
    short, long = naive_position_codes(5), naive_position_codes(100)
    assert short[3].tolist() == [3.0, 0.6]
    assert long[3, 1].item() == pytest.approx(0.03)
    assert neighbour_steps(short[:, 1:]).tolist() == pytest.approx([0.2] * 4)
    steps = neighbour_steps(sinusoidal_encoding(500, 64, dtype=torch.float64))
    assert steps.max() - steps.min() < 1e-9  # one fixed rotation: the same step everywhere
    with pytest.raises(ValueError, match="length"):
        naive_position_codes(1)
    with pytest.raises(ValueError, match="codes"):
        neighbour_steps(torch.zeros(1, 3))


def test_previous_token_head_attends_to_position_p_minus_1():
    torch.manual_seed(0)
    words = torch.randn(1, 100, 16)
    head = previous_token_head(d_word=16, d_pos=32)
    output, weights = head(words_with_positions(words, d_pos=32))
    rows = weights[0, 0]  # (seq, seq)
    assert rows[1:].argmax(dim=-1).tolist() == list(range(99))
    assert rows[1:].diagonal().min() > 0.9
    # the output of token p is (almost) the word vector of token p - 1, and has no position part
    cosine = nn.functional.cosine_similarity(output[0, 1:, :16], words[0, :-1], dim=-1)
    assert cosine.min() > 0.95
    assert output[0, :, 16:].abs().max() == 0


def test_previous_token_head_refuses_bad_arguments():
    with pytest.raises(ValueError, match="sharpness"):
        previous_token_head(4, 8, sharpness=0.0)
    with pytest.raises(ValueError, match="d_word"):
        previous_token_head(0, 8)
    with pytest.raises(ValueError, match="d_model"):
        previous_token_head(4, 7)
    with pytest.raises(ValueError, match="words"):
        words_with_positions(torch.zeros(3, 4), 8)


# -- The chapter's explorer ----------------------------------------------------------------


def test_position_explorer_follows_the_position_and_the_kind():
    explorer = ch05.position_explorer()
    assert len(explorer.controls[1].values) == ch05.POSITION_COUNT  # every position
    vector, curves = explorer.data(kind="sinusoidal", position=8)["panels"]
    np.testing.assert_allclose(vector["values"], sinusoidal_encoding(48, 32)[8].numpy(),
                               **ROUNDED)  # fmt: skip
    solid, dashed = curves["series"]
    dots = position_dot_products(sinusoidal_encoding(48, 32)).numpy()
    np.testing.assert_allclose(solid["y"], dots[8], **ROUNDED)
    np.testing.assert_allclose(dashed["y"], solid["y"], atol=1e-3)
    assert curves["xmarker"] == 8 and dashed["style"] == "dashed"
    moved = panel(explorer, 1, kind="sinusoidal", position=24)
    assert moved["xmarker"] == 24 and int(np.argmax(moved["series"][0]["y"])) == 24
    for kind, close in (("RoPE", True), ("learned (untrained)", False)):
        solid, dashed = panel(explorer, 1, kind=kind, position=20)["series"]
        gap = np.abs(np.subtract(solid["y"], dashed["y"])).max()
        assert (gap < 1e-2) if close else (gap > 1.0), kind
