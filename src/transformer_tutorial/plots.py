"""Every figure of the book: one helper per kind of picture, for any shape.

All attention maps use one colour-blind-safe colormap, :data:`ATTENTION_CMAP`; signed values
(embeddings, activations) use the diverging :data:`VALUE_CMAP`. Helpers draw on an existing
``ax`` when given one and otherwise make a standalone :class:`~matplotlib.figure.Figure`
(not a pyplot figure, so notebooks never show a picture twice); they return the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def _check_labels(labels: Sequence[str], size: int, name: str, axis: str) -> list[str]:
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
) -> Figure:
    """Draw attention weights ``(q_len, k_len)``: row *i* is how query token *i* spreads its
    attention over the key tokens (each row sums to 1).

    Values are written in the cells when both sides have at most :data:`ANNOTATE_MAX_CELLS`
    tokens (override with ``annotate``). ``log_scale=True`` shows small weights next to a
    token that soaks up most of the attention. The colour scale runs from 0 to ``vmax``
    (default: 1, or the largest weight if ``log_scale``).
    """
    weights = as_float_array(weights, "weights")
    if weights.ndim != 2:
        raise ValueError(f"weights must have shape (q_len, k_len), got {weights.shape}")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be finite and non-negative")
    rows = _check_labels(query_tokens, weights.shape[0], "query_tokens", "row of weights")
    cols = _check_labels(key_tokens, weights.shape[1], "key_tokens", "column of weights")
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
    return ax.figure


def matrix_heatmap(
    values: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
    annotate: bool | None = None,
    xlabel: str = "",
    ylabel: str = "",
    colorbar_label: str = "value",
) -> Figure:
    """Draw a signed matrix ``(rows, cols)`` (embeddings, scores, activations) with a diverging
    colormap centred on 0, so that sign and size read at a glance."""
    values = as_float_array(values, "values")
    if values.ndim != 2:
        raise ValueError(f"values must have shape (rows, cols), got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite")
    rows = _check_labels(row_labels, values.shape[0], "row_labels", "row of values")
    cols = _check_labels(col_labels, values.shape[1], "col_labels", "column of values")
    bound = float(np.abs(values).max()) or 1.0
    norm = mcolors.Normalize(vmin=-bound, vmax=bound)
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
    names = _check_labels(labels, values.size, "labels", "value")
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


# -- Chapter 3: scaling and masking ------------------------------------------------------


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


def masked_attention_heatmap(
    weights: np.ndarray,
    mask: np.ndarray,
    query_tokens: Sequence[str],
    key_tokens: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """:func:`attention_heatmap` of ``weights`` ``(q_len, k_len)`` with the cells that ``mask``
    (boolean, broadcastable to the weights, ``True`` = may attend) hides hatched over."""
    weights = as_float_array(weights, "weights")
    try:
        mask = np.asarray(mask)
    except (TypeError, ValueError) as err:
        raise ValueError(f"mask must be a boolean array (True = may attend): {err}") from None
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be boolean (True = may attend), got dtype {mask.dtype}")
    try:
        mask = np.broadcast_to(mask, weights.shape)
    except ValueError:
        raise ValueError(
            f"mask of shape {mask.shape} does not broadcast to the weights' shape "
            f"(q_len, k_len) = {weights.shape}"
        ) from None
    figure = attention_heatmap(weights, query_tokens, key_tokens, ax=ax, title=title)
    ax = ax if ax is not None else figure.axes[0]
    for row, col in zip(*np.nonzero(~mask), strict=True):
        ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, hatch="///",
                               edgecolor="0.75", linewidth=0))
    return figure


__all__ += [
    "value_histograms",
    "spread_vs_dimension",
    "masked_attention_heatmap",
]


# -- Chapter 2: one query's row, before and after the softmax, and its context vector -----

CATEGORY_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
OTHERS_COLOR = "#BBBBBB"  # CATEGORY_COLORS: the Okabe-Ito palette, colour-blind safe
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
    features = _check_labels(feature_labels, d, "feature_labels", "column of contributions")
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


__all__ += ["scores_vs_weights", "contribution_bars"]


# -- Chapter 5: large matrices ------------------------------------------------------------


def dense_heatmap(
    values: np.ndarray,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "",
    ylabel: str = "",
    colorbar_label: str = "value",
    figsize: tuple[float, float] = (6.5, 4.0),
) -> Figure:
    """Draw a signed matrix ``(rows, cols)`` too large for one label per cell (a positional
    table, all dot products between positions): integer ticks chosen by matplotlib, the
    diverging :data:`VALUE_CMAP` centred on 0, no values written."""
    values = as_float_array(values, "values")
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(f"values must have shape (rows, cols), got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite")
    bound = float(np.abs(values).max()) or 1.0
    ax = new_axes(ax, figsize=figsize)
    image = ax.imshow(values, cmap=VALUE_CMAP, vmin=-bound, vmax=bound, aspect="auto",
                      interpolation="nearest")
    ax.set_xlabel(plain_text(xlabel, "xlabel"))
    ax.set_ylabel(plain_text(ylabel, "ylabel"))
    if title:
        ax.set_title(plain_text(title, "title"))
    ax.figure.colorbar(image, ax=ax, label=plain_text(colorbar_label, "colorbar_label"), shrink=0.8)
    return ax.figure


__all__ += ["dense_heatmap"]
