"""Attention from first principles, in numpy.

The early chapters build attention out of three steps, and each step is one function here:

1. relevance scores: how much each query token should look at each key token,
   :math:`S = Q K^\\top` (scaled by :math:`1/\\sqrt{d_k}` in scaled dot-product attention);
2. softmax weighting: :math:`A = \\mathrm{softmax}(S)` row by row, so each row is a set of
   weights between 0 and 1 that sum to 1;
3. context vectors: :math:`C = A V`, each row a weighted average of the value vectors.

Masks are boolean arrays where ``True`` means "may attend" (the convention of
``torch.nn.functional.scaled_dot_product_attention``).
"""

from __future__ import annotations

import numpy as np

from transformer_tutorial import checks
from transformer_tutorial.checks import as_float_array, require_ndim

__all__ = [
    "softmax",
    "relevance_scores",
    "context_vectors",
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "context_contributions",
    "entropy",
]


def softmax(scores: np.ndarray, temperature: float = 1.0, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax, :math:`\\mathrm{softmax}(s/T)_i = e^{s_i/T} / \\sum_j e^{s_j/T}`.

    ``scores``: any shape; the softmax runs along ``axis``. Entries equal to ``-inf`` get
    weight 0; a slice that is entirely ``-inf`` (a fully masked row) gets all zeros, never NaN.
    ``temperature`` > 0: below 1 sharpens the weights, above 1 flattens them.
    """
    scores = require_ndim(as_float_array(scores, "scores"), "scores", 1, "(..., n)")
    axis = checks.axis(axis, scores.ndim)
    temperature = checks.temperature(temperature)
    if np.isnan(scores).any() or np.isposinf(scores).any():
        raise ValueError("scores must not contain NaN or +inf")
    row_max = np.max(scores, axis=axis, keepdims=True)
    fully_masked = np.isneginf(row_max)
    # Subtract the row's maximum before dividing by T: s - max <= 0, so e^{(s - max)/T} never
    # overflows, and the maximum itself gets e^0 = 1 however small T is. (s - max) / T may
    # overflow to -inf: weight 0, as it should be.
    with np.errstate(over="ignore"):
        shifted = (scores - np.where(fully_masked, 0.0, row_max)) / temperature
    exp = np.exp(shifted)
    total = np.sum(exp, axis=axis, keepdims=True)
    return np.divide(exp, total, out=np.zeros_like(exp), where=total > 0)


def relevance_scores(queries: np.ndarray, keys: np.ndarray, scale: bool = False) -> np.ndarray:
    """Dot-product relevance of every query to every key, :math:`S = Q K^\\top`.

    ``queries``: ``(..., q_len, d)``; ``keys``: ``(..., k_len, d)``;
    returns ``(..., q_len, k_len)``. With ``scale=True`` the scores are divided by
    :math:`\\sqrt{d}` (scaled dot-product attention).
    """
    queries = checks.float_array(queries, "queries", "(..., q_len, d)", min_ndim=2)
    keys = checks.float_array(keys, "keys", "(..., k_len, d)", min_ndim=2)
    if queries.shape[-1] != keys.shape[-1]:
        raise ValueError(
            "queries (..., q_len, d) and keys (..., k_len, d) must share d; "
            f"got queries {queries.shape} and keys {keys.shape}"
        )
    checks.batch_axes(queries=queries, keys=keys)
    scores = queries @ np.swapaxes(keys, -1, -2)
    if scale:
        scores = scores / np.sqrt(queries.shape[-1])
    return scores


def context_vectors(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Weighted averages of the value vectors, :math:`C = A V`.

    ``weights``: ``(..., q_len, k_len)``; ``values``: ``(..., k_len, d_v)``;
    returns ``(..., q_len, d_v)``.
    """
    weights = checks.float_array(weights, "weights", "(..., q_len, k_len)", min_ndim=2)
    values = checks.float_array(values, "values", "(..., k_len, d_v)", min_ndim=2)
    if weights.shape[-1] != values.shape[-2]:
        raise ValueError(
            "weights (..., q_len, k_len) and values (..., k_len, d_v) must share k_len; "
            f"got weights {weights.shape} and values {values.shape}"
        )
    checks.batch_axes(weights=weights, values=values)
    return weights @ values


def scaled_dot_product_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:math:`\\mathrm{Attention}(Q, K, V) = \\mathrm{softmax}(Q K^\\top / \\sqrt{d_k})\\, V`.

    Shapes: ``q`` ``(..., q_len, d_k)``, ``k`` ``(..., k_len, d_k)``, ``v`` ``(..., k_len, d_v)``,
    where ``...`` is any batch shape, e.g. ``(batch, heads)``. ``mask`` is boolean and
    broadcasts to ``(..., q_len, k_len)``; ``True`` means "may attend". A query whose every key
    is masked gets zero weights and a zero context vector.

    Returns ``(context, weights)`` with shapes ``(..., q_len, d_v)`` and ``(..., q_len, k_len)``.
    """
    q = checks.float_array(q, "q", "(..., q_len, d_k)", min_ndim=2)
    k = checks.float_array(k, "k", "(..., k_len, d_k)", min_ndim=2)
    v = checks.float_array(v, "v", "(..., k_len, d_v)", min_ndim=2)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q (..., q_len, d_k) and k (..., k_len, d_k) must share d_k; "
            f"got q {q.shape} and k {k.shape}"
        )
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(
            f"k (..., k_len, d_k) and v (..., k_len, d_v) must share k_len; "
            f"got k {k.shape} and v {v.shape}"
        )
    checks.batch_axes(q=q, k=k, v=v)
    scores = relevance_scores(q, k, scale=True)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise ValueError(f"mask must be boolean (True = may attend), got dtype {mask.dtype}")
        try:
            np.broadcast_shapes(mask.shape, scores.shape)
        except ValueError:
            raise ValueError(
                f"mask of shape {mask.shape} does not broadcast to the scores' shape "
                f"(..., q_len, k_len) = {scores.shape}"
            ) from None
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores)
    return context_vectors(weights, v), weights


def causal_mask(size: int, past: int = 0) -> np.ndarray:
    """Boolean ``(size, past + size)`` mask, ``True`` on and below the diagonal.

    Position :math:`i` may attend to positions :math:`j \\le i` only: a token cannot look at
    the tokens that come after it. With ``past`` earlier tokens already read (a KV cache), the
    ``size`` new queries sit at positions ``past .. past + size - 1`` and query :math:`i` may
    attend keys :math:`j \\le past + i`. The book's one causal mask: the torch modules
    (:mod:`~transformer_tutorial.multihead`) use it too, through ``torch.from_numpy``.
    """
    size = checks.positive_int(size, "size")
    past = checks.non_negative_int(past, "past")
    return np.tril(np.ones((size, past + size), dtype=bool), k=past)


def padding_mask(token_ids: np.ndarray, pad_id: int = 0) -> np.ndarray:
    """Boolean mask that hides padding keys.

    ``token_ids``: ``(batch, seq)`` integers; returns ``(batch, 1, seq)``, ``True`` where the key
    is a real token. It broadcasts against scores ``(batch, q_len, seq)``; add a head axis with
    ``mask[:, None]`` for ``(batch, heads, q_len, seq)``.
    """
    try:
        ids = np.asarray(token_ids)
    except (TypeError, ValueError) as err:
        raise ValueError(f"token_ids must be integers of shape (batch, seq): {err}") from None
    if ids.ndim != 2 or 0 in ids.shape or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"token_ids must be integers of shape (batch, seq), got {ids.dtype} {ids.shape}"
        )
    pad_id = checks.integer(pad_id, "pad_id")
    return (ids != pad_id)[:, None, :]


def context_contributions(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The terms of the context vectors, :math:`a_{ij}\\, v_j`, before they are summed.

    ``weights``: ``(..., q_len, k_len)``; ``values``: ``(..., k_len, d_v)``; returns
    ``(..., q_len, k_len, d_v)``. Summing over the ``k_len`` axis (``axis=-2``) gives
    :func:`context_vectors`, :math:`c_i = \\sum_j a_{ij}\\, v_j`.
    """
    weights = checks.float_array(weights, "weights", "(..., q_len, k_len)", min_ndim=2)
    values = checks.float_array(values, "values", "(..., k_len, d_v)", min_ndim=2)
    if weights.shape[-1] != values.shape[-2]:
        raise ValueError(
            "weights (..., q_len, k_len) and values (..., k_len, d_v) must share k_len; "
            f"got weights {weights.shape} and values {values.shape}"
        )
    checks.batch_axes(weights=weights, values=values)
    return weights[..., :, :, None] * values[..., None, :, :]


def entropy(weights: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy of attention weights in nats, :math:`H(a) = -\\sum_j a_j \\ln a_j`.

    ``weights``: any shape, each slice along ``axis`` a distribution (non-negative, summing to
    1); returns the input's shape without ``axis``. :math:`0 \\ln 0` counts as 0. ``H`` is 0
    for a one-hot row (all attention on one token) and :math:`\\ln n` for uniform weights over
    ``n`` tokens: the lower the entropy, the sharper the attention.
    """
    weights = as_float_array(weights, "weights")
    if weights.ndim == 0 or 0 in weights.shape:
        raise ValueError(f"weights must be a non-empty array (..., k_len), got {weights.shape}")
    axis = checks.axis(axis, weights.ndim)
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be finite and non-negative")
    totals = np.sum(weights, axis=axis)
    if not np.allclose(totals, 1.0, atol=1e-6):
        raise ValueError(
            f"each slice of weights along axis {axis} must sum to 1 (a distribution); "
            f"got sums between {totals.min():.6g} and {totals.max():.6g}"
        )
    logs = np.log(weights, out=np.zeros_like(weights), where=weights > 0)
    return 0.0 - np.sum(weights * logs, axis=axis)  # not -sum: one-hot gives 0.0, not -0.0
