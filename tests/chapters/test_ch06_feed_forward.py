"""Chapter 6: attention outputs stay within the values' range and hull; the FFN is nonlinear."""

import numpy as np
import pytest
import torch

from transformer_tutorial.chapters.ch06_feed_forward import (
    convex_hull_2d,
    hull_figure,
    nonlinearity_gap,
    outside_value_range,
)
from transformer_tutorial.layers import FeedForward
from transformer_tutorial.multihead import MultiHeadAttention, multihead_steps


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
