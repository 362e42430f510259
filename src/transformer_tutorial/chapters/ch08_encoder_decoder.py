"""Chapter 8: what removing the causal mask does to training, measured.

- :func:`tail_loss`: the mean training loss of the last steps of a run (one step's loss is
  one batch's and wobbles).
- :func:`attention_to_next_token`: how much the decoder's self-attention at position
  :math:`t` looks at position :math:`t + 1` of its input — the very token it is asked to
  predict, which only a decoder without the causal mask can see.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from transformer_tutorial.checks import argument_errors, float_array, instance_of, int_in_range
from transformer_tutorial.models import PAD_ID, EncoderDecoder
from transformer_tutorial.training import TaskBatch

__all__ = ["tail_loss", "attention_to_next_token"]


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
