"""Chapter 5: what a causal mask does to equivariance, why sinusoids, and a head that uses them.

- :func:`equivariance_gaps`: the same attention with and without a causal mask, shuffled.
  Without the mask (an encoder) the gap is float rounding; the mask ties query :math:`i` to
  keys :math:`j \\le i`, so it depends on the order and the gap is large.
- :func:`naive_position_codes` and :func:`neighbour_steps`: the codes :math:`p` and :math:`p/N`
  that one might try first, and how far apart two neighbouring positions are under each.
- :func:`previous_token_head`: one attention head whose query of position :math:`p` is
  :math:`PE_p M_{-1} = PE_{p-1}` (the shift property, :func:`sinusoidal_shift_matrix`) and
  whose key of position :math:`j` is :math:`PE_j`; the score peaks at :math:`j = p - 1`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from transformer_tutorial.multihead import MultiHeadAttention
from transformer_tutorial.positional import (
    permutation_gap,
    sinusoidal_encoding,
    sinusoidal_shift_matrix,
)

__all__ = [
    "EquivarianceGaps",
    "equivariance_gaps",
    "naive_position_codes",
    "neighbour_steps",
    "words_with_positions",
    "previous_token_head",
]


@dataclass(frozen=True)
class EquivarianceGaps:
    """:func:`~transformer_tutorial.positional.permutation_gap` of one attention without a mask
    (``encoder``) and with the causal mask (``causal``)."""

    encoder: float
    causal: float


def equivariance_gaps(
    attention: MultiHeadAttention, x: torch.Tensor, permutation: object
) -> EquivarianceGaps:
    """Shuffle ``x`` ``(batch, seq, d_model)`` by ``permutation`` before and after
    ``attention``, once as in an encoder and once with ``causal=True`` as in a decoder."""
    if not isinstance(attention, MultiHeadAttention):
        raise TypeError(f"attention must be a MultiHeadAttention, got {type(attention).__name__}")
    return EquivarianceGaps(
        encoder=permutation_gap(lambda t: attention(t)[0], x, permutation),
        causal=permutation_gap(lambda t: attention(t, causal=True)[0], x, permutation),
    )


def naive_position_codes(length: int) -> torch.Tensor:
    """Two one-number codes for the positions of a text of ``length`` tokens, ``(length, 2)``:
    column 0 is :math:`p`, column 1 is :math:`p / N` with :math:`N` = ``length``."""
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        raise ValueError(f"length must be an integer >= 2, got {length!r}")
    p = torch.arange(length, dtype=torch.float64)
    return torch.stack((p, p / length), dim=-1)


def neighbour_steps(codes: torch.Tensor) -> torch.Tensor:
    """:math:`\\lVert c_{p+1} - c_p \\rVert` for every position, ``(positions - 1,)``.

    ``codes``: ``(positions, d)``, one code per position (a column of
    :func:`naive_position_codes` as ``(positions, 1)``, or a sinusoidal table).
    """
    if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or codes.shape[0] < 2:
        shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"codes must be a tensor of shape (positions >= 2, d), got {shape}")
    return (codes[1:] - codes[:-1]).norm(dim=-1)


def words_with_positions(words: torch.Tensor, d_pos: int) -> torch.Tensor:
    """``[x_p ; PE_p]``: the word vectors ``(batch, seq, d_word)`` with the sinusoidal encoding
    of width ``d_pos`` in features of their own, ``(batch, seq, d_word + d_pos)``."""
    if not isinstance(words, torch.Tensor) or words.ndim != 3:
        shape = tuple(words.shape) if isinstance(words, torch.Tensor) else type(words).__name__
        raise ValueError(f"words must be a tensor of shape (batch, seq, d_word), got {shape}")
    batch, seq, _ = words.shape
    pe = sinusoidal_encoding(seq, d_pos, dtype=words.dtype)
    return torch.cat((words, pe.expand(batch, seq, d_pos)), dim=-1)


@torch.no_grad()
def previous_token_head(d_word: int, d_pos: int, sharpness: float = 60.0) -> MultiHeadAttention:
    """One head (no biases) for inputs :func:`words_with_positions` ``(batch, seq, d_word +
    d_pos)`` that attends from each position :math:`p` to :math:`p - 1` and copies that word.

    :math:`q_p = \\beta\\, PE_p M_{-1} = \\beta\\, PE_{p-1}`, :math:`k_j = PE_j`, so the score
    :math:`q_p \\cdot k_j / \\sqrt{d}` is largest at :math:`j = p - 1`, where
    :math:`PE_{p-1} \\cdot PE_j = d_{pos}/2`. ``sharpness`` :math:`\\beta` makes that maximum
    dominate the softmax. :math:`v_j` is the word part of token :math:`j`, :math:`W^O = I`: the
    output's first ``d_word`` features are the previous token's word vector, the rest are 0.
    Position 0 has no previous token; its query matches itself best.
    """
    if not isinstance(sharpness, int | float) or not math.isfinite(sharpness) or sharpness <= 0:
        raise ValueError(f"sharpness must be a finite number > 0, got {sharpness!r}")
    if isinstance(d_word, bool) or not isinstance(d_word, int) or d_word < 1:
        raise ValueError(f"d_word must be a positive integer, got {d_word!r}")
    d_model = d_word + d_pos
    head = MultiHeadAttention(d_model, num_heads=1, bias=False)
    shift_back = sinusoidal_shift_matrix(-1, d_pos, dtype=torch.float32)  # PE_p M = PE_{p-1}
    words, positions = slice(0, d_word), slice(d_word, d_model)
    for linear in (head.w_q, head.w_k, head.w_v, head.w_o):
        linear.weight.zero_()
    # nn.Linear computes x W^T, so each block holds the transpose of the book's W.
    head.w_q.weight[positions, positions] = sharpness * shift_back.T
    head.w_k.weight[positions, positions] = torch.eye(d_pos)
    head.w_v.weight[words, words] = torch.eye(d_word)
    head.w_o.weight.copy_(torch.eye(d_model))
    return head
