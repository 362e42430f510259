"""Chapter 2: the relevance example of the book's brief, scored, then softmaxed.

"match" scores 12.1 against "the" and 89.3 against "burn". A softmax of two scores 77.2 apart
gives the smaller one the weight :math:`e^{-77.2} / (1 + e^{-77.2}) \\approx e^{-77.2}`: the
larger wins outright. Scores that far apart are what long vectors produce (a dot product of
:math:`d_k` numbers grows with :math:`d_k`), which is why chapter 3 divides by
:math:`\\sqrt{d_k}`.

Also the chapter's figures, :func:`scores_vs_weights` (one query's row before and after the
softmax) and :func:`contribution_bars` (a context vector taken apart into its terms), and its
explorer, :func:`softmax_temperature`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from transformer_tutorial import checks
from transformer_tutorial.attention import softmax
from transformer_tutorial.checks import as_float_array
from transformer_tutorial.embeddings import TOY_SENTENCE
from transformer_tutorial.plots import (
    CATEGORY_COLORS,
    bar_chart,
    check_labels,
    new_axes,
    plain_text,
)
from transformer_tutorial.widgets import Control, Explorer, bars, frame, heatmap

__all__ = [
    "BRIEF_QUERY",
    "BRIEF_SCORES",
    "RelevanceExample",
    "relevance_example",
    "WEIGHTED_AVERAGE_SENTENCE",
    "TEMPERATURES",
    "softmax_temperature",
    "scores_vs_weights",
    "contribution_bars",
]

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


# -- The chapter's explorer ----------------------------------------------------------------

WEIGHTED_AVERAGE_SENTENCE = TOY_SENTENCE
# 25 temperatures from very sharp to very flat, denser around T = 1.
TEMPERATURES = (0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4,
                1.6, 1.8, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 7.0, 10.0)  # fmt: skip


def softmax_temperature_data(
    temperature: float, sentence: str = WEIGHTED_AVERAGE_SENTENCE, query: str = "it"
) -> dict[str, Any]:
    """Toy-embedding attention weights :math:`\\mathrm{softmax}(XX^\\top / T)` of ``sentence``
    at ``temperature`` ``T``: every word's weights (heatmap) and the row of ``query`` (bars),
    with that row's largest weight and entropy."""
    from transformer_tutorial.attention import entropy, relevance_scores, softmax
    from transformer_tutorial.embeddings import toy_embeddings
    from transformer_tutorial.tokens import tokenize

    tokens = tokenize(sentence)
    if query not in tokens:
        raise ValueError(f"query must be a token of the sentence {tokens}, got {query!r}")
    x = toy_embeddings().lookup(tokens)
    weights = softmax(relevance_scores(x, x), temperature)
    row = weights[tokens.index(query)]
    top = tokens[int(row.argmax())]
    summary = (f"T = {temperature:g}: the largest weight of '{query}' is {row.max():.2f} (on "
               f"'{top}'); entropy {entropy(row):.2f} nats (uniform: {np.log(len(tokens)):.2f})")
    return frame(
        heatmap(weights, tokens, tokens, title="every word's weights", annotate=False),
        bars(row, tokens, title=f"the row of '{query}'", vmin=0.0, vmax=1.0,
             value_title="attention weight", highlight=[int(row.argmax())],
             hover=f"'{query}' → '{{label}}': {{value}}"),
        title=summary, description=summary + ".", widths=(1.35, 1.0),
    )  # fmt: skip


def softmax_temperature(
    sentence: str = WEIGHTED_AVERAGE_SENTENCE, query: str = "it"
) -> Explorer:
    """Chapter 2: the softmax temperature :math:`T` sharpens (:math:`T<1`) or flattens
    (:math:`T>1`) the attention weights of ``sentence``. Slider: ``temperature``."""

    def data(temperature: float) -> dict[str, Any]:
        return softmax_temperature_data(temperature, sentence, query)

    return Explorer(
        title="Softmax temperature: sharper or flatter weights",
        controls=(Control("temperature", TEMPERATURES, label="temperature T", default=1.0),),
        frame=data,
        caption="Weights softmax(s / T) of the hand-made toy vectors. Small T puts almost all "
        "of a row's weight on its highest score (entropy near 0); large T spreads it evenly "
        "(entropy near ln n, the uniform row). Every row still sums to 1.",
    )


# -- Figures: one query's row, before and after the softmax, and its context vector --------

OTHERS_COLOR = "#BBBBBB"  # beside CATEGORY_COLORS, the Okabe-Ito palette: colour-blind safe
REFERENCE_MARKERS = ("o", "D", "s", "^", "v")


def scores_vs_weights(
    scores: np.ndarray,
    weights: np.ndarray,
    tokens: Sequence[str],
    title: str | None = None,
) -> Figure:
    """One query's row before and after the softmax, side by side (two :func:`bar_chart`s):
    relevance scores ``(k_len,)`` on the left, attention weights ``(k_len,)`` on the right on a
    fixed 0 to 1 scale, with their sum in the panel title."""
    scores = as_float_array(scores, "scores")
    weights = as_float_array(weights, "weights")
    if scores.ndim != 1 or weights.shape != scores.shape:
        raise ValueError(
            "scores and weights must have the same shape (k_len,), "
            f"got {scores.shape} and {weights.shape}"
        )
    if not np.isfinite(weights).all() or (weights < 0).any() or (weights > 1).any():
        raise ValueError("weights must lie between 0 and 1")
    figure = Figure(figsize=(9.0, 1.3 + 0.3 * scores.size), layout="constrained")
    left, right = figure.subplots(1, 2)
    bar_chart(scores, tokens, ax=left, xlabel="relevance score", title="scores: any real numbers")
    bar_chart(weights, tokens, ax=right, xlabel="attention weight", value_range=(0.0, 1.0),
              title=f"softmax weights: 0 to 1, sum = {weights.sum():.4f}")
    if title:
        figure.suptitle(plain_text(title, "title"))
    return figure


def contribution_bars(
    contributions: np.ndarray,
    key_tokens: Sequence[str],
    feature_labels: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
    top: int = 5,
    references: Mapping[str, np.ndarray] | None = None,
    weights: np.ndarray | None = None,
) -> Figure:
    """A context vector taken apart: one stacked bar per feature, one segment per key token.

    ``contributions``: ``(k_len, d)``, row *j* the term :math:`a_{ij} v_j` of
    :math:`c_i = \\sum_j a_{ij} v_j` (``attention.context_contributions``). The ``top`` tokens
    with the largest contributions (summed absolute values) get their own colour, the rest are
    merged into one grey segment; positive parts stack up and negative parts down from 0. A
    black bar marks each feature's sum, the context vector. ``references``: ``label -> (d,)``
    vectors to compare with, drawn as hollow markers beside the bars. ``weights``: the row
    :math:`a_{i\\cdot}` ``(k_len,)``, written into the legend next to each token.
    """
    contributions = as_float_array(contributions, "contributions")
    if contributions.ndim != 2 or 0 in contributions.shape:
        raise ValueError(f"contributions must have shape (k_len, d), got {contributions.shape}")
    if not np.isfinite(contributions).all():
        raise ValueError("contributions must be finite")
    k_len, d = contributions.shape
    tokens = [str(t) for t in checks.strings(key_tokens, "key_tokens")]
    if len(tokens) != k_len:
        raise ValueError(
            f"key_tokens must have one label per row of contributions ({k_len}), got {len(tokens)}"
        )
    features = check_labels(feature_labels, d, "feature_labels", "column of contributions")
    top = checks.int_in_range(top, "top", 1, len(CATEGORY_COLORS))
    references = dict(references or {})
    if len(references) > len(REFERENCE_MARKERS):
        raise ValueError(f"at most {len(REFERENCE_MARKERS)} references, got {len(references)}")
    for name, vector in references.items():
        references[name] = checks.float_array(vector, f"references[{name!r}]", f"(d,) = ({d},)")
        if references[name].shape != (d,):
            raise ValueError(
                f"references[{name!r}] must have shape (d,) = ({d},), got {references[name].shape}"
            )

    if weights is not None:
        weights = checks.float_array(weights, "weights", f"(k_len,) = ({k_len},)")
        if weights.shape != (k_len,):
            raise ValueError(f"weights must have shape (k_len,) = ({k_len},), got {weights.shape}")
    order = np.argsort(-np.abs(contributions).sum(axis=1), kind="stable")
    segments = [
        (contributions[j], _token_at(tokens, j, weights), CATEGORY_COLORS[n])
        for n, j in enumerate(order[:top])
    ]
    rest = order[top:]
    if rest.size:
        label = f"{rest.size} other token" + ("s" if rest.size > 1 else "")
        segments.append((contributions[rest].sum(axis=0), label, OTHERS_COLOR))

    ax = new_axes(ax, figsize=(2.8 + 1.1 * d, 3.8))
    x = np.arange(d)
    up, down = np.zeros(d), np.zeros(d)
    for values, label, color in segments:
        positive, negative = np.maximum(values, 0.0), np.minimum(values, 0.0)
        ax.bar(x, positive, bottom=up, width=0.55, color=color, label=plain_text(label),
               edgecolor="white", linewidth=0.5)
        ax.bar(x, negative, bottom=down, width=0.55, color=color, edgecolor="white",
               linewidth=0.5)
        up, down = up + positive, down + negative
    total = contributions.sum(axis=0)
    ax.hlines(total, x - 0.34, x + 0.34, colors="black", linewidth=2.5, zorder=3,
              label="sum: the context vector")
    for (name, vector), marker in zip(references.items(), REFERENCE_MARKERS, strict=False):
        ax.scatter(x + 0.38, vector, marker=marker, s=40, facecolors="none",
                   edgecolors="black", zorder=3, label=plain_text(str(name), "references"))
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x, features)
    ax.set_xlim(-0.6, d - 0.3)
    low = min(down.min(), total.min(), *(v.min() for v in references.values()), 0.0)
    high = max(up.max(), total.max(), *(v.max() for v in references.values()), 0.0)
    pad = 0.06 * ((high - low) or 1.0)
    ax.set_ylim(low - pad if low < 0 else -pad / 2, high + pad)
    ax.set_ylabel("value")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if title:
        ax.set_title(plain_text(title, "title"))
    return ax.figure


def _token_at(tokens: list[str], j: int, weights: np.ndarray | None = None) -> str:
    """A token's name, with its position when it occurs more than once, and its weight."""
    name = tokens[j] if tokens.count(tokens[j]) == 1 else f"{tokens[j]} (position {j})"
    return name if weights is None else f"{weights[j]:.2f} × {name}"
