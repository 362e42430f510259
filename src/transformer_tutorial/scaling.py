"""Why scaled dot-product attention divides the scores by :math:`\\sqrt{d_k}`.

If the entries of a query :math:`q` and a key :math:`k` are independent with mean 0 and
variance 1, their dot product :math:`q \\cdot k = \\sum_{i=1}^{d_k} q_i k_i` is a sum of
:math:`d_k` independent terms of variance 1, so

.. math::

    \\mathrm{Var}(q \\cdot k) = d_k, \\qquad \\mathrm{std}(q \\cdot k) = \\sqrt{d_k}.

Wide vectors make large scores, and a softmax of large scores is nearly one-hot: one weight
close to 1, the rest close to 0, and the gradient through the softmax close to 0. Dividing by
:math:`\\sqrt{d_k}` brings the scores back to variance 1 whatever :math:`d_k` is. This module
measures all of it, by sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transformer_tutorial import checks
from transformer_tutorial.attention import relevance_scores, softmax
from transformer_tutorial.checks import as_float_array, require_ndim

__all__ = [
    "sample_dot_products",
    "dot_product_std",
    "random_attention",
    "softmax_jacobian",
    "SaturationStats",
    "saturation_stats",
]


def sample_dot_products(d_k: int, samples: int = 10_000, seed: int = 0) -> np.ndarray:
    """``samples`` dot products :math:`q \\cdot k` of independent standard normal vectors of
    length ``d_k``; returns ``(samples,)``. Their variance is :math:`d_k`."""
    d_k = checks.positive_int(d_k, "d_k")
    samples = checks.positive_int(samples, "samples")
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((samples, d_k))
    k = rng.standard_normal((samples, d_k))
    return np.einsum("sd,sd->s", q, k)


def dot_product_std(d_ks: Sequence[int], samples: int = 10_000, seed: int = 0) -> np.ndarray:
    """Measured standard deviation of :math:`q \\cdot k` for each ``d_k`` in ``d_ks``
    (expected: :math:`\\sqrt{d_k}`); returns ``(len(d_ks),)``."""
    d_ks = checks.int_sequence(d_ks, "d_ks")
    if len(d_ks) == 0:
        raise ValueError("d_ks must hold at least one dimension")
    return np.array([sample_dot_products(d, samples, seed).std() for d in d_ks])


def random_attention(
    n_tokens: int, d_k: int, scale: bool, seed: int = 0, batch: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and softmax weights of standard normal queries and keys (stand-ins for a layer's
    queries and keys whose entries have variance 1).

    Scores are :math:`QK^\\top/\\sqrt{d_k}` with ``scale=True`` and :math:`QK^\\top` without.
    Returns ``(scores, weights)``, each ``(n_tokens, n_tokens)``, or
    ``(batch, n_tokens, n_tokens)`` if ``batch`` is given.
    """
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    d_k = checks.positive_int(d_k, "d_k")
    lead = () if batch is None else (checks.positive_int(batch, "batch"),)
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((*lead, n_tokens, d_k))
    k = rng.standard_normal((*lead, n_tokens, d_k))
    scores = relevance_scores(q, k, scale=scale)
    return scores, softmax(scores)


def softmax_jacobian(weights: np.ndarray) -> np.ndarray:
    """Jacobian of the softmax at its output ``weights`` ``(..., n)``,
    :math:`\\partial p_i / \\partial s_j = p_i(\\delta_{ij} - p_j)`; returns ``(..., n, n)``.

    A one-hot row has a zero Jacobian: no gradient reaches the scores.
    """
    p = require_ndim(as_float_array(weights, "weights"), "weights", 1, "(..., n)")
    return p[..., :, None] * (np.eye(p.shape[-1]) - p[..., None, :])


@dataclass(frozen=True)
class SaturationStats:
    """How saturated the softmax of random scores is, averaged over rows.

    ``score_std``: standard deviation of the scores; ``max_weight``: mean of each row's largest
    weight (1/n for uniform rows, 1 for one-hot rows); ``gradient_norm``: mean Frobenius norm of
    each row's softmax Jacobian (0 for one-hot rows).
    """

    d_k: int
    scaled: bool
    score_std: float
    max_weight: float
    gradient_norm: float


def saturation_stats(
    d_k: int, scaled: bool, n_tokens: int = 10, batch: int = 200, seed: int = 0
) -> SaturationStats:
    """:class:`SaturationStats` of :func:`random_attention` over ``batch`` random
    ``(n_tokens, n_tokens)`` score matrices."""
    scores, weights = random_attention(n_tokens, d_k, scale=scaled, seed=seed, batch=batch)
    jacobian_norms = np.linalg.norm(softmax_jacobian(weights), axis=(-2, -1))
    return SaturationStats(
        d_k=int(d_k),
        scaled=bool(scaled),
        score_std=float(scores.std()),
        max_weight=float(weights.max(axis=-1).mean()),
        gradient_norm=float(jacobian_norms.mean()),
    )
