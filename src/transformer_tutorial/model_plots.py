"""Figures of whole models and their cost (chapters 8 and 10), built on :mod:`plots`.

Like every helper of :mod:`transformer_tutorial.plots`, each returns a standalone
:class:`~matplotlib.figure.Figure` (never pyplot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from transformer_tutorial import checks
from transformer_tutorial.checks import as_float_array
from transformer_tutorial.plots import (
    CATEGORY_COLORS,
    masked_attention_heatmap,
    new_axes,
    plain_text,
)
from transformer_tutorial.record import AttentionRecord

__all__ = ["three_masks", "loss_curves", "cost_curves"]


def three_masks(
    records: Mapping[str, AttentionRecord],
    masks: Mapping[str, np.ndarray],
    layer: int = 0,
    head: int = 0,
) -> Figure:
    """The encoder's self-attention, the decoder's self-attention and the cross-attention of
    one sentence, one under the other, each with the cells its mask hides hatched.

    ``records``: ``{"encoder", "decoder", "cross"}`` -> :class:`AttentionRecord` (what
    :meth:`~transformer_tutorial.models.Seq2SeqOutput.records` returns); ``masks``: the same
    keys -> boolean ``(q_len, k_len)``, ``True`` = may attend.
    """
    checks.instance_of(records, "records", Mapping)
    checks.instance_of(masks, "masks", Mapping)
    titles = {
        "encoder": "encoder self-attention (no mask)",
        "decoder": "decoder self-attention (causal mask)",
        "cross": "cross-attention (decoder queries, encoder keys)",
    }
    missing = set(titles) - set(records) | set(titles) - set(masks)
    if missing:
        raise ValueError(f"records and masks need the keys {sorted(titles)}; missing {missing}")
    # One panel under the other, each as wide as the book's column (about 7 inches at the
    # page's 100 dpi), so the tokens and the values in the cells stay readable there.
    heights = [records[k].q_len + 3 for k in titles]
    figure = Figure(figsize=(6.4, 0.42 * sum(heights) + 0.8), layout="constrained")
    axes = figure.subplots(3, 1, height_ratios=heights)
    for ax, (key, title) in zip(axes, titles.items(), strict=True):
        record = records[key]
        masked_attention_heatmap(
            record.head(layer, head), masks[key], record.query_tokens, record.key_tokens,
            ax=ax, title=title,
        )  # fmt: skip
    figure.suptitle(f"layer {layer}, head {head}; hatched = masked (weight 0)")
    return figure


def loss_curves(
    curves: Mapping[str, Sequence[float]],
    title: str | None = None,
    ylabel: str = "training loss (cross-entropy)",
    log_scale: bool = True,
) -> Figure:
    """One line per named curve, value against training step (from 1)."""
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must hold at least one named sequence of losses")
    ax = new_axes(None, figsize=(6.5, 3.6))
    for (name, values), color in zip(curves.items(), CATEGORY_COLORS, strict=False):
        values = as_float_array(values, name)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"curve {name!r} must have shape (steps,), got {values.shape}")
        ax.plot(np.arange(1, values.size + 1), values, label=plain_text(str(name), "curves"),
                color=color, linewidth=1.4)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(plain_text(ylabel, "ylabel"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(plain_text(title, "title"))
    return ax.figure


def cost_curves(
    lengths: Sequence[int],
    series: Mapping[str, Sequence[float]],
    fits: Mapping[str, Sequence[float]] | None = None,
    ylabel: str = "time per call (ms)",
    title: str | None = None,
) -> Figure:
    """Measured ``series`` (markers) against sequence length on log–log axes, with optional
    fitted ``fits`` (dashed lines) of the same names; a slope of 2 means quadratic growth."""
    lengths = as_float_array(lengths, "lengths")
    if lengths.ndim != 1 or lengths.size == 0:
        raise ValueError(f"lengths must have shape (n,), got {lengths.shape}")
    ax = new_axes(None, figsize=(6.5, 4.0))
    for (name, values), color in zip(series.items(), CATEGORY_COLORS, strict=False):
        values = as_float_array(values, name)
        if values.shape != lengths.shape:
            raise ValueError(
                f"series {name!r} must have one value per length, shape {lengths.shape}, "
                f"got {values.shape}"
            )
        ax.plot(lengths, values, "o", color=color, label=plain_text(str(name), "name"))
        if fits and name in fits:
            ax.plot(lengths, as_float_array(fits[name], name), "--", color=color, linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length n")
    ax.set_ylabel(plain_text(ylabel, "ylabel"))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(plain_text(title, "title"))
    return ax.figure
