"""Encoder and decoder blocks against torch.nn.TransformerEncoderLayer / DecoderLayer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transformer_tutorial.layers import AddNorm, DecoderBlock, EncoderBlock, FeedForward

D_MODEL, HEADS, D_FF = 16, 4, 32
ATOL = 1e-5


def _randomize_(module: nn.Module) -> nn.Module:
    """torch initialises biases to 0 and norms to (1, 0): give every parameter a random value
    so that a forgotten bias or a swapped norm cannot pass unnoticed."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.3 * torch.randn_like(p) if name.endswith("weight") else p.normal_())
            elif name.endswith("bias"):
                p.normal_(std=0.5)
    return module


@pytest.fixture
def data():
    torch.manual_seed(0)
    x = torch.randn(3, 6, D_MODEL)
    memory = torch.randn(3, 4, D_MODEL)
    tgt_pad = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4], dtype=torch.bool)
    src_pad = torch.tensor([[1] * 4, [1] * 3 + [0], [1] * 2 + [0] * 2], dtype=torch.bool)
    return x, memory, tgt_pad, src_pad


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("masks", ["none", "padding", "causal+padding"])
def test_encoder_block_equals_torch(data, norm_first, activation, masks):
    x, _, pad, _ = data
    torch.manual_seed(1)
    ref = nn.TransformerEncoderLayer(
        D_MODEL, HEADS, D_FF, dropout=0.0, activation=activation,
        batch_first=True, norm_first=norm_first,
    )  # fmt: skip
    ref = _randomize_(ref).eval()
    ours = EncoderBlock(D_MODEL, HEADS, D_FF, norm_first=norm_first, activation=activation)
    ours.load_from_torch(ref)

    kpm = None if masks == "none" else pad
    causal = masks == "causal+padding"
    causal_mask = (
        nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.bool) if causal else None
    )
    out, weights = ours(x, key_padding_mask=kpm, causal=causal)
    expected = ref(x, src_mask=causal_mask, src_key_padding_mask=None if kpm is None else ~kpm)
    assert out.shape == (3, 6, D_MODEL) and weights.shape == (3, HEADS, 6, 6)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    # the weights returned are those of torch's self-attention on the block's input
    attn_in = ref.norm1(x) if norm_first else x
    _, ref_weights = ref.self_attn(
        attn_in, attn_in, attn_in, attn_mask=causal_mask,
        key_padding_mask=None if kpm is None else ~kpm, average_attn_weights=False,
    )  # fmt: skip
    torch.testing.assert_close(weights, ref_weights, atol=ATOL, rtol=0)


def test_encoder_block_equals_torch_fast_path(data):
    """In inference mode torch switches to a fused kernel; same numbers."""
    x, _, _, _ = data
    ref = _randomize_(nn.TransformerEncoderLayer(D_MODEL, HEADS, D_FF, 0.0, batch_first=True))
    ref = ref.eval()
    ours = EncoderBlock.from_torch(ref)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x)[0], ref(x), atol=ATOL, rtol=0)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("padding", [False, True])
def test_decoder_block_equals_torch(data, norm_first, activation, padding):
    x, memory, tgt_pad, src_pad = data
    torch.manual_seed(2)
    ref = nn.TransformerDecoderLayer(
        D_MODEL, HEADS, D_FF, dropout=0.0, activation=activation,
        batch_first=True, norm_first=norm_first,
    )  # fmt: skip
    ref = _randomize_(ref).eval()
    ours = DecoderBlock.from_torch(ref)
    assert ours.norm_first == norm_first and ours.feed_forward.activation == activation

    tgt_kpm = tgt_pad if padding else None
    src_kpm = src_pad if padding else None
    out, self_w, cross_w = ours(
        x, memory, self_key_padding_mask=tgt_kpm, memory_key_padding_mask=src_kpm
    )
    expected = ref(
        x, memory,
        tgt_mask=nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.bool),
        tgt_is_causal=True,
        tgt_key_padding_mask=None if tgt_kpm is None else ~tgt_kpm,
        memory_key_padding_mask=None if src_kpm is None else ~src_kpm,
    )  # fmt: skip
    assert out.shape == (3, 6, D_MODEL)
    assert self_w.shape == (3, HEADS, 6, 6) and cross_w.shape == (3, HEADS, 6, 4)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert torch.all(self_w.triu(1) == 0)  # causal: nothing above the diagonal
    if padding:
        assert torch.all(cross_w[2, :, :, 2:] == 0)


def test_decoder_block_with_memory_mask_equals_torch(data):
    x, memory, _, _ = data
    torch.manual_seed(3)
    ref = _randomize_(nn.TransformerDecoderLayer(D_MODEL, HEADS, D_FF, 0.0, batch_first=True))
    ours = DecoderBlock.from_torch(ref.eval())
    memory_mask = torch.rand(6, 4) > 0.5
    memory_mask[:, 0] = True
    out, _, _ = ours(x, memory, causal=False, memory_mask=memory_mask)
    torch.testing.assert_close(out, ref(x, memory, memory_mask=~memory_mask), atol=ATOL, rtol=0)


def test_feed_forward_and_add_norm_by_formula():
    torch.manual_seed(4)
    x = torch.randn(2, 3, D_MODEL)
    ffn = FeedForward(D_MODEL, D_FF, activation="gelu")
    w1, b1 = ffn.linear1.weight, ffn.linear1.bias
    w2, b2 = ffn.linear2.weight, ffn.linear2.bias
    expected = F.gelu(x @ w1.T + b1) @ w2.T + b2
    torch.testing.assert_close(ffn(x), expected)
    # position-wise: each token transformed on its own
    torch.testing.assert_close(ffn(x[:, 1:2]), ffn(x)[:, 1:2])

    post = AddNorm(D_MODEL, norm_first=False)
    out = post(x, ffn)
    torch.testing.assert_close(out, F.layer_norm(x + ffn(x), (D_MODEL,), eps=1e-5))
    # layer norm: every token has mean 0 and variance 1 (scale 1, shift 0 at init)
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 3), atol=1e-4, rtol=0)
    pre = AddNorm(D_MODEL, norm_first=True)
    torch.testing.assert_close(pre(x, ffn), x + ffn(F.layer_norm(x, (D_MODEL,), eps=1e-5)))
    # a sublayer returning (output, weights) passes its weights through
    new_x, extra = pre(x, lambda h: (ffn(h), torch.tensor(7.0)))
    assert extra.item() == 7.0 and new_x.shape == x.shape


def test_block_errors():
    with pytest.raises(ValueError, match="d_model must be divisible by num_heads"):
        EncoderBlock(10, 4, 20)
    with pytest.raises(ValueError, match="activation must be one of"):
        FeedForward(8, 16, activation="swish")
    block = EncoderBlock(D_MODEL, HEADS, D_FF)
    with pytest.raises(ValueError, match=r"x must be a tensor of shape \(batch, seq, d_model\)"):
        block(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(batch, k_len\)"):
        block(torch.randn(2, 5, D_MODEL), key_padding_mask=torch.ones(2, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must have shape \(q_len, k_len\) = \(5, 5\)"):
        block(torch.randn(2, 5, D_MODEL), mask=torch.ones(5, 6, dtype=torch.bool))
    dec = DecoderBlock(D_MODEL, HEADS, D_FF)
    with pytest.raises(ValueError, match=r"memory must be a tensor of shape \(batch, seq, d_model"):
        dec(torch.randn(2, 5, D_MODEL), torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="configuration mismatch.*norm_first"):
        block.load_from_torch(nn.TransformerEncoderLayer(D_MODEL, HEADS, D_FF, norm_first=True))
    with pytest.raises(ValueError, match="expected a torch.nn.TransformerDecoderLayer"):
        dec.load_from_torch(nn.TransformerEncoderLayer(D_MODEL, HEADS, D_FF))
