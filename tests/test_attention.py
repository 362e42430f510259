"""The numpy attention foundation against hand-computed numbers, torch's functions and the
properties every attention must have (rows sum to 1, permutation equivariance, masks)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from transformer_tutorial.attention import (
    causal_mask,
    context_contributions,
    context_vectors,
    entropy,
    padding_mask,
    relevance_scores,
    scaled_dot_product_attention,
    softmax,
)

LN2, LN3 = math.log(2.0), math.log(3.0)

finite_rows = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
    elements=st.floats(-1e3, 1e3, allow_nan=False),
)


def _random_qkv(seed: int, batch=(2, 3), q_len=5, k_len=7, d_k=8, d_v=6):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(*batch, q_len, d_k)),
        rng.normal(size=(*batch, k_len, d_k)),
        rng.normal(size=(*batch, k_len, d_v)),
    )


# -- softmax -------------------------------------------------------------------------------


def test_softmax_matches_hand_computed_values():
    # e^0 : e^ln2 : e^ln3 = 1 : 2 : 3
    np.testing.assert_allclose(softmax([0.0, LN2, LN3]), [1 / 6, 2 / 6, 3 / 6], rtol=1e-12)
    np.testing.assert_allclose(
        softmax([[0.0, 0.0], [0.0, LN3]]), [[0.5, 0.5], [0.25, 0.75]], rtol=1e-12
    )
    # e^(1/1) / (e^1 + e^2 + e^3), written out
    e = math.e
    np.testing.assert_allclose(
        softmax([1.0, 2.0, 3.0]), [e / (e + e**2 + e**3), e**2 / (e + e**2 + e**3),
                                   e**3 / (e + e**2 + e**3)], rtol=1e-12,
    )  # fmt: skip


def test_softmax_with_temperature_matches_hand_computed_values():
    # scores (0, 2 ln 2) at T = 2 become (0, ln 2): weights 1/3, 2/3
    np.testing.assert_allclose(softmax([0.0, 2 * LN2], temperature=2.0), [1 / 3, 2 / 3])
    # T = 0.5 doubles the scores: (0, ln 2) -> (0, 2 ln 2): weights 1/5, 4/5
    np.testing.assert_allclose(softmax([0.0, LN2], temperature=0.5), [1 / 5, 4 / 5])


@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("temperature", [0.3, 1.0, 4.0])
def test_softmax_equals_torch(axis, temperature):
    scores = np.random.default_rng(0).normal(scale=3.0, size=(3, 4, 5))
    expected = torch.softmax(torch.from_numpy(scores) / temperature, dim=axis).numpy()
    np.testing.assert_allclose(softmax(scores, temperature, axis=axis), expected, atol=1e-12)


def test_softmax_is_stable_for_huge_scores():
    weights = softmax([1e4, 0.0, -1e4])
    assert np.isfinite(weights).all()
    np.testing.assert_array_equal(weights, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(softmax([1e4, 1e4]), [0.5, 0.5])
    np.testing.assert_allclose(softmax([1e4, 1e4 + LN3]), [0.25, 0.75], rtol=1e-9)
    torch_weights = torch.softmax(torch.tensor([1e4, 1e4 - 1.0, 0.0], dtype=torch.float64), 0)
    np.testing.assert_allclose(softmax([1e4, 1e4 - 1.0, 0.0]), torch_weights.numpy())


def test_softmax_ignores_a_constant_added_to_every_score():
    scores = np.array([0.3, -1.2, 2.5, 0.0])
    np.testing.assert_allclose(softmax(scores + 1000.0), softmax(scores), atol=1e-12)


def test_small_temperature_approaches_one_hot_argmax():
    scores = np.random.default_rng(1).normal(size=(4, 6))
    weights = softmax(scores, temperature=1e-3)
    np.testing.assert_allclose(weights, np.eye(6)[scores.argmax(axis=-1)], atol=1e-12)


def test_large_temperature_approaches_uniform():
    scores = np.random.default_rng(2).normal(size=(4, 6))
    np.testing.assert_allclose(softmax(scores, temperature=1e6), np.full((4, 6), 1 / 6),
                               atol=1e-6)


def test_temperature_sharpens_below_one_and_flattens_above():
    scores = np.array([0.67, 2.94, 0.56, 1.05, 0.67, 1.54, 0.9, 2.81, 0.96, 1.68, 0.48])
    temperatures = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0]
    rows = [softmax(scores, t) for t in temperatures]
    largest = [row.max() for row in rows]
    entropies = [entropy(row) for row in rows]
    assert all(a > b for a, b in zip(largest, largest[1:], strict=False))
    assert all(a < b for a, b in zip(entropies, entropies[1:], strict=False))
    assert all(row.argmax() == scores.argmax() for row in rows)  # the order never changes


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_invalid_temperature_raises(temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        softmax([1.0, 2.0], temperature)


@pytest.mark.parametrize("bad", [[1.0, float("nan")], [1.0, float("inf")]])
def test_nan_or_positive_inf_scores_raise(bad):
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        softmax(bad)


def test_non_numeric_scores_raise():
    with pytest.raises(ValueError, match="scores must be an array of numbers"):
        softmax(["a", "b"])


def test_fully_masked_row_gives_zeros_not_nan():
    scores = np.array([[-np.inf, -np.inf, -np.inf], [0.0, -np.inf, LN3]])
    weights = softmax(scores)  # a RuntimeWarning would fail this test (pyproject filterwarnings)
    np.testing.assert_array_equal(weights[0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(weights[1], [0.25, 0.0, 0.75])
    assert weights[1, 1] == 0.0


@settings(max_examples=60, deadline=None)
@given(scores=finite_rows, temperature=st.floats(0.05, 20.0))
def test_softmax_rows_are_distributions(scores, temperature):
    weights = softmax(scores, temperature)
    assert weights.shape == scores.shape
    assert np.all(weights >= 0.0) and np.all(weights <= 1.0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(scores=finite_rows, data=st.data())
def test_softmax_is_permutation_equivariant(scores, data):
    perm = data.draw(st.permutations(range(scores.shape[-1])))
    np.testing.assert_allclose(softmax(scores[..., perm]), softmax(scores)[..., perm],
                               atol=1e-15)


# -- relevance scores, context vectors, contributions ---------------------------------------


def test_relevance_scores_are_dot_products():
    queries = np.array([[1.0, 2.0], [0.0, -1.0]])
    keys = np.array([[3.0, 4.0], [5.0, 6.0], [1.0, 0.0]])
    expected = np.array([[11.0, 17.0, 1.0], [-4.0, -6.0, 0.0]])
    np.testing.assert_array_equal(relevance_scores(queries, keys), expected)
    np.testing.assert_allclose(relevance_scores(queries, keys, scale=True), expected / np.sqrt(2))


def test_relevance_scores_keep_batch_dimensions():
    q, k, _ = _random_qkv(3)
    scores = relevance_scores(q, k)
    assert scores.shape == (2, 3, 5, 7)
    np.testing.assert_allclose(scores[1, 2], q[1, 2] @ k[1, 2].T)


def test_relevance_score_errors_name_the_expected_shape():
    with pytest.raises(ValueError, match=r"queries must have shape \(\.\.\., q_len, d\)"):
        relevance_scores(np.ones(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"keys must have shape \(\.\.\., k_len, d\)"):
        relevance_scores(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match=r"must share d; got queries \(2, 3\) and keys \(2, 4\)"):
        relevance_scores(np.ones((2, 3)), np.ones((2, 4)))


def test_context_vectors_are_weighted_averages():
    weights = np.array([[1.0, 0.0, 0.0], [0.5, 0.25, 0.25]])
    values = np.array([[2.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
    np.testing.assert_allclose(context_vectors(weights, values), [[2.0, 0.0], [2.0, 2.0]])


def test_context_vector_errors_name_the_expected_shape():
    with pytest.raises(ValueError, match=r"weights must have shape \(\.\.\., q_len, k_len\)"):
        context_vectors(np.ones(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"must share k_len; got weights \(2, 3\) and values"):
        context_vectors(np.ones((2, 3)), np.ones((4, 2)))


def test_context_contributions_are_the_terms_of_the_sum():
    weights = np.array([[0.5, 0.25, 0.25]])
    values = np.array([[2.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
    terms = context_contributions(weights, values)
    np.testing.assert_allclose(terms, [[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    np.testing.assert_allclose(terms.sum(axis=-2), context_vectors(weights, values))


def test_context_contributions_sum_to_context_vectors_with_batch_dimensions():
    q, k, v = _random_qkv(4)
    _, weights = scaled_dot_product_attention(q, k, v)
    terms = context_contributions(weights, v)
    assert terms.shape == (2, 3, 5, 7, 6)
    np.testing.assert_allclose(terms.sum(axis=-2), context_vectors(weights, v), atol=1e-12)


def test_context_contribution_errors_name_the_expected_shape():
    with pytest.raises(ValueError, match=r"values must have shape \(\.\.\., k_len, d_v\)"):
        context_contributions(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="must share k_len"):
        context_contributions(np.ones((2, 3)), np.ones((2, 5)))


# -- entropy --------------------------------------------------------------------------------


def test_entropy_of_hand_computed_distributions():
    assert entropy([1.0, 0.0, 0.0]) == 0.0
    assert not np.signbit(entropy([0.0, 1.0]))  # 0.0, not -0.0
    np.testing.assert_allclose(entropy(np.full(11, 1 / 11)), math.log(11))
    np.testing.assert_allclose(entropy([0.5, 0.25, 0.25]), 1.5 * LN2)
    np.testing.assert_allclose(entropy([[0.5, 0.5], [1.0, 0.0]]), [LN2, 0.0])
    np.testing.assert_allclose(entropy([[0.5, 1.0], [0.5, 0.0]], axis=0), [LN2, 0.0])


def test_entropy_equals_torch_categorical():
    weights = softmax(np.random.default_rng(5).normal(scale=2.0, size=(4, 7)))
    expected = torch.distributions.Categorical(probs=torch.from_numpy(weights)).entropy()
    np.testing.assert_allclose(entropy(weights), expected.numpy(), atol=1e-12)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([0.5, 0.6], "must sum to 1"),
        ([[-0.5, 1.5]], "non-negative"),
        ([np.nan, 1.0], "finite"),
        (np.zeros((2, 0)), "non-empty"),
        (1.0, "non-empty"),
    ],
)
def test_entropy_rejects_what_is_not_a_distribution(bad, message):
    with pytest.raises(ValueError, match=message):
        entropy(bad)


# -- scaled dot-product attention -----------------------------------------------------------


def test_scaled_dot_product_attention_by_hand():
    q = np.array([[2.0, 0.0]])
    k = np.array([[0.0, 0.0], [LN3 * np.sqrt(2) / 2, 0.0]])  # q.k / sqrt(2) = 0 and ln 3
    v = np.array([[4.0, 0.0], [0.0, 4.0]])
    context, weights = scaled_dot_product_attention(q, k, v)
    np.testing.assert_allclose(weights, [[0.25, 0.75]])
    np.testing.assert_allclose(context, [[1.0, 3.0]])


def _torch_sdpa(q, k, v, mask=None):
    tensors = [torch.from_numpy(a) for a in (q, k, v)]
    attn_mask = None if mask is None else torch.from_numpy(np.ascontiguousarray(mask))
    return F.scaled_dot_product_attention(*tensors, attn_mask=attn_mask).numpy()


def _torch_weights(q, k, mask=None):
    scores = torch.from_numpy(q) @ torch.from_numpy(k).transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~torch.from_numpy(np.ascontiguousarray(mask)), -torch.inf)
    return torch.softmax(scores, dim=-1).numpy()


@pytest.mark.parametrize(
    ("batch", "q_len", "k_len", "d_k", "d_v"),
    [((2, 3), 5, 5, 8, 8), ((2, 3), 5, 7, 8, 6), ((4,), 1, 9, 3, 5), ((), 6, 6, 16, 2)],
)
def test_attention_equals_torch_without_mask(batch, q_len, k_len, d_k, d_v):
    q, k, v = _random_qkv(6, batch, q_len, k_len, d_k, d_v)
    context, weights = scaled_dot_product_attention(q, k, v)
    assert context.shape == (*batch, q_len, d_v) and weights.shape == (*batch, q_len, k_len)
    np.testing.assert_allclose(context, _torch_sdpa(q, k, v), atol=1e-6, rtol=0)
    np.testing.assert_allclose(weights, _torch_weights(q, k), atol=1e-12)


def test_attention_equals_torch_with_causal_mask():
    q, k, v = _random_qkv(7, (2, 3), 5, 5, 8, 8)
    mask = causal_mask(5)
    context, weights = scaled_dot_product_attention(q, k, v, mask)
    np.testing.assert_allclose(context, _torch_sdpa(q, k, v, mask), atol=1e-6, rtol=0)
    expected = F.scaled_dot_product_attention(
        *(torch.from_numpy(a) for a in (q, k, v)), is_causal=True
    ).numpy()
    np.testing.assert_allclose(context, expected, atol=1e-6, rtol=0)
    assert np.all(weights[..., ~mask] == 0.0)
    # the first token can only attend to itself: its context is its own value vector
    np.testing.assert_allclose(context[..., 0, :], v[..., 0, :], atol=1e-12)


def test_attention_equals_torch_with_padding_mask():
    q, k, v = _random_qkv(8, (2, 3), 5, 7, 8, 6)
    ids = np.array([[5, 6, 7, 8, 9, 10, 11], [5, 6, 7, 0, 0, 0, 0]])
    mask = padding_mask(ids)[:, None]  # (batch, 1, 1, k_len) against (batch, heads, q, k)
    context, weights = scaled_dot_product_attention(q, k, v, mask)
    np.testing.assert_allclose(context, _torch_sdpa(q, k, v, mask), atol=1e-6, rtol=0)
    assert np.all(weights[1, :, :, 3:] == 0.0)
    # padding keys are ignored: same result as dropping them
    short, _ = scaled_dot_product_attention(q[1], k[1, :, :3], v[1, :, :3])
    np.testing.assert_allclose(context[1], short, atol=1e-12)


def test_attention_equals_torch_where_rows_are_not_fully_masked():
    q, k, v = _random_qkv(9, (2, 3), 5, 7, 8, 6)
    mask = np.random.default_rng(10).random((2, 3, 5, 7)) < 0.5
    mask[0, 1, 2] = False  # a fully masked row
    mask[1, 0, 4] = False
    fully = ~mask.any(axis=-1)
    assert fully.sum() >= 2
    context, weights = scaled_dot_product_attention(q, k, v, mask)
    np.testing.assert_allclose(context[~fully], _torch_sdpa(q, k, v, mask)[~fully],
                               atol=1e-6, rtol=0)
    np.testing.assert_array_equal(context[fully], 0.0)
    np.testing.assert_array_equal(weights[fully], 0.0)
    assert np.isfinite(context).all() and np.isfinite(weights).all()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 7),
    d=st.integers(1, 6),
    data=st.data(),
)
def test_attention_is_permutation_equivariant(seed, n, d, data):
    """Self-attention has no notion of order: permuting the tokens permutes the output."""
    x = np.random.default_rng(seed).normal(size=(n, d))
    perm = np.array(data.draw(st.permutations(range(n))))
    context, weights = scaled_dot_product_attention(x, x, x)
    context_p, weights_p = scaled_dot_product_attention(x[perm], x[perm], x[perm])
    np.testing.assert_allclose(context_p, context[perm], atol=1e-12)
    np.testing.assert_allclose(weights_p, weights[perm][:, perm], atol=1e-12)
    # permuting only the keys and values together changes nothing
    context_kv, _ = scaled_dot_product_attention(x, x[perm], x[perm])
    np.testing.assert_allclose(context_kv, context, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    q_len=st.integers(1, 6),
    k_len=st.integers(1, 6),
    data=st.data(),
)
def test_masked_positions_get_exactly_zero_weight(seed, q_len, k_len, data):
    mask = data.draw(hnp.arrays(np.bool_, (q_len, k_len)))
    q, k, v = _random_qkv(seed, (2,), q_len, k_len, 4, 3)
    context, weights = scaled_dot_product_attention(q, k, v, mask)
    assert np.all(weights[:, ~mask] == 0.0)
    any_key = mask.any(axis=-1)
    np.testing.assert_allclose(weights.sum(axis=-1)[:, any_key], 1.0, atol=1e-12)
    np.testing.assert_array_equal(weights[:, ~any_key], 0.0)
    np.testing.assert_array_equal(context[:, ~any_key], 0.0)


def test_attention_errors_name_the_expected_shape():
    q, k, v = _random_qkv(11, (2,), 5, 7, 8, 6)
    with pytest.raises(ValueError, match=r"k \(\.\.\., k_len, d_k\) and v \(\.\.\., k_len, d_v\)"):
        scaled_dot_product_attention(q, k, v[:, :6])
    with pytest.raises(ValueError, match=r"v must have shape \(\.\.\., k_len, d_v\)"):
        scaled_dot_product_attention(q, k, np.ones(7))
    with pytest.raises(ValueError, match="must share d"):
        scaled_dot_product_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match=r"does not broadcast to the scores' shape "
                                         r"\(\.\.\., q_len, k_len\) = \(2, 5, 7\)"):
        scaled_dot_product_attention(q, k, v, np.ones((5, 5), dtype=bool))
    with pytest.raises(ValueError, match="mask must be boolean"):
        scaled_dot_product_attention(q, k, v, np.ones((5, 7)))


# -- masks -------------------------------------------------------------------------------------


def test_causal_mask_values():
    np.testing.assert_array_equal(
        causal_mask(3), [[True, False, False], [True, True, False], [True, True, True]]
    )
    assert causal_mask(1).tolist() == [[True]]
    assert causal_mask(np.int64(4)).dtype == np.bool_


@pytest.mark.parametrize(("size", "past"), [(1, 0), (4, 0), (1, 6), (3, 5)])
def test_causal_mask_with_past_keys_equals_torch_bottom_right_causal(size, past):
    """With ``past`` cached keys, the new queries are the last rows of the full causal mask:
    torch's ``causal_lower_right`` bias says the same."""
    from torch.nn.attention.bias import causal_lower_right

    mask = causal_mask(size, past)
    assert mask.shape == (size, past + size)
    np.testing.assert_array_equal(mask, causal_mask(past + size)[past:])
    q = torch.randn(1, 1, size, 4, generator=torch.Generator().manual_seed(size + past))
    k = torch.randn(1, 1, past + size, 4, generator=torch.Generator().manual_seed(past))
    expected = F.scaled_dot_product_attention(
        q, k, k, attn_mask=causal_lower_right(size, past + size)
    )
    ours = F.scaled_dot_product_attention(q, k, k, attn_mask=torch.from_numpy(mask))
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="past must be a non-negative integer"):
        causal_mask(size, -1)


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "3", None])
def test_causal_mask_rejects_non_positive_integers(bad):
    with pytest.raises(ValueError, match="size must be a positive integer"):
        causal_mask(bad)


def test_padding_mask_values():
    ids = np.array([[5, 6, 0], [7, 0, 0]])
    expected = [[[True, True, False]], [[True, False, False]]]
    np.testing.assert_array_equal(padding_mask(ids), expected)
    assert padding_mask(ids).shape == (2, 1, 3)
    np.testing.assert_array_equal(padding_mask(np.array([[9, 1, 9]]), pad_id=9),
                                  [[[False, True, False]]])


@pytest.mark.parametrize(
    "bad", [np.array([1, 2, 0]), np.array([[1.0, 0.0]]), np.ones((1, 2, 3), dtype=int)]
)
def test_padding_mask_errors_name_the_expected_shape(bad):
    with pytest.raises(ValueError, match=r"token_ids must be integers of shape \(batch, seq\)"):
        padding_mask(bad)
