"""Choosing the next token from the language-model head's scores (chapter 9).

The head gives one score (logit) :math:`z_t` per vocabulary entry. Turning them into the
distribution the next token is drawn from takes up to three steps, each a small function here:

* **temperature** :math:`T`: :math:`p_t = e^{z_t/T} / \\sum_u e^{z_u/T}`
  (:func:`next_token_distribution`; :math:`T \\to 0` is greedy decoding, :math:`T > 1` flattens);
* **top-k**: keep the :math:`k` most likely tokens and renormalize (:func:`top_k_filter`);
* **top-p** (nucleus, Holtzman et al. 2020): keep the smallest set of most likely tokens whose
  probabilities add up to at least :math:`p`, and renormalize (:func:`top_p_filter`).

All functions work on one distribution, a 1-D numpy array over the vocabulary.
"""

from __future__ import annotations

import numpy as np

from transformer_tutorial import checks
from transformer_tutorial.attention import softmax
from transformer_tutorial.checks import as_float_array

__all__ = [
    "top_k_filter",
    "top_p_filter",
    "check_filters",
    "next_token_distribution",
    "sample_token",
]


def _distribution(probs: object) -> np.ndarray:
    probs = as_float_array(probs, "probs")
    if probs.ndim != 1 or probs.size == 0:
        raise ValueError(f"probs must have shape (vocab,), got {probs.shape}")
    if not np.isfinite(probs).all() or (probs < 0).any() or not np.isclose(probs.sum(), 1.0):
        raise ValueError("probs must be finite, non-negative and sum to 1")
    return probs


def top_k_filter(probs: np.ndarray, k: int) -> np.ndarray:
    """Keep the ``k`` most likely entries of ``probs`` ``(vocab,)``, zero the rest, renormalize.

    :math:`p'_t = p_t / \\sum_{u \\in \\text{top-}k} p_u` for :math:`t` among the :math:`k`
    largest, 0 otherwise. Ties at the boundary are broken by token id (lower id kept).
    """
    probs = _distribution(probs)
    k = checks.int_in_range(k, "k", 1, probs.size)
    keep = np.argsort(-probs, kind="stable")[:k]
    out = np.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def top_p_filter(probs: np.ndarray, p: float) -> np.ndarray:
    """Nucleus filtering of ``probs`` ``(vocab,)``: keep the fewest most likely entries whose
    total probability reaches ``p`` (in (0, 1]), zero the rest, renormalize.

    Sorted from most to least likely, an entry is kept if the probability of the entries
    before it is below :math:`p`; so the most likely token is always kept.
    """
    probs = _distribution(probs)
    p = checks.probability(p, "p", allow_zero=False)
    order = np.argsort(-probs, kind="stable")
    before = np.cumsum(probs[order]) - probs[order]  # mass of the more likely entries
    keep = order[before < p]
    out = np.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def check_filters(top_k: object, top_p: object, vocab: int | None = None) -> None:
    """Refuse a bad ``top_k`` (an integer in [1, vocab]) or ``top_p`` (a number in (0, 1]);
    ``None`` switches a filter off. Called before any slow work."""
    if vocab is not None:
        checks.positive_int(vocab, "vocab")
    if top_k is not None:
        checks.int_in_range(top_k, "top_k", 1, vocab)
    if top_p is not None:
        checks.probability(top_p, "top_p", allow_zero=False)


def next_token_distribution(
    logits: np.ndarray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> np.ndarray:
    """The distribution the next token is drawn from, ``(vocab,)``.

    :math:`p = \\mathrm{softmax}(z / T)`, then :func:`top_k_filter` (if ``top_k``) and
    :func:`top_p_filter` (if ``top_p``). ``temperature=0`` means greedy decoding: all the
    probability on the highest logit (the lowest id among ties).
    """
    logits = checks.float_array(logits, "logits", "(vocab,)", ndim=1).astype(np.float64)
    temperature = checks.temperature(temperature, allow_zero=True)
    check_filters(top_k, top_p, logits.size)
    if temperature == 0:
        probs = np.zeros_like(logits)
        probs[int(np.argmax(logits))] = 1.0
    else:
        probs = softmax(logits, temperature=temperature)
    if top_k is not None:
        probs = top_k_filter(probs, top_k)
    if top_p is not None:
        probs = top_p_filter(probs, top_p)
    return probs


def sample_token(probs: np.ndarray, rng: np.random.Generator) -> int:
    """Draw one token id from ``probs`` ``(vocab,)`` with the numpy generator ``rng``."""
    probs = _distribution(probs)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (np.random.default_rng), got {rng!r}")
    return int(rng.choice(probs.size, p=probs / probs.sum()))
