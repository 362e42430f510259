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

Also the chapter's figures of the scores' spread, :func:`value_histograms` and
:func:`spread_vs_dimension`, and its explorer, :func:`sqrt_dk_scaling`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from transformer_tutorial import checks
from transformer_tutorial.attention import (
    context_vectors,
    relevance_scores,
    scaled_dot_product_attention,
    softmax,
)
from transformer_tutorial.checks import argument_errors, as_float_array, float_array, instance_of
from transformer_tutorial.embeddings import TOY_FEATURES
from transformer_tutorial.plots import new_axes, plain_text
from transformer_tutorial.projections import QKVProjection
from transformer_tutorial.widgets import Control, Explorer, frame, heatmap, histogram

__all__ = [
    "QUERY_FEATURES",
    "KEY_FEATURES",
    "hand_set_projection",
    "AttentionComparison",
    "compare_with_dot_product",
    "SCALING_TOKENS",
    "SCALING_D_KS",
    "SCALING_MODES",
    "SCALING_SCORE_RANGE",
    "SCALING_BINS",
    "sqrt_dk_scaling",
    "value_histograms",
    "spread_vs_dimension",
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


# -- The chapter's explorer ----------------------------------------------------------------

# Neutral labels: the queries and keys are random vectors, not the words of any sentence.
SCALING_TOKENS = tuple(f"t{i}" for i in range(1, 11))
SCALING_D_KS = tuple(2**i for i in range(11))  # 1 … 1024
SCALING_MODES = ("scaled", "unscaled")
SCALING_SCORE_RANGE = (-100.0, 100.0)  # one fixed histogram range, so spreads compare
SCALING_BINS = 40


def scaling_data(d_k: int, scaling: str) -> dict[str, Any]:
    """Weights (heatmap) and scores (histogram) of random unit-variance queries and keys of
    width ``d_k``, with scores :math:`QK^\\top/\\sqrt{d_k}` (``"scaled"``) or :math:`QK^\\top`
    (``"unscaled"``)."""
    from transformer_tutorial.scaling import random_attention

    if scaling not in SCALING_MODES:
        raise ValueError(f"scaling must be one of {SCALING_MODES}, got {scaling!r}")
    scores, weights = random_attention(
        len(SCALING_TOKENS), d_k, scale=scaling == "scaled", seed=0
    )
    largest = float(weights.max(axis=-1).mean())
    summary = (f"d_k = {d_k}, {scaling}: scores spread with standard deviation "
               f"{scores.std():.2f}; the largest weight of a row is {largest:.2f} on average")
    return frame(
        heatmap(weights, SCALING_TOKENS, SCALING_TOKENS, title="attention weights",
                annotate=False),
        histogram(scores, bins=SCALING_BINS, value_range=SCALING_SCORE_RANGE,
                  title="the scores before the softmax", x_title="score"),
        title=summary, description=summary + ".",
    )  # fmt: skip


def sqrt_dk_scaling() -> Explorer:
    """Chapter 3: why divide by :math:`\\sqrt{d_k}`. Slider: ``d_k``; dropdown: scaled or
    unscaled scores."""
    return Explorer(
        title="Scaled or unscaled dot products",
        controls=(
            Control("d_k", SCALING_D_KS, label="d_k", default=64),
            Control("scaling", SCALING_MODES, label="scaling"),
        ),
        frame=scaling_data,
        caption="Ten tokens t1 … t10, each with a random query and key of unit-variance "
        "entries (seed 0). Unscaled, the scores spread like √d_k and the softmax turns nearly "
        "one-hot; scaled, they keep a spread of about 1 whatever d_k is.",
    )


# -- Figures: the spread of the scores -----------------------------------------------------


def value_histograms(
    samples: Mapping[str, np.ndarray] | np.ndarray,
    ax: Axes | None = None,
    bins: int = 40,
    xlim: tuple[float, float] | None = None,
    xlabel: str = "value",
    title: str | None = None,
) -> Figure:
    """Histograms of one or several sets of numbers (any shapes; every entry counts once),
    overlaid, each labelled with its standard deviation.

    ``samples``: an array, or a mapping ``label -> array``. ``xlim``: a fixed ``(low, high)``
    range for the bins and the axis, so that figures with different spreads compare at a
    glance (default: the range of the data). The y axis is a density, so sets of different
    sizes compare too.
    """
    if not isinstance(samples, Mapping):
        samples = {"": samples}
    if not samples:
        raise ValueError("samples must hold at least one array")
    checks.positive_int(bins, "bins")
    arrays = {}
    for label, values in samples.items():
        values = as_float_array(values, f"samples[{label!r}]").ravel()
        if values.size == 0 or not np.isfinite(values).all():
            raise ValueError(f"samples[{label!r}] must be a non-empty array of finite numbers")
        arrays[str(label)] = values
    if xlim is None:
        low = min(v.min() for v in arrays.values())
        high = max(v.max() for v in arrays.values())
        xlim = (low, high) if high > low else (low - 1.0, high + 1.0)
    elif len(xlim) != 2 or not xlim[0] < xlim[1]:
        raise ValueError(f"xlim must be (low, high) with low < high, got {xlim!r}")
    edges = np.linspace(xlim[0], xlim[1], bins + 1)
    ax = new_axes(ax, figsize=(5.0, 3.2))
    for label, values in arrays.items():
        name = f"{label}: std {values.std():.3g}" if label else f"std {values.std():.3g}"
        ax.hist(np.clip(values, xlim[0], xlim[1]), bins=edges, density=True, alpha=0.6,
                label=plain_text(name, "samples"))
    ax.set_xlim(*xlim)
    ax.set_xlabel(plain_text(xlabel, "xlabel"))
    ax.set_ylabel("density")
    ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(plain_text(title, "title"))
    return ax.figure


def spread_vs_dimension(
    dims: Sequence[int],
    stds: Sequence[float],
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Measured standard deviations ``stds`` against the dimensions ``dims`` (log-log),
    with the curve :math:`\\sqrt{d}` for reference."""
    dims = as_float_array(dims, "dims")
    stds = as_float_array(stds, "stds")
    if dims.ndim != 1 or dims.shape != stds.shape or dims.size == 0:
        raise ValueError(
            f"dims and stds must have the same shape (n,), got {dims.shape} and {stds.shape}"
        )
    if (dims <= 0).any() or (stds <= 0).any():
        raise ValueError("dims and stds must be positive (they are drawn on log axes)")
    ax = new_axes(ax, figsize=(4.5, 3.5))
    curve = np.geomspace(dims.min(), dims.max(), 100)
    ax.plot(curve, np.sqrt(curve), color="0.5", linestyle="--", label=r"$\sqrt{d_k}$")
    ax.plot(dims, stds, "o", label="measured std")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("$d_k$")
    ax.set_ylabel(r"std of $q \cdot k$")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(plain_text(title, "title"))
    return ax.figure
