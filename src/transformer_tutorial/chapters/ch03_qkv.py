"""Chapter 3: queries and keys set by hand, so that they solve chapter 2's two problems.

With one vector per word (chapter 2) the scores are symmetric, :math:`s_{ij} = s_{ji}`, and a
long vector scores highest with itself. :func:`hand_set_projection` writes :math:`W^Q` and
:math:`W^K` for the toy table's four features (animal, object, action, function word) so that
a query says what a word *looks for* and a key what it *is*:

- key feature "is an animal" reads the animal feature, "is an action" the action feature;
- query feature "wants an animal" is fed by the function-word feature (weight 4) and the action
  feature (weight 1): "it" (and, in this toy, every function word) and the verbs look for an
  animal; query feature "wants an action" is fed by the animal feature: an animal looks for
  what it does.

:math:`W^V` is the identity: each word passes on its own four features, so the output can be
read in the same columns as :math:`X`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transformer_tutorial.attention import (
    context_vectors,
    relevance_scores,
    scaled_dot_product_attention,
    softmax,
)
from transformer_tutorial.checks import argument_errors, float_array, instance_of
from transformer_tutorial.embeddings import TOY_FEATURES
from transformer_tutorial.projections import QKVProjection

__all__ = [
    "QUERY_FEATURES",
    "KEY_FEATURES",
    "hand_set_projection",
    "AttentionComparison",
    "compare_with_dot_product",
]

QUERY_FEATURES: tuple[str, ...] = ("wants an animal", "wants an action")
KEY_FEATURES: tuple[str, ...] = ("is an animal", "is an action")

# (input feature, query feature or key feature, weight)
_QUERY_WEIGHTS = (("function word", 0, 4.0), ("action", 0, 1.0), ("animal", 1, 1.0))
_KEY_WEIGHTS = (("animal", 0, 1.0), ("action", 1, 1.0))


def hand_set_projection() -> QKVProjection:
    """:math:`W^Q, W^K` ``(4, 2)`` and :math:`W^V = I` ``(4, 4)`` for the toy table's features
    (:data:`~transformer_tutorial.embeddings.TOY_FEATURES`): rows are input features, columns
    :data:`QUERY_FEATURES` / :data:`KEY_FEATURES`."""
    w_q = np.zeros((len(TOY_FEATURES), len(QUERY_FEATURES)))
    w_k = np.zeros((len(TOY_FEATURES), len(KEY_FEATURES)))
    for matrix, entries in ((w_q, _QUERY_WEIGHTS), (w_k, _KEY_WEIGHTS)):
        for feature, column, weight in entries:
            matrix[TOY_FEATURES.index(feature), column] = weight
    return QKVProjection(w_q, w_k, np.eye(len(TOY_FEATURES)))


@dataclass(frozen=True)
class AttentionComparison:
    """Chapter 2's attention, :math:`\\mathrm{softmax}(XX^\\top)` (``before``), beside
    :math:`\\mathrm{softmax}(QK^\\top/\\sqrt{d_k})` (``after``), both ``(seq, seq)``; and the
    context vectors, :math:`AX` (``context_before``) and :math:`AV` (``context_after``),
    ``(seq, d_v)``."""

    before: np.ndarray
    after: np.ndarray
    context_before: np.ndarray
    context_after: np.ndarray

    def self_winners(self, which: str) -> list[int]:
        """The rows of ``"before"`` or ``"after"`` whose largest weight is on the token
        itself (the diagonal)."""
        if which not in ("before", "after"):
            raise ValueError(f'which must be "before" or "after", got {which!r}')
        weights = getattr(self, which)
        return [i for i, row in enumerate(weights) if row.argmax() == i]


def compare_with_dot_product(x: np.ndarray, projection: QKVProjection) -> AttentionComparison:
    """Attention of one sentence ``x`` ``(seq, d_model)`` with the plain dot product of
    chapter 2 and with ``projection``'s queries, keys and values."""
    projection = instance_of(projection, "projection", QKVProjection)
    x = float_array(x, "x", "(seq, d_model)", shape=(None, projection.d_model))
    with argument_errors("x"):  # e.g. scores that overflow for huge values
        before = softmax(relevance_scores(x, x))
        context_after, after = scaled_dot_product_attention(*projection(x))
    return AttentionComparison(before, after, context_vectors(before, x), context_after)
