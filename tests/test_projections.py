"""Chapter 3's package code: Q/K/V projections against torch, and the sqrt(d_k) measurements."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from transformer_tutorial.attention import softmax
from transformer_tutorial.projections import QKVProjection, project
from transformer_tutorial.scaling import (
    dot_product_std,
    random_attention,
    sample_dot_products,
    saturation_stats,
    softmax_jacobian,
)

# -- projections -------------------------------------------------------------------------


def test_projection_equals_torch_functional_linear() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 6))
    w = rng.standard_normal((6, 3))
    ours = project(x, w)
    theirs = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w.T))
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 3), seq=st.integers(1, 7), d_model=st.integers(1, 9),
    d_k=st.integers(1, 6), d_v=st.integers(1, 6), seed=st.integers(0, 2**16),
)
def test_qkv_equal_nn_linear_with_copied_weights(batch, seq, d_model, d_k, d_v, seed) -> None:
    proj = QKVProjection.random(d_model, d_k, d_v, seed=seed)
    x = np.random.default_rng(seed + 1).standard_normal((batch, seq, d_model))
    q, k, v = proj(x)
    xt = torch.from_numpy(x)
    for ours, w in ((q, proj.w_q), (k, proj.w_k), (v, proj.w_v)):
        linear = nn.Linear(d_model, w.shape[1], bias=False, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(w.T))  # nn.Linear stores (d_out, d_in)
            theirs = linear(xt).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert q.shape == k.shape == (batch, seq, d_k)
    assert v.shape == (batch, seq, d_v)


def test_random_projection_is_seeded_and_keeps_unit_variance() -> None:
    a = QKVProjection.random(64, 16, seed=3)
    b = QKVProjection.random(64, 16, seed=3)
    c = QKVProjection.random(64, 16, seed=4)
    np.testing.assert_array_equal(a.w_q, b.w_q)
    assert not np.allclose(a.w_q, c.w_q)
    assert not np.allclose(a.w_q, a.w_k)  # three different matrices
    assert (a.d_model, a.d_k, a.d_v) == (64, 16, 16)
    x = np.random.default_rng(0).standard_normal((4000, 64))
    q, k, v = QKVProjection.random(64, 16, 8, seed=0)(x)
    for y in (q, k, v):
        assert y.var() == pytest.approx(1.0, rel=0.25)


def test_weights_are_read_only_copies() -> None:
    w = np.ones((3, 2))
    proj = QKVProjection(w, w, w)
    w[0, 0] = 5.0
    assert proj.w_q[0, 0] == 1.0
    with pytest.raises(ValueError):
        proj.w_q[0, 0] = 2.0


def test_shape_errors_name_the_expected_shape() -> None:
    proj = QKVProjection.random(4, 3, 2)
    with pytest.raises(ValueError, match=r"\(\.\.\., seq, d_model=4\), got \(5, 6\)"):
        proj(np.zeros((5, 6)))
    with pytest.raises(ValueError, match=r"\(\.\.\., seq, d_in=4\), got \(4,\)"):
        proj(np.zeros(4))
    with pytest.raises(ValueError, match=r"w_q and w_k must both have shape \(d_model, d_k\)"):
        QKVProjection(np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"w_v must have shape \(d_model=4, d_v\), got \(5, 2\)"):
        QKVProjection(np.zeros((4, 3)), np.zeros((4, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"weight must have shape \(d_in, d_out\)"):
        project(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="d_k must be a positive integer"):
        QKVProjection.random(4, 0)


# -- sqrt(d_k) ---------------------------------------------------------------------------


def test_dot_product_std_grows_like_sqrt_dk() -> None:
    d_ks = [1, 4, 16, 64, 256, 1024]
    stds = dot_product_std(d_ks, samples=20_000, seed=0)
    np.testing.assert_allclose(stds, np.sqrt(d_ks), rtol=0.03)
    assert np.all(np.diff(stds) > 0)


def test_dot_products_are_seeded_and_centred() -> None:
    a = sample_dot_products(64, samples=5000, seed=7)
    np.testing.assert_array_equal(a, sample_dot_products(64, samples=5000, seed=7))
    assert a.shape == (5000,)
    assert abs(a.mean()) < 4 * 8 / np.sqrt(5000)  # 4 standard errors of the mean


def test_random_attention_scaled_scores_have_unit_spread() -> None:
    for d_k in (4, 256):
        scores, weights = random_attention(10, d_k, scale=True, batch=100)
        assert scores.shape == weights.shape == (100, 10, 10)
        assert scores.std() == pytest.approx(1.0, rel=0.05)
        np.testing.assert_allclose(weights, softmax(scores))
        unscaled, _ = random_attention(10, d_k, scale=False, batch=100)
        np.testing.assert_allclose(unscaled, scores * np.sqrt(d_k))  # same seed, same q, k


def test_softmax_jacobian_equals_autograd() -> None:
    s = torch.from_numpy(np.random.default_rng(2).standard_normal(6))
    theirs = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, -1), s).numpy()
    ours = softmax_jacobian(softmax(s.numpy()))
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    one_hot = np.array([[0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    jac = softmax_jacobian(one_hot)
    assert jac.shape == (2, 3, 3)
    np.testing.assert_array_equal(jac[0], 0.0)  # saturated: no gradient
    assert np.linalg.norm(jac[1]) > 0.4


def test_unscaled_softmax_saturates_at_large_dk() -> None:
    small_scaled, small_unscaled = saturation_stats(4, True), saturation_stats(4, False)
    scaled, unscaled = saturation_stats(1024, True), saturation_stats(1024, False)
    assert unscaled.max_weight > 0.9 > 0.4 > scaled.max_weight
    assert unscaled.gradient_norm < 0.2 * scaled.gradient_norm
    assert unscaled.score_std == pytest.approx(32.0, rel=0.05)
    assert scaled.score_std == pytest.approx(1.0, rel=0.05)
    # scaled: the same picture at every width
    assert scaled.max_weight == pytest.approx(small_scaled.max_weight, abs=0.05)
    assert small_unscaled.max_weight < unscaled.max_weight


def test_scaling_input_errors() -> None:
    with pytest.raises(ValueError, match="d_k must be a positive integer"):
        sample_dot_products(0)
    with pytest.raises(ValueError, match="at least one dimension"):
        dot_product_std([])
    with pytest.raises(ValueError, match="n_tokens must be a positive integer"):
        random_attention(0, 4, scale=True)
    with pytest.raises(ValueError, match=r"weights must have shape \(\.\.\., n\)"):
        softmax_jacobian(np.float64(1.0))
