"""Chapter 6: attention outputs stay within the values' range and hull; the FFN is nonlinear."""

import numpy as np
import pytest
import torch
from explorer_frames import ROUNDED, panel

from transformer_tutorial.chapters import ch06_feed_forward as ch06
from transformer_tutorial.chapters.ch06_feed_forward import (
    convex_hull_2d,
    hull_figure,
    nonlinearity_gap,
    outside_value_range,
)
from transformer_tutorial.layers import (
    EncoderBlock,
    FeedForward,
    layer_norm_steps,
    seeded_encoder_layer,
)
from transformer_tutorial.multihead import (
    MultiHeadAttention,
    multihead_steps,
)


def test_attention_heads_stay_inside_the_value_range():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2)
    steps = multihead_steps(mha, torch.randn(1, 7, 16))
    assert outside_value_range(steps["weights"], steps["V_i"], steps["head_i"]) < 1e-6
    # a point outside the range is reported by how far it is outside
    v = np.array([[0.0, 0.0], [1.0, 2.0]])
    assert outside_value_range([[0.5, 0.5]], v, [[1.5, 1.0]]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="summing to 1"):
        outside_value_range([[0.5, 0.6]], v, [[0.0, 0.0]])


def test_hull_of_a_square_with_an_inside_point():
    points = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5], [0.2, 0.7]])
    hull = convex_hull_2d(points)
    assert {tuple(p) for p in hull} == {(0, 0), (1, 0), (1, 1), (0, 1)}
    x, y = hull[:, 0], hull[:, 1]
    assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) == pytest.approx(1.0)  # ccw
    assert hull_figure(points[:4], points[4:], list("abcd")).axes
    with pytest.raises(ValueError, match="tokens"):
        hull_figure(points[:4], points[4:], ["a"])


def test_linear_maps_have_no_gap_and_the_ffn_has_one():
    torch.manual_seed(0)
    x = torch.randn(1, 6, 8)
    linear = torch.nn.Linear(8, 8)
    assert nonlinearity_gap(linear, x) < 1e-5
    assert nonlinearity_gap(FeedForward(8, 32), x) > 1e-2


# -- The chapter's explorer ----------------------------------------------------------------


def test_layer_norm_explorer_standardizes_then_scales():
    explorer = ch06.layer_norm_explorer()
    tokens, steps = ch06.layer_norm_example()
    labels = ch06.layer_norm_token_labels(tokens)
    stages = ch06.NORM_STAGES

    def shown(token: str, stage: str) -> np.ndarray:
        return np.array(panel(explorer, token=token, stage=stage)["values"])

    raw = shown(labels[1], stages[0])
    np.testing.assert_allclose(raw, steps["input"][1].detach().numpy(), **ROUNDED)
    standardized = shown(labels[1], stages[1])
    assert abs(standardized.mean()) < 1e-3 and abs(standardized.std() - 1) < 1e-3
    norm = EncoderBlock.from_torch(seeded_encoder_layer(16, 2, 64, seed=0)).add_norm1.norm
    expected = layer_norm_steps(torch.as_tensor(steps["input"][1]), norm)["output"]
    np.testing.assert_allclose(shown(labels[1], stages[2]), expected.detach().numpy(),
                               rtol=1e-3, atol=1e-4)  # fmt: skip
    assert not np.allclose(shown(labels[2], stages[1]), standardized)  # another token


def test_layer_norm_explorer_with_minilm_trained_scale_and_shift():
    from transformer_tutorial.pretrained import load_minilm

    explorer = ch06.layer_norm_explorer()
    trained = ch06.NORM_BLOCKS[1]
    norm = load_minilm().model.blocks[0].add_norm1.norm
    tokens, steps = ch06.minilm_layer_norm_example()
    assert tokens[0] == "[CLS]" and tokens[2] == "cat"

    def shown(stage: int) -> np.ndarray:
        stage_name = ch06.NORM_STAGES[stage]
        return np.array(panel(explorer, token="cat (position 1)", stage=stage_name,
                               block=trained)["values"])  # fmt: skip

    raw, standardized, out = shown(0), shown(1), shown(2)
    assert raw.shape == (384,)
    np.testing.assert_allclose(raw, steps["input"][2].numpy(), **ROUNDED)
    assert abs(standardized.mean()) < 1e-3 and abs(standardized.std() - 1) < 1e-3
    expected = norm(torch.as_tensor(steps["input"][2])).detach().numpy()  # torch's own LayerNorm
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-4)
    assert np.abs(out - standardized).max() > 1.0  # trained gamma and beta visibly change it
