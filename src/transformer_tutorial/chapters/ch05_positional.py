"""Chapter 5: what a causal mask does to equivariance, why sinusoids, and a head that uses them.

- :func:`equivariance_gaps`: the same attention with and without a causal mask, shuffled.
  Without the mask (an encoder) the gap is float rounding; the mask ties query :math:`i` to
  keys :math:`j \\le i`, so it depends on the order and the gap is large.
- :func:`naive_position_codes` and :func:`neighbour_steps`: the codes :math:`p` and :math:`p/N`
  that one might try first, and how far apart two neighbouring positions are under each.
- :func:`previous_token_head`: one attention head whose query of position :math:`p` is
  :math:`PE_p M_{-1} = PE_{p-1}` (the shift property, :func:`sinusoidal_shift_matrix`) and
  whose key of position :math:`j` is :math:`PE_j`; the score peaks at :math:`j = p - 1`.
- :func:`position_explorer`: one position's encoding and how it lines up with every other.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from transformer_tutorial.multihead import MultiHeadAttention
from transformer_tutorial.positional import (
    permutation_gap,
    sinusoidal_encoding,
    sinusoidal_shift_matrix,
)
from transformer_tutorial.widgets import Control, Explorer, bars, frame, lines

__all__ = [
    "EquivarianceGaps",
    "equivariance_gaps",
    "naive_position_codes",
    "neighbour_steps",
    "words_with_positions",
    "previous_token_head",
    "POSITION_COUNT",
    "POSITION_D_MODEL",
    "POSITION_CHOICES",
    "POSITION_KINDS",
    "position_explorer",
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


# -- The chapter's explorer ----------------------------------------------------------------

POSITION_COUNT = 48
POSITION_D_MODEL = 32
POSITION_CHOICES = tuple(range(POSITION_COUNT))
POSITION_KINDS = ("sinusoidal", "learned (untrained)", "RoPE")
_POSITION_LABELS = {
    "sinusoidal": ("PE(position), added to the embedding", "PE(position) · PE(n)"),
    "learned (untrained)": ("E(position), random before training", "E(position) · E(n)"),
    "RoPE": ("a query q rotated to the position", "RoPE(q, position) · RoPE(k, n)"),
}  # fmt: skip


@functools.lru_cache(maxsize=8)
def _position_tables(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """``vectors (positions, d)``, ``dot products (positions, positions)`` and their
    :func:`~transformer_tutorial.positional.offset_spread` for one kind."""
    import torch

    from transformer_tutorial.positional import (
        LearnedPositionalEmbedding,
        apply_rotary,
        offset_spread,
        position_dot_products,
        rotary_scores,
        sinusoidal_encoding,
    )

    if kind == "sinusoidal":
        table = sinusoidal_encoding(POSITION_COUNT, POSITION_D_MODEL)
        dots = position_dot_products(table)
    elif kind == "learned (untrained)":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            table = LearnedPositionalEmbedding(POSITION_COUNT, POSITION_D_MODEL).embedding.weight
        table = table.detach()
        dots = position_dot_products(table)
    elif kind == "RoPE":
        generator = torch.Generator().manual_seed(seed)
        q, noise = torch.randn(2, POSITION_D_MODEL, generator=generator)
        k = q + 0.5 * noise  # a key close to the query: it matches best at offset 0
        table = apply_rotary(q.expand(POSITION_COUNT, -1))  # q at every position
        dots = rotary_scores(q, k, POSITION_COUNT)
    else:
        raise ValueError(f"kind must be one of {POSITION_KINDS}, got {kind!r}")
    return table.numpy(), dots.detach().numpy(), offset_spread(dots)


def position_data(kind: str, position: int) -> dict[str, Any]:
    """Position ``position``'s vector and its dot products with every position, for one
    ``kind`` of positional information (see :func:`position_explorer`)."""
    import torch

    from transformer_tutorial.positional import offset_reference

    if position not in POSITION_CHOICES:
        raise ValueError(f"position must be one of 0 … {POSITION_COUNT - 1}, got {position!r}")
    vectors, dots, spread = _position_tables(kind)
    low, high = float(dots.min()), float(dots.max())
    pad = 0.05 * (high - low)
    bound = float(np.abs(vectors).max())
    vector_label, dot_label = _POSITION_LABELS[kind]
    reference = offset_reference(torch.from_numpy(dots), position).numpy()
    row = dots[position]
    nearest = int(np.argsort(-row)[1]) if row.argmax() == position else int(row.argmax())
    return frame(
        bars(vectors[position], range(POSITION_D_MODEL), title=vector_label, vmin=-bound,
             vmax=bound, orientation="vertical", colors="sign", label_title="feature i",
             hover="feature {label}: {value}"),
        lines(np.arange(POSITION_COUNT), {dot_label: row, "if it depended on the distance "
              "only": reference}, title=f"{dot_label} for every position n", x_title="n",
              ymin=low - pad, ymax=high + pad, xmarker=position,
              styles={"if it depended on the distance only": "dashed"}),
        title=f"{kind}, position {position}: largest gap to 'distance only', over all "
        f"positions: {spread:.2g}",
        description=f"{kind}, position {position}: the most similar other position is "
        f"{nearest}; the curve's largest gap to 'distance only' is {spread:.2g}.",
    )  # fmt: skip


def position_explorer() -> Explorer:
    """Chapter 5: one position's encoding and how it lines up with every other position."""
    return Explorer(
        "What a position looks like, and whom it resembles",
        (
            Control("kind", POSITION_KINDS, label="positional information"),
            Control("position", POSITION_CHOICES, label="position", default=20),
        ),
        position_data,
        caption=f"Left: the vector of the chosen position (d = {POSITION_D_MODEL}). Right: its "
        "dot product with each of the other positions. The dashed curve is what the solid "
        "curve would be if it depended only on the distance between the two positions. "
        "Sinusoidal encodings and RoPE follow it exactly; an untrained learned table does not.",
    )
