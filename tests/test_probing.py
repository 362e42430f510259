"""The probing helpers: which heads link two tokens, how a word's vector changes with depth."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from transformer_tutorial.probing import (
    attention_between,
    mean_pairwise_similarity,
    offset_attention,
    strongest_heads,
    token_position,
)
from transformer_tutorial.record import AttentionRecord


def toy_record() -> AttentionRecord:
    weights = np.random.default_rng(0).dirichlet(np.ones(4), size=(2, 3, 4))
    weights[1, 2, 3] = [0.0, 0.9, 0.05, 0.05]
    return AttentionRecord(weights, ["a", "b", "c", "d"], ["a", "b", "c", "d"])


def test_attention_between_and_strongest_heads():
    record = toy_record()
    table = attention_between(record, "d", "b")
    assert table.shape == (2, 3)
    np.testing.assert_array_equal(table, record.weights[:, :, 3, 1])
    best = strongest_heads(record, 3, 1, top=2)
    assert (best[0].layer, best[0].head, best[0].weight) == (1, 2, pytest.approx(0.9))
    assert best[0].weight >= best[1].weight
    assert all(link.layer == 0 for link in strongest_heads(record, "d", "b", top=3, layer=0))
    with pytest.raises(ValueError, match="not one of the tokens"):
        attention_between(record, "z", "b")
    with pytest.raises(ValueError, match=r"layer must be in \[0, 2\)"):
        strongest_heads(record, "d", "b", layer=2)
    with pytest.raises(ValueError, match=r"position must be in \[0, 4\)"):
        token_position(record.query_tokens, 4)


def test_mean_pairwise_similarity():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # pairs: 0, 1/sqrt(2), 1/sqrt(2)
    assert mean_pairwise_similarity(vectors) == pytest.approx(2 / np.sqrt(2) / 3)
    with pytest.raises(ValueError, match="seq >= 2"):
        mean_pairwise_similarity(np.ones((1, 3)))


def test_offset_attention_finds_previous_token_heads():
    n = 5
    previous = np.eye(n, k=-1)
    previous[0, 0] = 1.0  # the first token has no previous one
    uniform = np.full((n, n), 1 / n)
    record = AttentionRecord(np.stack([previous, uniform])[None], list("abcde"), list("abcde"))
    table = offset_attention(record, -1)
    assert table.shape == (1, 2)
    np.testing.assert_allclose(table, [[1.0, 1 / n]])
    np.testing.assert_allclose(offset_attention(record, 1), [[0.0, 1 / n]])
    with pytest.raises(ValueError, match=r"offset must be in \[-4, 5\)"):
        offset_attention(record, 5)
