"""The book's generic figures: one helper per kind of picture, for any shape.

All attention maps use one colour-blind-safe colormap, :data:`ATTENTION_CMAP`; signed values
(embeddings, activations) use the diverging :data:`VALUE_CMAP`. Helpers draw on an existing
``ax`` when given one and otherwise make a standalone :class:`~matplotlib.figure.Figure`
(not a pyplot figure, so notebooks never show a picture twice); they return the figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from transformer_tutorial import checks
from transformer_tutorial.checks import as_float_array

__all__ = [
    "ATTENTION_CMAP",
    "VALUE_CMAP",
    "CATEGORY_COLORS",
    "ANNOTATE_MAX_CELLS",
    "plain_text",
    "new_axes",
    "attention_heatmap",
    "matrix_heatmap",
    "head_grid",
    "bar_chart",
]

ATTENTION_CMAP = "viridis"
VALUE_CMAP = "RdBu_r"
# One colour per category: the Okabe-Ito palette, colour-blind safe.
CATEGORY_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
ANNOTATE_MAX_CELLS = 12  # write the values into the cells when both sides are at most this
MAX_LABEL_CHARS = 16  # longer tick labels are shortened with an ellipsis

QUERY_AXIS_LABEL = "query: the token that attends"
KEY_AXIS_LABEL = "key: the token attended to"


def new_axes(ax: Axes | None = None, figsize: tuple[float, float] = (5.0, 4.0)) -> Axes:
    """``ax`` itself, or the axes of a new standalone figure of size ``figsize`` (inches)."""
    if ax is not None:
        return checks.instance_of(ax, "ax", Axes)
    if not (
        isinstance(figsize, tuple | list)
        and len(figsize) == 2
        and all(checks.positive_number(v, "figsize") < 1000 for v in figsize)
    ):
        raise ValueError(f"figsize must be (width, height) in inches, got {figsize!r}")
    fig = Figure(figsize=figsize, layout="constrained")
    return fig.add_subplot()


def plain_text(text: str, name: str = "text") -> str:
    """``text`` ready to be drawn as it is: every ``$`` escaped, so matplotlib never reads
    mathtext (a token ``$$`` or ``$x$`` is data, not markup). Every figure of the package
    passes the caller's text (tokens, titles, axis and legend labels) through here."""
    return checks.text(text, name, allow_empty=True).replace("$", "\\$")


def check_labels(labels: Sequence[str], size: int, name: str, axis: str) -> list[str]:
    """``labels`` as strings ready to draw (escaped, long ones shortened), one per ``axis``
    entry (``size`` of them); ``ValueError`` naming ``name`` otherwise."""
    if isinstance(labels, str | bytes) or not isinstance(labels, Sequence | np.ndarray):
        raise ValueError(f"{name} must be a sequence of labels, got {type(labels).__name__}")
    labels = [
        plain_text(label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…")
        for label in map(str, labels)
    ]
    if len(labels) != size:
        raise ValueError(f"{name} must have one label per {axis} ({size}), got {len(labels)}")
    return labels


def _annotate(ax: Axes, values: np.ndarray, image, fmt: str) -> None:
    """Write each value in its cell, dark text on light cells and light text on dark ones."""
    for (row, col), value in np.ndenumerate(values):
        r, g, b, _ = image.cmap(image.norm(value))
        light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5
        ax.text(col, row, format(value, fmt), ha="center", va="center", fontsize=8,
                color="black" if light else "white")


def _heatmap(
    values: np.ndarray,
    row_labels: list[str],
    col_labels: list[str],
    ax: Axes | None,
    cmap: str,
    norm: mcolors.Normalize,
    annotate: bool | None,
    fmt: str,
    title: str | None,
    colorbar_label: str,
) -> Axes:
    rows, cols = values.shape
    ax = new_axes(ax, figsize=(1.6 + 0.5 * cols, 1.2 + 0.42 * rows))
    image = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(range(cols), col_labels, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(rows), row_labels)
    if annotate is None:
        annotate = max(rows, cols) <= ANNOTATE_MAX_CELLS
    if annotate:
        _annotate(ax, values, image, fmt)
    if title:
        ax.set_title(plain_text(title, "title"))
    ax.figure.colorbar(image, ax=ax, label=plain_text(colorbar_label, "colorbar_label"), shrink=0.8)
    return ax


def attention_heatmap(
    weights: np.ndarray,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
    annotate: bool | None = None,
    log_scale: bool = False,
    vmax: float | None = None,
    mask: np.ndarray | None = None,
) -> Figure:
    """Draw attention weights ``(q_len, k_len)``: row *i* is how query token *i* spreads its
    attention over the key tokens (each row sums to 1).

    Values are written in the cells when both sides have at most :data:`ANNOTATE_MAX_CELLS`
    tokens (override with ``annotate``). ``log_scale=True`` shows small weights next to a
    token that soaks up most of the attention. The colour scale runs from 0 to ``vmax``
    (default: 1, or the largest weight if ``log_scale``). ``mask`` (boolean, broadcastable to
    the weights, ``True`` = may attend) hatches over the cells it hides.
    """
    weights = as_float_array(weights, "weights")
    if weights.ndim != 2:
        raise ValueError(f"weights must have shape (q_len, k_len), got {weights.shape}")
    if mask is not None:
        mask = _check_mask(mask, weights.shape)
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be finite and non-negative")
    rows = check_labels(query_tokens, weights.shape[0], "query_tokens", "row of weights")
    cols = check_labels(key_tokens, weights.shape[1], "key_tokens", "column of weights")
    if log_scale:
        floor = max(weights[weights > 0].min(initial=1.0), 1e-4)
        norm = mcolors.LogNorm(vmin=floor, vmax=vmax or max(weights.max(), floor * 10))
        weights = np.maximum(weights, floor)
    else:
        norm = mcolors.Normalize(vmin=0.0, vmax=1.0 if vmax is None else vmax)
    ax = _heatmap(weights, rows, cols, ax, ATTENTION_CMAP, norm, annotate, ".2f", title,
                  "attention weight" + (" (log scale)" if log_scale else ""))
    ax.set_xlabel(KEY_AXIS_LABEL)
    ax.set_ylabel(QUERY_AXIS_LABEL)
    if mask is not None:
        for row, col in zip(*np.nonzero(~mask), strict=True):
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, hatch="///",
                                   edgecolor="0.75", linewidth=0))
    return ax.figure


def _check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` as a boolean array of ``shape`` (``True`` = may attend), or ``ValueError``."""
    try:
        mask = np.asarray(mask)
    except (TypeError, ValueError) as err:
        raise ValueError(f"mask must be a boolean array (True = may attend): {err}") from None
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be boolean (True = may attend), got dtype {mask.dtype}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(
            f"mask of shape {mask.shape} does not broadcast to the weights' shape "
            f"(q_len, k_len) = {shape}"
        ) from None


def matrix_heatmap(
    values: np.ndarray,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    annotate: bool | None = None,
    xlabel: str = "",
    ylabel: str = "",
    colorbar_label: str = "value",
) -> Figure:
    """Draw a signed matrix ``(rows, cols)`` (embeddings, scores, activations) with a diverging
    colormap centred on 0, so that sign and size read at a glance.

    With ``row_labels`` and ``col_labels``, one label per row and column (values written in the
    cells as in :func:`attention_heatmap`). Without them, for a matrix too large for one label
    per cell (a positional table, all dot products between positions): integer ticks chosen by
    matplotlib, no values written."""
    values = as_float_array(values, "values")
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(f"values must have shape (rows, cols), got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite")
    if (row_labels is None) != (col_labels is None):
        raise ValueError("row_labels and col_labels go together: give both or neither")
    bound = float(np.abs(values).max()) or 1.0
    norm = mcolors.Normalize(vmin=-bound, vmax=bound)
    if row_labels is None:
        ax = new_axes(ax, figsize=(6.5, 4.0))
        image = ax.imshow(values, cmap=VALUE_CMAP, norm=norm, aspect="auto",
                          interpolation="nearest")
        if title:
            ax.set_title(plain_text(title, "title"))
        ax.figure.colorbar(image, ax=ax, label=plain_text(colorbar_label, "colorbar_label"),
                           shrink=0.8)
    else:
        rows = check_labels(row_labels, values.shape[0], "row_labels", "row of values")
        cols = check_labels(col_labels, values.shape[1], "col_labels", "column of values")
        ax = _heatmap(values, rows, cols, ax, VALUE_CMAP, norm, annotate, ".2f", title,
                      colorbar_label)
    ax.set_xlabel(plain_text(xlabel, "xlabel"))
    ax.set_ylabel(plain_text(ylabel, "ylabel"))
    return ax.figure


def head_grid(
    weights: object,
    query_tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    *,
    layer: int = 0,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    figure: Figure | None = None,
    annotate: bool | None = False,
    log_scale: bool = False,
) -> Figure:
    """One :func:`attention_heatmap` per head, in a grid, for any number of heads.

    ``weights``: an array ``(heads, q_len, k_len)`` with ``query_tokens`` (and ``key_tokens``,
    default the same), or an :class:`~transformer_tutorial.record.AttentionRecord`, whose
    ``layer`` is drawn with its own tokens. ``titles``: one per head (default "head 0",
    "head 1", ...). ``ncols``: panels per row (default up to 4). Draws into ``figure`` when
    given (it must be empty), otherwise makes a standalone figure; returns the figure.
    """
    if hasattr(weights, "query_tokens") and hasattr(weights, "layer"):  # an AttentionRecord
        record = weights
        weights = record.layer(layer)
        query_tokens = record.query_tokens if query_tokens is None else query_tokens
        key_tokens = record.key_tokens if key_tokens is None else key_tokens
    weights = as_float_array(weights, "weights")
    if weights.ndim != 3 or 0 in weights.shape:
        raise ValueError(f"weights must have shape (heads, q_len, k_len), got {weights.shape}")
    if query_tokens is None:
        raise ValueError("query_tokens is required when weights is an array (heads, q_len, k_len)")
    key_tokens = query_tokens if key_tokens is None else key_tokens
    heads, q_len, k_len = weights.shape
    titles = [f"head {h}" for h in range(heads)] if titles is None else list(titles)
    if len(titles) != heads:
        raise ValueError(f"titles must have one entry per head ({heads}), got {len(titles)}")
    if ncols is None:
        ncols = min(heads, 4)
    ncols = checks.positive_int(ncols, "ncols")
    ncols = min(ncols, heads)
    nrows = -(-heads // ncols)
    if figure is None:
        panel = (1.6 + 0.5 * k_len, 1.2 + 0.42 * q_len)
        figure = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    elif figure.axes:
        raise ValueError("figure must be empty: head_grid adds one panel per head")
    axes = figure.subplots(nrows, ncols, squeeze=False)
    for h, ax in enumerate(axes.flat):
        if h >= heads:
            ax.remove()
            continue
        attention_heatmap(
            weights[h], query_tokens, key_tokens, ax=ax, title=titles[h],
            annotate=annotate, log_scale=log_scale,
        )  # fmt: skip
        row, col = divmod(h, ncols)
        if col:  # axis names once per row and column of panels
            ax.set_ylabel("")
        if row < nrows - 1 and h + ncols < heads:
            ax.set_xlabel("")
    return figure


def bar_chart(
    values: np.ndarray,
    labels: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "value",
    value_range: tuple[float, float] | None = None,
    fmt: str = ".2f",
) -> Figure:
    """Draw one horizontal bar per value ``(n,)``, labelled top to bottom in the given order,
    with the value written next to each bar. Positive bars take the warm end of
    :data:`VALUE_CMAP`, negative ones the cool end. ``value_range=(low, high)`` fixes the value
    axis (so that figures of the same quantity compare); by default it fits the values and 0."""
    values = as_float_array(values, "values")
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must have shape (n,) with n >= 1, got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite")
    names = check_labels(labels, values.size, "labels", "value")
    if value_range is None:
        low, high = min(values.min(), 0.0), max(values.max(), 0.0)
        pad = 0.15 * ((high - low) or 1.0)
        value_range = (low - pad if low < 0 else 0.0, high + pad)
    low, high = value_range
    if not low < high:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range}")
    ax = new_axes(ax, figsize=(5.5, 0.9 + 0.3 * values.size))
    cmap = matplotlib.colormaps[VALUE_CMAP]
    colors = [cmap(0.85) if v >= 0 else cmap(0.15) for v in values]
    bars = ax.barh(range(values.size), values, color=colors)
    ax.bar_label(bars, labels=[format(v, fmt) for v in values], padding=3, fontsize=8)
    ax.set_yticks(range(values.size), names)
    ax.invert_yaxis()
    ax.set_xlim(low, high)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(plain_text(xlabel, "xlabel"))
    if title:
        ax.set_title(plain_text(title, "title"))
    return ax.figure
