"""Chapter 8: what removing the causal mask does to training, measured.

- :func:`tail_loss`: the mean training loss of the last steps of a run (one step's loss is
  one batch's and wobbles).
- :func:`attention_to_next_token`: how much the decoder's self-attention at position
  :math:`t` looks at position :math:`t + 1` of its input — the very token it is asked to
  predict, which only a decoder without the causal mask can see.
- :func:`three_masks` and :func:`loss_curves`: the encoder's, decoder's and cross-attention
  with their masks hatched; training losses against the step.
- :func:`cross_attention_training`: the explorer of the cross-attention while the model learns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from transformer_tutorial import checks
from transformer_tutorial.checks import (
    argument_errors,
    as_float_array,
    float_array,
    instance_of,
    int_in_range,
)
from transformer_tutorial.models import PAD_ID, EncoderDecoder
from transformer_tutorial.plots import CATEGORY_COLORS, attention_heatmap, new_axes, plain_text
from transformer_tutorial.record import AttentionRecord
from transformer_tutorial.training import TaskBatch, TrainingRun
from transformer_tutorial.widgets import Control, Explorer, frame, head_grid

__all__ = [
    "tail_loss",
    "attention_to_next_token",
    "cross_attention_training",
    "three_masks",
    "loss_curves",
]


def tail_loss(losses: Sequence[float], last: int = 20) -> float:
    """The mean of the ``last`` losses of a run."""
    values = np.asarray(float_array(losses, "losses", "(steps,)", ndim=1), dtype=float)
    last = int_in_range(last, "last", 1, values.size)
    return float(values[-last:].mean())


@torch.no_grad()
def attention_to_next_token(model: EncoderDecoder, batch: TaskBatch) -> np.ndarray:
    """``(layers, heads)``: the mean weight that decoder self-attention at position :math:`t`
    gives position :math:`t + 1` of the teacher-forced input ``batch.tgt[:, :-1]`` (the token
    it must predict), over every pair of non-padding positions. Exactly 0 with the causal
    mask."""
    model = instance_of(model, "model", EncoderDecoder)
    batch = instance_of(batch, "batch", TaskBatch)
    with argument_errors("batch", (ValueError, TypeError, IndexError)):
        inputs = batch.tgt[:, :-1]
        out = model(batch.src, inputs)
    real = (inputs[:, :-1] != PAD_ID) & (inputs[:, 1:] != PAD_ID)  # (batch, t - 1)
    if not real.any():
        raise ValueError("batch.tgt has no two consecutive non-padding input positions")
    layers = []
    for weights in out.decoder_attention:  # (batch, heads, t, t)
        ahead = torch.diagonal(weights, offset=1, dim1=-2, dim2=-1)  # (batch, heads, t - 1)
        layers.append((ahead * real[:, None]).sum(dim=(0, 2)) / real.sum())
    return torch.stack(layers).numpy()


# -- Figures: the three masks, the loss ----------------------------------------------------


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
        attention_heatmap(
            record.head(layer, head), record.query_tokens, record.key_tokens,
            ax=ax, title=title, mask=masks[key],
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


# -- The chapter's explorer ----------------------------------------------------------------


def cross_attention_training(run: TrainingRun) -> Explorer:
    """Chapter 8: the reversal model's cross-attention on one fixed example, at each snapshot
    step of ``run`` (a :class:`~transformer_tutorial.training.TrainingRun`). Slider: training
    step; dropdown: decoder layer. One panel per head."""
    snapshots = instance_of(run, "run", TrainingRun).snapshots
    if not snapshots:
        raise ValueError("run has no snapshots: train with snapshot_steps, e.g. (0, 100, 300)")
    steps = tuple(sorted(snapshots))
    layers = tuple(range(snapshots[steps[0]].num_layers))

    def data(step: int, layer: int) -> dict[str, Any]:
        record = snapshots[step]
        weights = record.layer(layer)
        n = min(weights.shape[1:])
        anti = weights[:, np.arange(n), n - 1 - np.arange(n)].mean()
        return frame(
            head_grid(weights, record.query_tokens, record.key_tokens, per_page=None,
                      columns=record.num_heads),
            title=f"decoder layer {layer}, after {step} training steps",
            description=f"After {step} steps, decoder layer {layer} puts {anti:.0%} of its "
            "attention on the anti-diagonal (the source letter it must copy next).",
        )  # fmt: skip

    return Explorer(
        "Cross-attention while the model learns to reverse",
        (
            Control("step", steps, label="training step"),
            Control("layer", layers, label="decoder layer", default=layers[-1]),
        ),
        data,
        caption="Rows: the decoder's position (it has read <bos> and the letters written so "
        "far); columns: the source letters. Reversing a..h, the decoder must look at h first, "
        "then g, ...: a trained model's attention runs along the anti-diagonal.",
    )
