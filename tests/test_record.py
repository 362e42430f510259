"""AttentionRecord: validation, batch selection, and the bertviz format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transformer_tutorial.layers import EncoderBlock
from transformer_tutorial.multihead import MultiHeadAttention
from transformer_tutorial.record import AttentionRecord

TOKENS = ("the", "cat", "sat", "down")


def _weights(layers=2, heads=3, q=4, k=4, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.random((layers, heads, q, k))
    return w / w.sum(-1, keepdims=True)


def test_record_holds_a_read_only_copy_and_tuples():
    w = _weights()
    record = AttentionRecord(w, list(TOKENS), list(TOKENS))
    assert record.query_tokens == TOKENS and record.key_tokens == TOKENS
    assert (record.num_layers, record.num_heads, record.q_len, record.k_len) == (2, 3, 4, 4)
    w[0, 0, 0, 0] = 99.0  # the caller's array is not shared
    assert record.weights[0, 0, 0, 0] != 99.0
    with pytest.raises(ValueError, match="read-only"):
        record.weights[0, 0, 0, 0] = 1.0
    assert "layers=2, heads=3" in repr(record)


def test_head_and_mean_over_heads():
    w = _weights()
    record = AttentionRecord(w, TOKENS, TOKENS)
    np.testing.assert_array_equal(record.head(1, 2), w[1, 2])
    np.testing.assert_allclose(record.mean_over_heads(0), (w[0, 0] + w[0, 1] + w[0, 2]) / 3)
    with pytest.raises(ValueError, match=r"head must be in \[0, 3\)"):
        record.head(0, 3)
    with pytest.raises(ValueError, match=r"layer must be in \[0, 2\)"):
        record.mean_over_heads(2)


def test_validation_errors_name_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(layers, heads, q_len, k_len\)"):
        AttentionRecord(np.ones((3, 4, 4)), TOKENS, TOKENS)
    with pytest.raises(ValueError, match="need 4 query tokens and 4 key tokens, got 3 and 4"):
        AttentionRecord(_weights(), TOKENS[:3], TOKENS)
    with pytest.raises(ValueError, match="need 4 query tokens and 5 key tokens"):
        AttentionRecord(_weights(k=5), TOKENS, TOKENS)
    with pytest.raises(ValueError, match="kind must be one of"):
        AttentionRecord(_weights(), TOKENS, TOKENS, kind="causal")
    with pytest.raises(ValueError, match="finite"):
        AttentionRecord(np.full((1, 1, 4, 4), np.nan), TOKENS, TOKENS)
    with pytest.raises(ValueError, match="sequence of token strings"):
        AttentionRecord(_weights(), "the cat sat down", TOKENS)


def test_from_layers_picks_the_sentence_from_a_batch():
    torch.manual_seed(0)
    per_layer = [torch.softmax(torch.randn(3, 2, 4, 4), -1) for _ in range(2)]  # (batch=3, ...)
    record = AttentionRecord.from_layers(per_layer, TOKENS, batch_index=2)
    assert record.weights.shape == (2, 2, 4, 4)
    for layer in range(2):
        np.testing.assert_allclose(record.weights[layer], per_layer[layer][2].numpy(), rtol=0)
    assert record.key_tokens == TOKENS and record.kind == "self"
    # a stacked (layers, batch, heads, q, k) array works too
    stacked = AttentionRecord.from_layers(torch.stack(per_layer).numpy(), TOKENS, batch_index=1)
    np.testing.assert_allclose(stacked.weights[1], per_layer[1][1].numpy(), rtol=0)
    with pytest.raises(ValueError, match=r"batch_index must be in \[0, 3\)"):
        AttentionRecord.from_layers(per_layer, TOKENS, batch_index=3)
    with pytest.raises(ValueError, match=r"per_layer_weights\[1\] must have shape \(batch, heads"):
        AttentionRecord.from_layers([per_layer[0], per_layer[1][0]], TOKENS)
    with pytest.raises(ValueError, match="every layer must have the same shape"):
        AttentionRecord.from_layers([per_layer[0], per_layer[1][:, :1]], TOKENS)


def test_our_modules_feed_the_record_directly():
    torch.manual_seed(1)
    x = torch.randn(2, 4, 8)
    memory = torch.randn(2, 3, 8)
    blocks = [EncoderBlock(8, 2, 16), EncoderBlock(8, 2, 16)]
    weights = []
    h = x
    for block in blocks:
        h, w = block(h)  # w requires grad: the record detaches it
        weights.append(w)
    record = AttentionRecord.from_layers(weights, TOKENS, batch_index=1)
    assert record.weights.shape == (2, 2, 4, 4)
    np.testing.assert_allclose(record.weights.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(record.head(1, 0), weights[1][1, 0].detach().numpy())

    _, cross = MultiHeadAttention(8, 2)(x, memory)
    cross_record = AttentionRecord.from_layers([cross], TOKENS, ("a", "b", "c"), kind="cross")
    assert cross_record.weights.shape == (1, 2, 4, 3) and cross_record.kind == "cross"


def test_to_bertviz_gives_one_tensor_per_layer():
    w = _weights(layers=3, heads=2, q=4, k=4)
    attention = AttentionRecord(w, TOKENS, TOKENS).to_bertviz()
    assert isinstance(attention, list) and len(attention) == 3
    for layer, tensor in enumerate(attention):
        assert isinstance(tensor, torch.Tensor)
        assert tensor.shape == (1, 2, 4, 4) and tensor.dtype == torch.float32
        np.testing.assert_allclose(tensor[0].numpy(), w[layer], atol=1e-7)


def test_to_bertviz_is_accepted_by_bertviz():
    """bertviz's own format check (skipped where bertviz is not installed)."""
    bertviz = pytest.importorskip("bertviz")
    attention = AttentionRecord(_weights(), TOKENS, TOKENS).to_bertviz()
    html = bertviz.head_view(attention, list(TOKENS), html_action="return")
    assert "cat" in html.data
