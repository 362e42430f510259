"""Positional encodings: the paper's formula, the shift property, and RoPE against Hugging Face."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer_tutorial.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    rotary_cos_sin,
    rotate_half,
    sinusoidal_encoding,
    sinusoidal_shift_matrix,
)

# --- sinusoidal -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pos", "col", "d_model"),
    [(0, 0, 8), (0, 1, 8), (1, 0, 8), (1, 1, 8), (3, 4, 8), (3, 5, 8), (7, 6, 8), (7, 7, 8),
     (50, 10, 512), (50, 11, 512), (999, 510, 512), (999, 511, 512), (123, 0, 6), (123, 3, 6)],
)  # fmt: skip
def test_sinusoidal_values_by_hand(pos, col, d_model):
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))."""
    i = col // 2
    angle = pos / 10000 ** (2 * i / d_model)
    expected = math.sin(angle) if col % 2 == 0 else math.cos(angle)
    pe = sinusoidal_encoding(pos + 1, d_model, dtype=torch.float64)
    assert pe.shape == (pos + 1, d_model)
    assert pe[pos, col].item() == pytest.approx(expected, abs=1e-12)
    pe32 = sinusoidal_encoding(pos + 1, d_model)
    assert pe32.dtype == torch.float32
    assert pe32[pos, col].item() == pytest.approx(expected, abs=1e-6)


def test_sinusoidal_first_rows_literal():
    pe = sinusoidal_encoding(2, 4, dtype=torch.float64)
    expected = torch.tensor(
        [[0.0, 1.0, 0.0, 1.0], [math.sin(1.0), math.cos(1.0), math.sin(0.01), math.cos(0.01)]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(pe, expected, atol=1e-15, rtol=0)


@settings(max_examples=60, deadline=None)
@given(
    p=st.integers(0, 400),
    k=st.integers(-200, 200),
    half_d=st.integers(1, 32),
)
def test_sinusoidal_shift_is_a_fixed_linear_map(p, k, half_d):
    d_model = 2 * half_d
    if p + k < 0:
        k = -p
    table = sinusoidal_encoding(max(p, p + k) + 1, d_model, dtype=torch.float64)
    m_k = sinusoidal_shift_matrix(k, d_model)
    torch.testing.assert_close(table[p] @ m_k, table[p + k], atol=1e-9, rtol=0)


def test_shift_matrix_is_the_same_for_every_position():
    """One M_k moves every row of the table at once: PE[k:] = PE[:-k] @ M_k."""
    table = sinusoidal_encoding(300, 64, dtype=torch.float64)
    for k in (1, 7, 100):
        torch.testing.assert_close(
            table[:-k] @ sinusoidal_shift_matrix(k, 64), table[k:], atol=1e-9, rtol=0
        )
    # and M_k is a rotation: orthogonal, M_{-k} its inverse
    m = sinusoidal_shift_matrix(5, 64)
    torch.testing.assert_close(m @ sinusoidal_shift_matrix(-5, 64), torch.eye(64, dtype=m.dtype))


def test_positional_modules_add_their_table():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8)
    sin_mod = SinusoidalPositionalEncoding(16, 8)
    torch.testing.assert_close(
        sin_mod(x, offset=3) - x, sinusoidal_encoding(16, 8)[3:8].expand(2, 5, 8)
    )
    learned = LearnedPositionalEmbedding(16, 8)
    torch.testing.assert_close(learned(x) - x, learned.embedding.weight[:5].expand(2, 5, 8))
    assert sum(p.numel() for p in sin_mod.parameters()) == 0
    assert sum(p.numel() for p in learned.parameters()) == 16 * 8


def test_positional_errors_name_the_expected_shape():
    with pytest.raises(ValueError, match="d_model must be even"):
        sinusoidal_encoding(4, 5)
    with pytest.raises(ValueError, match="num_positions must be a positive integer"):
        sinusoidal_encoding(0, 4)
    with pytest.raises(ValueError, match=r"x must be a tensor of shape \(batch, seq, d_model\)"):
        LearnedPositionalEmbedding(8, 4)(torch.zeros(1, 3, 5))
    with pytest.raises(ValueError, match=r"must lie in \[0, max_len\) = \[0, 8\)"):
        SinusoidalPositionalEncoding(8, 4)(torch.zeros(1, 6, 4), offset=3)
    with pytest.raises(ValueError, match="k .* must be an integer"):
        sinusoidal_shift_matrix(1.5, 4)


# --- rotary ---------------------------------------------------------------------------------


def _hf_rope(q, k, positions, d_head, base):
    """Hugging Face's own RoPE: LlamaRotaryEmbedding + apply_rotary_pos_emb."""
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig

    config = LlamaConfig(
        hidden_size=d_head * 2, num_attention_heads=2, head_dim=d_head, rope_theta=base
    )
    rotary = llama.LlamaRotaryEmbedding(config)
    cos, sin = rotary(q, positions)  # (batch, seq, d_head)
    return llama.apply_rotary_pos_emb(q, k, cos, sin), (cos, sin)


@pytest.mark.parametrize("base", [10000.0, 100000.0])
@pytest.mark.parametrize("d_head", [8, 64])
def test_rope_equals_hugging_face(base, d_head):
    torch.manual_seed(0)
    batch, heads, seq = 2, 3, 11
    q = torch.randn(batch, heads, seq, d_head)
    k = torch.randn(batch, heads, seq, d_head)
    positions = torch.stack([torch.arange(seq), torch.arange(5, 5 + seq)])  # (batch, seq)
    (q_hf, k_hf), (cos_hf, sin_hf) = _hf_rope(q, k, positions, d_head, base)

    cos, sin = rotary_cos_sin(positions, d_head, base)
    assert torch.equal(cos, cos_hf) and torch.equal(sin, sin_hf)  # bit for bit
    torch.testing.assert_close(apply_rotary(q, positions, base), q_hf, atol=1e-6, rtol=0)
    torch.testing.assert_close(apply_rotary(k, positions, base), k_hf, atol=1e-6, rtol=0)
    # 1-D positions broadcast over batch and heads
    torch.testing.assert_close(apply_rotary(q[:1], positions[0], base), q_hf[:1], atol=1e-6, rtol=0)


def test_rope_rotates_feature_j_with_feature_j_plus_half():
    """The rotate-half layout written out by hand for one vector and one position."""
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)  # (seq=1, d=4)
    p = 3
    out = apply_rotary(x, torch.tensor([p]))
    theta = [1.0, 10000 ** (-2 / 4)]
    expected = [
        1.0 * math.cos(p * theta[0]) - 3.0 * math.sin(p * theta[0]),
        2.0 * math.cos(p * theta[1]) - 4.0 * math.sin(p * theta[1]),
        3.0 * math.cos(p * theta[0]) + 1.0 * math.sin(p * theta[0]),
        4.0 * math.cos(p * theta[1]) + 2.0 * math.sin(p * theta[1]),
    ]
    torch.testing.assert_close(out[0], torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(rotate_half(x), torch.tensor([[-3.0, -4.0, 1.0, 2.0]]).double())


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(0, 2000),
    n=st.integers(0, 2000),
    shift=st.integers(-2000, 2000),
    seed=st.integers(0, 2**31 - 1),
)
def test_rope_dot_product_depends_only_on_offset(m, n, shift, seed):
    if min(m, n) + shift < 0:
        shift = -min(m, n)
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(1, 16, generator=gen, dtype=torch.float64)
    k = torch.randn(1, 16, generator=gen, dtype=torch.float64)

    def score(pq: int, pk: int) -> float:
        rq = apply_rotary(q, torch.tensor([pq]))
        rk = apply_rotary(k, torch.tensor([pk]))
        return (rq @ rk.T).item()

    assert score(m, n) == pytest.approx(score(m + shift, n + shift), abs=1e-9)
    # the rotation keeps lengths: it is a rotation
    assert apply_rotary(q, torch.tensor([m])).norm().item() == pytest.approx(q.norm().item())


def test_rope_errors_name_the_expected_shape():
    x = torch.zeros(2, 3, 5, 8)
    with pytest.raises(ValueError, match=r"positions must have shape \(seq,\) or \(batch, seq\)"):
        apply_rotary(x, torch.arange(4))
    with pytest.raises(ValueError, match="d_head must be even"):
        apply_rotary(torch.zeros(5, 7))
    with pytest.raises(ValueError, match=r"x must be a floating tensor of shape \(\.\.\., seq"):
        apply_rotary(torch.zeros(5))
    with pytest.raises(ValueError, match=r"need x of shape \(batch, heads, seq, d_head\)"):
        apply_rotary(torch.zeros(5, 8), torch.zeros(2, 5))
