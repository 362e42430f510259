"""Positional information: sinusoidal, learned and rotary (RoPE).

Attention by itself does not know the order of its inputs (shuffle the tokens and the outputs
shuffle the same way). Three ways to tell it:

* **sinusoidal** ("Attention Is All You Need", section 3.5), added to the token embeddings:
  :math:`PE_{(pos, 2i)} = \\sin(pos / 10000^{2i/d_{model}})`,
  :math:`PE_{(pos, 2i+1)} = \\cos(pos / 10000^{2i/d_{model}})`.
  For any offset :math:`k` there is one fixed matrix :math:`M_k` with
  :math:`PE_{p+k} = PE_p M_k` for every :math:`p` (:func:`sinusoidal_shift_matrix`).
* **learned**: one trainable vector per position (BERT, GPT-2), :class:`LearnedPositionalEmbedding`.
* **rotary** (RoPE, Su et al. 2021; LLaMA, SmolLM2...): rotate each query and key by an angle
  proportional to its position, so :math:`q_m \\cdot k_n` depends on :math:`m - n` only.

RoPE convention. We use the "rotate half" layout of LLaMA and Hugging Face
(``transformers.models.llama.modeling_llama.apply_rotary_pos_emb``): feature :math:`j` is paired
with feature :math:`j + d/2` (not with its neighbour :math:`j+1` as in the RoPE paper), both
rotated by the angle :math:`p\\,\\theta_j`, :math:`\\theta_j = \\mathrm{base}^{-2j/d}`:

.. math::

    \\mathrm{RoPE}(x, p)
    = x \\odot \\cos(p\\theta) + \\mathrm{rotate\\_half}(x) \\odot \\sin(p\\theta),
    \\qquad \\mathrm{rotate\\_half}([x_1, x_2]) = [-x_2, x_1]

where :math:`\\cos(p\\theta)` repeats the :math:`d/2` angles twice, ``cat(angles, angles)``.
Weights of a Hugging Face LLaMA-style model therefore load without permuting ``W_Q``/``W_K``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from transformer_tutorial import checks

__all__ = [
    "sinusoidal_encoding",
    "sinusoidal_shift_matrix",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding",
    "rotary_inverse_frequencies",
    "rotary_angles",
    "rotary_cos_sin",
    "rotate_half",
    "apply_rotary",
    "position_dot_products",
    "offset_spread",
    "rotary_scores",
    "permutation_gap",
    "offset_reference",
    "embed_tokens",
    "embed_with_positions",
]


def _even_positive_int(value: object, name: str) -> int:
    checks.positive_int(value, name)
    if value % 2:
        raise ValueError(f"{name} must be even (features come in sin/cos pairs), got {value}")
    return value


def _positive_base(base: float) -> float:
    if checks.finite_number(base, "base") <= 1:
        raise ValueError(f"base must be a finite number > 1, got {base!r}")
    return float(base)


def _float_dtype(dtype: object) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype, got {dtype!r}")
    return dtype


def _frequencies(d_model: int, base: float, dtype: torch.dtype) -> torch.Tensor:
    """:math:`\\omega_i = 1 / \\mathrm{base}^{2i/d}` for :math:`i = 0..d/2-1`, shape ``(d/2,)``."""
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    return (1.0 / base ** (two_i / d_model)).to(dtype)


def sinusoidal_encoding(
    num_positions: int, d_model: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The sinusoidal table of "Attention Is All You Need", shape ``(num_positions, d_model)``.

    :math:`PE_{(pos, 2i)} = \\sin(pos / \\mathrm{base}^{2i/d_{model}})`,
    :math:`PE_{(pos, 2i+1)} = \\cos(pos / \\mathrm{base}^{2i/d_{model}})`, base 10000.
    Even columns hold the sines, odd columns the cosines; computed in float64, returned as
    ``dtype``.
    """
    checks.positive_int(num_positions, "num_positions")
    _even_positive_int(d_model, "d_model")
    base = _positive_base(base)
    dtype = _float_dtype(dtype)
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (positions, 1)
    angles = pos * _frequencies(d_model, base, torch.float64)[None, :]  # (positions, d/2)
    pe = torch.empty(num_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe.to(dtype)


def sinusoidal_shift_matrix(
    k: int, d_model: int, base: float = 10000.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """The fixed ``(d_model, d_model)`` matrix :math:`M_k` with :math:`PE_{p+k} = PE_p M_k`.

    It is block diagonal: each (sin, cos) pair with frequency :math:`\\omega_i` is rotated by
    the angle :math:`k\\omega_i`, since
    :math:`\\sin((p+k)\\omega) = \\sin(p\\omega)\\cos(k\\omega) + \\cos(p\\omega)\\sin(k\\omega)`
    and
    :math:`\\cos((p+k)\\omega) = \\cos(p\\omega)\\cos(k\\omega) - \\sin(p\\omega)\\sin(k\\omega)`.
    It does not depend on :math:`p`; ``k`` may be negative.
    """
    k = checks.integer(k, "k (the offset)")
    _even_positive_int(d_model, "d_model")
    base = _positive_base(base)
    dtype = _float_dtype(dtype)
    theta = k * _frequencies(d_model, base, torch.float64)  # (d/2,)
    c, s = torch.cos(theta), torch.sin(theta)
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    idx = torch.arange(0, d_model, 2)
    # Row vector convention: new[2i] = old[2i] c + old[2i+1] s, new[2i+1] = -old[2i] s + old[2i+1] c
    m[idx, idx] = c
    m[idx + 1, idx] = s
    m[idx, idx + 1] = -s
    m[idx + 1, idx + 1] = c
    return m.to(dtype)


def _check_sequence(
    x: object, like: torch.Tensor, d_model: int, max_len: int, offset: int
) -> torch.Tensor:
    """``x`` as a finite tensor ``(batch, seq, d_model)`` whose positions fit ``max_len``."""
    expected = f"(batch, seq, d_model) = (batch, seq, {d_model})"
    x = checks.as_tensor(x, "x", like, expected, ndim=3, last_dim=d_model, keep_dtype=True)
    checks.non_negative_int(offset, "offset")
    if offset + x.shape[1] > max_len:
        raise ValueError(
            f"positions offset..offset+seq-1 must lie in [0, max_len) = [0, {max_len}), "
            f"got offset={offset}, seq={x.shape[1]}"
        )
    return x


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table: ``(batch, seq, d_model) -> (batch, seq, d_model)``.

    :math:`x_p + PE_p` for positions :math:`p = \\text{offset}, \\dots, \\text{offset}+seq-1`.
    The table (:func:`sinusoidal_encoding`) is a buffer, not a parameter: nothing to learn.
    """

    def __init__(self, max_len: int, d_model: int, base: float = 10000.0) -> None:
        super().__init__()
        self.max_len = checks.positive_int(max_len, "max_len")
        self.d_model = _even_positive_int(d_model, "d_model")
        self.register_buffer("table", sinusoidal_encoding(max_len, d_model, base), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        x = _check_sequence(x, self.table, self.d_model, self.max_len, offset)
        return x + self.table[offset : offset + x.shape[1]].to(x.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """Adds one learned vector per position: ``(batch, seq, d_model) -> (batch, seq, d_model)``.

    :math:`x_p + E_p` with :math:`E` a trainable ``(max_len, d_model)`` table (``self.embedding``,
    an ``nn.Embedding``) as in BERT and GPT-2. It cannot go beyond ``max_len`` positions.
    """

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        self.max_len = checks.positive_int(max_len, "max_len")
        self.d_model = checks.positive_int(d_model, "d_model")
        self.embedding = nn.Embedding(max_len, d_model)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        x = _check_sequence(x, self.embedding.weight, self.d_model, self.max_len, offset)
        positions = torch.arange(offset, offset + x.shape[1], device=x.device)
        return x + self.embedding(positions).to(x.dtype)


def _check_positions(positions: object) -> torch.Tensor:
    if isinstance(positions, str | bytes):
        raise ValueError("positions must be numbers of shape (seq,) or (batch, seq), got a string")
    try:
        positions = torch.as_tensor(positions)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"positions must be numbers of shape (seq,) or (batch, seq): {err}"
        ) from None
    if positions.dtype == torch.bool or positions.is_complex():
        raise ValueError(f"positions must be integers or reals, got dtype {positions.dtype}")
    if positions.is_floating_point() and not bool(torch.isfinite(positions).all()):
        raise ValueError("positions must be finite (no NaN or inf)")
    if positions.ndim not in (1, 2) or 0 in positions.shape:
        raise ValueError(
            f"positions must have shape (seq,) or (batch, seq), got {tuple(positions.shape)}"
        )
    return positions


def rotary_inverse_frequencies(
    d_head: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """:math:`\\theta_j = 1 / \\mathrm{base}^{2j/d_{head}}`, shape ``(d_head / 2,)``.

    Computed the way Hugging Face does (``1.0 / base ** (arange(0, d, 2).float() / d)``,
    in float32 by default) so that the cos/sin tables equal theirs bit for bit.
    """
    _even_positive_int(d_head, "d_head")
    base = _positive_base(base)
    dtype = _float_dtype(dtype)
    two_j = torch.arange(0, d_head, 2, dtype=torch.int64).to(dtype)
    return 1.0 / (base ** (two_j / d_head))


def rotary_angles(
    positions: torch.Tensor, d_head: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The rotation angles :math:`p\\,\\theta_j`, shape ``(*positions.shape, d_head / 2)``.

    ``positions``: ``(seq,)`` or ``(batch, seq)``, usually ``torch.arange(seq)``.
    """
    positions = _check_positions(positions)
    inv_freq = rotary_inverse_frequencies(d_head, base, dtype)
    return positions.to(dtype)[..., None] * inv_freq


def rotary_cos_sin(
    positions: torch.Tensor, d_head: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` tables of shape ``(*positions.shape, d_head)`` in the rotate-half layout.

    ``cos = cos(cat(angles, angles))``: feature :math:`j` and :math:`j + d/2` share an angle.
    These are what Hugging Face's rotary embedding module returns.
    """
    angles = rotary_angles(positions, d_head, base, dtype)
    emb = torch.cat((angles, angles), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """:math:`[x_1, x_2] \\mapsto [-x_2, x_1]` on the last axis (halves of size ``d/2``)."""
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[-1] % 2 or 0 in x.shape:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor of shape (..., d) with d even, got {shape}")
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary(
    x: torch.Tensor, positions: torch.Tensor | None = None, base: float = 10000.0
) -> torch.Tensor:
    """Rotary position embedding of queries or keys, same shape as ``x``.

    :math:`\\mathrm{RoPE}(x, p) = x \\odot \\cos(p\\theta) + \\mathrm{rotate\\_half}(x)
    \\odot \\sin(p\\theta)` (Hugging Face / LLaMA convention, see the module docstring).

    ``x``: ``(..., seq, d_head)``, e.g. ``(batch, heads, seq, d_head)``. ``positions``:
    ``(seq,)`` (default ``arange(seq)``) or, for ``x`` of shape ``(batch, heads, seq, d_head)``,
    ``(batch, seq)``. The angles are computed in float32 (as Hugging Face does) when ``x`` is
    float32 or lower precision, in float64 when ``x`` is float64.
    """
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x) or x.ndim < 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating tensor of shape (..., seq, d_head), got {shape}")
    if x.shape[-1] % 2:
        raise ValueError(f"x (..., seq, d_head): d_head must be even, got {tuple(x.shape)}")
    if 0 in x.shape:
        raise ValueError(f"x (..., seq, d_head) must not be empty, got {tuple(x.shape)}")
    seq, d_head = x.shape[-2], x.shape[-1]
    if positions is None:
        positions = torch.arange(seq, device=x.device)
    positions = _check_positions(positions).to(x.device)
    if positions.shape[-1] != seq:
        raise ValueError(
            f"positions must have shape (seq,) or (batch, seq) with seq = {seq}, "
            f"got {tuple(positions.shape)}"
        )
    if positions.ndim == 2 and (x.ndim != 4 or positions.shape[0] != x.shape[0]):
        raise ValueError(
            "positions of shape (batch, seq) need x of shape (batch, heads, seq, d_head); "
            f"got positions {tuple(positions.shape)} and x {tuple(x.shape)}"
        )
    angle_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    cos, sin = rotary_cos_sin(positions, d_head, base, angle_dtype)
    if positions.ndim == 2:  # (batch, seq, d) -> (batch, 1, seq, d): same for every head
        cos, sin = cos[:, None], sin[:, None]
    return x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype)



def position_dot_products(table: torch.Tensor, cosine: bool = False) -> torch.Tensor:
    """:math:`G_{mn} = PE_m \\cdot PE_n` for every pair of positions, ``(positions, positions)``.

    ``table``: ``(positions, d)``, one encoding per position (e.g. :func:`sinusoidal_encoding`
    or a learned table's ``weight``). For the sinusoidal table
    :math:`PE_m \\cdot PE_n = \\sum_i \\cos((m - n)\\,\\omega_i)` depends on :math:`m - n` only.
    ``cosine=True`` divides by the norms, :math:`\\cos(PE_m, PE_n)`, for tables whose rows
    differ in length (a trained table's first position often does).
    """
    if not isinstance(table, torch.Tensor) or table.ndim != 2 or 0 in table.shape:
        shape = tuple(table.shape) if isinstance(table, torch.Tensor) else type(table).__name__
        raise ValueError(f"table must be a tensor of shape (positions, d), got {shape}")
    table = table.detach()
    if not torch.is_floating_point(table) or not bool(torch.isfinite(table).all()):
        raise ValueError("table must hold finite floating-point numbers")
    if cosine:
        norms = table.norm(dim=-1, keepdim=True)
        if (norms == 0).any():
            raise ValueError("cosine=True needs every row of table to be non-zero")
        table = table / norms
    return table @ table.T


def offset_spread(matrix: torch.Tensor) -> float:
    """How far a ``(positions, positions)`` matrix is from depending on the offset only.

    The largest difference between two entries :math:`G_{mn}` with the same offset
    :math:`n - m` (the same diagonal): 0 exactly when :math:`G_{mn} = f(n - m)`.
    """
    square = isinstance(matrix, torch.Tensor) and matrix.ndim == 2
    if not square or matrix.shape[0] != matrix.shape[1]:
        shape = tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__
        raise ValueError(f"matrix must be a square tensor (positions, positions), got {shape}")
    n = matrix.shape[0]
    spreads = [
        (diag.max() - diag.min()).item()
        for diag in (torch.diagonal(matrix.detach(), offset) for offset in range(1 - n, n))
    ]
    return float(max(spreads))


def rotary_scores(
    q: torch.Tensor, k: torch.Tensor, num_positions: int, base: float = 10000.0
) -> torch.Tensor:
    """:math:`S_{mn} = \\mathrm{RoPE}(q, m) \\cdot \\mathrm{RoPE}(k, n)`, shape
    ``(positions, positions)``.

    The same query vector ``q`` and key vector ``k`` (both ``(d_head,)``) placed at every
    position :math:`0 .. \\text{num\\_positions}-1`. Rotations by :math:`m\\theta` and
    :math:`n\\theta` leave only the angle :math:`(n - m)\\theta` between them, so :math:`S_{mn}`
    depends on :math:`n - m` only (:func:`offset_spread` is 0 up to rounding).
    """
    for name, v in (("q", q), ("k", k)):
        if not isinstance(v, torch.Tensor) or v.ndim != 1 or not torch.is_floating_point(v):
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(f"{name} must be a floating tensor of shape (d_head,), got {shape}")
    if q.shape != k.shape:
        raise ValueError(
            f"q and k must both be (d_head,), got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    checks.positive_int(num_positions, "num_positions")
    positions = torch.arange(num_positions)
    rq = apply_rotary(q.expand(num_positions, -1), positions, base)  # (positions, d_head)
    rk = apply_rotary(k.expand(num_positions, -1), positions, base)
    return rq @ rk.T


def permutation_gap(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, permutation: object
) -> float:
    """:math:`\\max |f(x)_{\\pi} - f(x_{\\pi})|`: 0 when ``fn`` is permutation-equivariant.

    ``x``: ``(batch, seq, d_model)``; ``permutation``: a reordering of ``range(seq)``;
    ``fn`` maps ``(batch, seq, d)`` to ``(batch, seq, d')`` (e.g. self-attention). Shuffling
    the tokens and then applying ``fn`` gives the same as applying ``fn`` and then shuffling
    its outputs exactly when ``fn`` ignores the order of the tokens.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor of shape (batch, seq, d_model), got {shape}")
    perm = torch.as_tensor(permutation)
    if perm.ndim != 1 or sorted(perm.tolist()) != list(range(x.shape[1])):
        raise ValueError(
            f"permutation must reorder range(seq) = range({x.shape[1]}), got {perm.tolist()}"
        )
    with torch.no_grad():
        shuffled_after = fn(x)[:, perm]
        shuffled_before = fn(x[:, perm])
    if shuffled_after.shape != shuffled_before.shape:
        raise ValueError("fn must return one vector per token, (batch, seq, d')")
    return float((shuffled_after - shuffled_before).abs().max())



def offset_reference(matrix: torch.Tensor, position: int) -> torch.Tensor:
    """Row ``position`` of ``matrix`` as it would be if :math:`G_{mn}` depended on
    :math:`n - m` only, read off the first row and column: :math:`G_{0, n-m}` for
    :math:`n \\ge m`, :math:`G_{m-n, 0}` otherwise. Shape ``(positions,)``.

    Equal to ``matrix[position]`` (up to rounding) exactly when :func:`offset_spread` is 0.
    """
    square = isinstance(matrix, torch.Tensor) and matrix.ndim == 2
    if not square or matrix.shape[0] != matrix.shape[1]:
        shape = tuple(matrix.shape) if isinstance(matrix, torch.Tensor) else type(matrix).__name__
        raise ValueError(f"matrix must be a square tensor (positions, positions), got {shape}")
    n = matrix.shape[0]
    position = checks.int_in_range(position, "position", 0, n - 1)
    matrix = matrix.detach()
    after = matrix[0, : n - position]  # offsets 0 .. n-1-position
    before = matrix[1 : position + 1, 0].flip(0)  # offsets -position .. -1
    return torch.cat((before, after))


def embed_tokens(tokens: Sequence[str], table: object) -> torch.Tensor:
    """The embeddings of ``tokens`` alone, no position information: ``(1, seq, d_model)``
    float32, row :math:`p` the vector of token :math:`p` in ``table`` (an
    :class:`~transformer_tutorial.embeddings.EmbeddingTable`)."""
    from transformer_tutorial.embeddings import EmbeddingTable

    checks.instance_of(table, "table", EmbeddingTable)
    return torch.as_tensor(table.lookup(tokens), dtype=torch.float32)[None]


def embed_with_positions(tokens: Sequence[str], table: object) -> torch.Tensor:
    """The input of the first Transformer block, ``(1, seq, d_model)`` float32:
    :math:`x_p = \\sqrt{d_{model}}\\, E_{t_p} + PE_p`.

    ``table``: an :class:`~transformer_tutorial.embeddings.EmbeddingTable` (vectors of size
    about 1); "Attention Is All You Need" (section 3.4) multiplies the embeddings by
    :math:`\\sqrt{d_{model}}` before adding the sinusoidal encoding :math:`PE`.
    """
    vectors = embed_tokens(tokens, table)  # (1, seq, d_model)
    _, seq, d_model = vectors.shape
    return math.sqrt(d_model) * vectors + sinusoidal_encoding(seq, d_model)
