"""Chapter 5 helpers: dot products between positions, offsets, RoPE scores, shuffling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer_tutorial.embeddings import EmbeddingTable
from transformer_tutorial.layers import FeedForward
from transformer_tutorial.multihead import MultiHeadAttention
from transformer_tutorial.positional import (
    SinusoidalPositionalEncoding,
    embed_tokens,
    embed_with_positions,
    offset_reference,
    offset_spread,
    permutation_gap,
    position_dot_products,
    rotary_scores,
    sinusoidal_encoding,
)
from transformer_tutorial.tokens import Vocabulary, tokenize


def test_sinusoidal_dot_products_are_a_sum_of_cosines_of_the_distance():
    d = 16
    gram = position_dot_products(sinusoidal_encoding(30, d, dtype=torch.float64)).numpy()
    omega = 1.0 / 10000 ** (np.arange(0, d, 2) / d)
    m, n = np.meshgrid(np.arange(30), np.arange(30), indexing="ij")
    expected = np.cos((m - n)[..., None] * omega).sum(-1)
    np.testing.assert_allclose(gram, expected, atol=1e-10)
    assert gram[7, 7] == pytest.approx(d / 2)


def test_cosine_dot_products_divide_by_the_norms():
    table = torch.tensor([[3.0, 4.0], [0.0, 2.0], [-1.0, 0.0]])
    expected = torch.tensor([[1.0, 0.8, -0.6], [0.8, 1.0, 0.0], [-0.6, 0.0, 1.0]])
    assert torch.allclose(position_dot_products(table, cosine=True), expected)
    assert position_dot_products(table)[0, 1].item() == 8.0
    with pytest.raises(ValueError, match="non-zero"):
        position_dot_products(torch.zeros(2, 2), cosine=True)


def test_offset_spread_is_zero_only_for_offset_only_matrices():
    toeplitz = torch.tensor([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]])
    assert offset_spread(toeplitz) == 0.0
    bumped = toeplitz.clone()
    bumped[2, 2] = 0.5  # the main diagonal now holds 0, 0, 0.5
    assert offset_spread(bumped) == 0.5
    assert offset_spread(position_dot_products(sinusoidal_encoding(40, 32))) < 1e-4
    random_table = torch.randn(40, 32, generator=torch.Generator().manual_seed(0))
    assert offset_spread(position_dot_products(random_table)) > 10
    with pytest.raises(ValueError, match="square"):
        offset_spread(torch.zeros(2, 3))


def test_offset_reference_reads_the_first_row_and_column():
    matrix = torch.tensor([[0.0, 1.0, 2.0], [10.0, 5.0, 6.0], [20.0, 7.0, 8.0]])
    # row 1 if only offsets mattered: offset -1 -> G[1, 0] = 10, 0 -> G[0, 0], +1 -> G[0, 1]
    assert offset_reference(matrix, 1).tolist() == [10.0, 0.0, 1.0]
    assert offset_reference(matrix, 2).tolist() == [20.0, 10.0, 0.0]
    assert offset_reference(matrix, 0).tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        offset_reference(matrix, 3)


def _rope_scores_complex(q: np.ndarray, k: np.ndarray, n: int, base: float = 10000.0):
    """Independent RoPE: pair feature j with j + d/2 as one complex number and rotate it."""
    half = q.size // 2
    theta = base ** (-np.arange(half) * 2.0 / q.size)
    zq, zk = q[:half] + 1j * q[half:], k[:half] + 1j * k[half:]
    pos = np.arange(n)
    rq = zq * np.exp(1j * pos[:, None] * theta)  # (n, d/2)
    rk = zk * np.exp(1j * pos[:, None] * theta)
    return (rq @ rk.conj().T).real  # Re(sum zq conj(zk)) = the real dot product


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([2, 8, 32]))
def test_rope_scores_match_complex_rotation_and_depend_on_offset_only(seed, d):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, d, generator=g, dtype=torch.float64)
    scores = rotary_scores(q, k, 24)
    np.testing.assert_allclose(
        scores.numpy(), _rope_scores_complex(q.numpy(), k.numpy(), 24), atol=1e-9
    )
    assert offset_spread(scores) < 1e-9 * max(1.0, float(scores.abs().max()))


def test_rope_scores_reject_bad_vectors():
    with pytest.raises(ValueError, match=r"\(d_head,\)"):
        rotary_scores(torch.zeros(2, 4), torch.zeros(4), 5)
    with pytest.raises(ValueError, match="both"):
        rotary_scores(torch.zeros(4), torch.zeros(6), 5)


def test_attention_without_positions_is_permutation_equivariant():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4)
    x = torch.randn(1, 7, 16)
    perm = [6, 2, 0, 5, 1, 4, 3]
    assert permutation_gap(lambda t: mha(t)[0], x, perm) < 1e-5
    ffn = FeedForward(16, 32)
    assert permutation_gap(ffn, x, perm) < 1e-6
    pe = SinusoidalPositionalEncoding(16, 16)
    assert permutation_gap(lambda t: mha(pe(t))[0], x, perm) > 1e-2
    with pytest.raises(ValueError, match=r"reorder range\(seq\)"):
        permutation_gap(ffn, x, [0, 0, 1, 2, 3, 4, 5])


def test_embed_with_positions_scales_embeddings_and_adds_the_table():
    text = "the cat sat on the mat"
    table = EmbeddingTable.random(Vocabulary.from_texts([text]), 8, seed=3)
    tokens = tokenize(text)
    x = embed_with_positions(tokens, table)
    assert x.shape == (1, 6, 8) and x.dtype == torch.float32
    plain = embed_tokens(tokens, table)
    assert plain.shape == (1, 6, 8) and plain.dtype == torch.float32
    np.testing.assert_allclose(plain[0].numpy(), table.lookup(tokens), rtol=1e-6)
    # position 2, feature 0 (a sine) and feature 1 (a cosine), by the paper's formula
    row = math.sqrt(8) * table.lookup(tokens)[2]
    assert x[0, 2, 0].item() == pytest.approx(row[0] + math.sin(2.0), abs=1e-5)
    assert x[0, 2, 1].item() == pytest.approx(row[1] + math.cos(2.0), abs=1e-5)
