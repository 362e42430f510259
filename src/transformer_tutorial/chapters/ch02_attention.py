"""Chapter 2: the relevance example of the book's brief, scored, then softmaxed.

"match" scores 12.1 against "the" and 89.3 against "burn". A softmax of two scores 77.2 apart
gives the smaller one the weight :math:`e^{-77.2} / (1 + e^{-77.2}) \\approx e^{-77.2}`: the
larger wins outright. Scores that far apart are what long vectors produce (a dot product of
:math:`d_k` numbers grows with :math:`d_k`), which is why chapter 3 divides by
:math:`\\sqrt{d_k}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transformer_tutorial.attention import softmax

__all__ = ["BRIEF_QUERY", "BRIEF_SCORES", "RelevanceExample", "relevance_example"]

BRIEF_QUERY = "match"
# The brief's relevance scores of "match" against two other words.
BRIEF_SCORES: dict[str, float] = {"the": 12.1, "burn": 89.3}


@dataclass(frozen=True)
class RelevanceExample:
    """Scores of one query against a few words, and their softmax weights, all ``(words,)``.

    ``log_weights`` is :math:`\\ln a_j = s_j/T - \\ln \\sum_k e^{s_k/T}`, readable even where
    :math:`a_j` is too small to print.
    """

    words: tuple[str, ...]
    scores: np.ndarray
    weights: np.ndarray
    log_weights: np.ndarray


def relevance_example(
    scores: dict[str, float] | None = None, temperature: float = 1.0
) -> RelevanceExample:
    """Softmax of ``scores`` (word -> score; default :data:`BRIEF_SCORES`) divided by
    ``temperature`` (chapter 3 uses :math:`T = \\sqrt{d_k}`)."""
    scores = BRIEF_SCORES if scores is None else scores
    if not isinstance(scores, dict) or not scores:
        raise ValueError(f"scores must be a non-empty dict word -> score, got {scores!r}")
    words = tuple(scores)
    values = np.array([scores[w] for w in words], dtype=float)
    weights = softmax(values, temperature=temperature)
    if (weights == 0).any():
        raise ValueError("a weight underflows to 0: the scores are too far apart to show")
    return RelevanceExample(words, values, weights, np.log(weights))
