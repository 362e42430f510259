"""Encoder, Decoder, EncoderDecoder and DecoderOnlyLM against torch's own Transformer modules."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transformer_tutorial.models import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    DecoderOnlyLM,
    EncoderDecoder,
    greedy_decode,
    greedy_generate,
    num_parameters,
)
from transformer_tutorial.positional import sinusoidal_encoding
from transformer_tutorial.record import AttentionRecord

# torch.nn.Transformer warns that pre-norm layers skip its nested-tensor fast path
pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")

D_MODEL, HEADS, D_FF, LAYERS = 16, 4, 32, 2
ATOL = 1e-5


def _randomize_(module: nn.Module) -> nn.Module:
    """Random biases and norm parameters, so that a forgotten bias or norm cannot pass."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.normal_(std=0.5)
    return module


@pytest.fixture
def vectors():
    torch.manual_seed(0)
    src = torch.randn(3, 5, D_MODEL)
    tgt = torch.randn(3, 6, D_MODEL)
    src_real = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 4 + [0]], dtype=torch.bool)
    tgt_real = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4], dtype=torch.bool)
    return src, tgt, src_real, tgt_real


def _pair(norm_first: bool) -> tuple[EncoderDecoder, nn.Transformer]:
    torch.manual_seed(1)
    ref = nn.Transformer(
        D_MODEL, HEADS, LAYERS, LAYERS, D_FF, dropout=0.0, batch_first=True,
        norm_first=norm_first,
    )  # fmt: skip
    ref = _randomize_(ref).eval()
    ours = EncoderDecoder(
        11, 11, D_MODEL, HEADS, D_FF, LAYERS, LAYERS, norm_first=norm_first, final_norm=True
    ).load_from_torch(ref)
    return ours, ref


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("masks", [False, True])
def test_transform_equals_torch_transformer(vectors, norm_first, masks):
    src, tgt, src_real, tgt_real = vectors
    ours, ref = _pair(norm_first)
    out, enc_w, dec_w, cross_w = ours.transform(
        src, tgt, src_real if masks else None, tgt_real if masks else None
    )
    causal = nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.bool)
    expected = ref(
        src, tgt, tgt_mask=causal,
        src_key_padding_mask=~src_real if masks else None,
        tgt_key_padding_mask=~tgt_real if masks else None,
        memory_key_padding_mask=~src_real if masks else None,
    )  # fmt: skip
    assert out.shape == (3, 6, D_MODEL)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert [w.shape for w in enc_w] == [(3, HEADS, 5, 5)] * LAYERS
    assert [w.shape for w in dec_w] == [(3, HEADS, 6, 6)] * LAYERS
    assert [w.shape for w in cross_w] == [(3, HEADS, 6, 5)] * LAYERS
    # the decoder's self-attention is causal; with masks no weight lands on padding
    assert torch.all(dec_w[0].triu(1) == 0)
    if masks:
        assert torch.all(cross_w[1][1, :, :, 3:] == 0) and torch.all(enc_w[0][2, :, :, 4] == 0)


def test_first_encoder_layer_weights_equal_torch(vectors):
    src, _, src_real, _ = vectors
    ours, ref = _pair(False)
    _, enc_w, _, _ = ours.transform(src, src[:, :2], src_real)
    _, ref_w = ref.encoder.layers[0].self_attn(
        src, src, src, key_padding_mask=~src_real, average_attn_weights=False
    )
    torch.testing.assert_close(enc_w[0], ref_w, atol=ATOL, rtol=0)


def test_forward_embeds_scales_adds_positions_and_projects():
    """The full model = torch's Transformer on sqrt(d) * embedding + PE, then the linear layer."""
    ours, ref = _pair(True)
    torch.manual_seed(2)
    src = torch.tensor([[4, 5, 6, 7], [8, 9, 10, PAD_ID]])
    tgt = torch.tensor([[BOS_ID, 7, 6, 5], [BOS_ID, 10, PAD_ID, PAD_ID]])
    logits = ours(src, tgt).logits
    pe = sinusoidal_encoding(64, D_MODEL)
    src_x = F.embedding(src, ours.src_embed.embedding.weight) * math.sqrt(D_MODEL) + pe[:4]
    tgt_x = F.embedding(tgt, ours.tgt_embed.embedding.weight) * math.sqrt(D_MODEL) + pe[:4]
    hidden = ref(
        src_x, tgt_x, tgt_mask=nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.bool),
        src_key_padding_mask=src == PAD_ID, tgt_key_padding_mask=tgt == PAD_ID,
        memory_key_padding_mask=src == PAD_ID,
    )  # fmt: skip
    expected = F.linear(hidden, ours.generator.weight, ours.generator.bias)
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)


def test_shared_embeddings_are_one_matrix():
    model = EncoderDecoder(12, 12, share_embeddings=True)
    assert model.src_embed.embedding.weight is model.tgt_embed.embedding.weight
    assert model.generator.weight is model.src_embed.embedding.weight
    separate = EncoderDecoder(12, 12)
    assert num_parameters(separate) - num_parameters(model) == 2 * 12 * 64
    with pytest.raises(ValueError, match="src_vocab_size == tgt_vocab_size"):
        EncoderDecoder(12, 13, share_embeddings=True)


def test_records_have_the_three_attentions():
    torch.manual_seed(0)
    model = EncoderDecoder(10, 10, d_model=16, num_heads=2, d_ff=32).eval()
    out = model(torch.tensor([[4, 5, 6]]), torch.tensor([[BOS_ID, 6, 5, 4]]))
    records = out.records(["a", "b", "c"], ["<bos>", "c", "b", "a"])
    assert set(records) == {"encoder", "decoder", "cross"}
    assert all(isinstance(r, AttentionRecord) for r in records.values())
    assert records["cross"].kind == "cross" and records["cross"].weights.shape == (2, 2, 4, 3)
    assert records["cross"].key_tokens == ("a", "b", "c")
    assert records["decoder"].weights.shape == (2, 2, 4, 4)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_only_lm_equals_causal_torch_encoder(norm_first):
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(
        D_MODEL, HEADS, D_FF, 0.0, activation="gelu", batch_first=True, norm_first=norm_first
    )
    ref = _randomize_(nn.TransformerEncoder(layer, LAYERS, norm=nn.LayerNorm(D_MODEL),
                                            enable_nested_tensor=False)).eval()
    lm = DecoderOnlyLM(20, D_MODEL, HEADS, D_FF, LAYERS, norm_first=norm_first, final_norm=True)
    lm.load_from_torch(ref)
    x = torch.randn(2, 7, D_MODEL)
    out, weights = lm.transform(x)
    causal = nn.Transformer.generate_square_subsequent_mask(7, dtype=torch.bool)
    torch.testing.assert_close(out, ref(x, mask=causal, is_causal=True), atol=ATOL, rtol=0)
    assert torch.all(weights[1].triu(1) == 0)
    ids = torch.tensor([[4, 5, 6, 7]])
    lm_out = lm(ids)
    assert lm_out.logits.shape == (1, 4, 20)
    assert lm_out.record(["a", "b", "c", "d"]).weights.shape == (LAYERS, HEADS, 4, 4)
    # causal: the logits at position 1 do not depend on the tokens after it
    changed = lm(torch.tensor([[4, 5, 9, 9]])).logits
    torch.testing.assert_close(changed[:, :2], lm_out.logits[:, :2], atol=ATOL, rtol=0)


class _Scripted(EncoderDecoder):
    """An EncoderDecoder whose next token is scripted: emits 5, 6, then <eos>, then 7 forever."""

    SCRIPT = (5, 6, EOS_ID)

    def decode(self, tgt_ids, memory, src_ids):
        logits, s, c = super().decode(tgt_ids, memory, src_ids)
        steps = tgt_ids.shape[1] - 1
        token = self.SCRIPT[steps] if steps < len(self.SCRIPT) else 7
        forced = torch.full_like(logits, -1e4)
        forced[..., token] = 0.0
        return forced, s, c


def test_greedy_decode_stops_at_eos():
    model = _Scripted(10, 10, d_model=16, num_heads=2, d_ff=32)
    out = greedy_decode(model, torch.tensor([[4, 4]]), max_len=10)
    assert out.tolist() == [[5, 6, EOS_ID]]
    out = greedy_decode(model, torch.tensor([[4, 4]]), max_len=2)
    assert out.tolist() == [[5, 6]]


def test_greedy_decode_pads_finished_sequences():
    torch.manual_seed(0)
    model = EncoderDecoder(10, 10, d_model=16, num_heads=2, d_ff=32)
    with torch.no_grad():  # a model that always says <eos>
        model.generator.weight.zero_()
        model.generator.bias.copy_(torch.arange(10.0) == EOS_ID)
    out = greedy_decode(model, torch.tensor([[4, 5], [6, PAD_ID]]), max_len=5)
    assert out.tolist() == [[EOS_ID], [EOS_ID]]


def test_greedy_generate_stops_at_eos_and_max_tokens():
    torch.manual_seed(0)
    lm = DecoderOnlyLM(10, d_model=16, num_heads=2, d_ff=32, max_len=32)
    out = greedy_generate(lm, torch.tensor([[4, 5]]), max_new_tokens=6)
    assert out.shape[1] <= 8 and out[0, :2].tolist() == [4, 5]
    with torch.no_grad():
        lm.embed.embedding.weight.zero_()
        lm.embed.embedding.weight[EOS_ID, 0] = 1.0  # the logit of <eos> is the only non-zero
        lm.blocks.norm.weight.zero_()
        lm.blocks.norm.bias.zero_()
        lm.blocks.norm.bias[0] = 1.0
    assert greedy_generate(lm, torch.tensor([[4, 5]]), 6).tolist() == [[4, 5, EOS_ID]]


@pytest.mark.parametrize(
    ("src", "message"),
    [
        (torch.tensor([4, 5]), r"\(batch, seq\)"),
        (torch.tensor([[4.0, 5.0]]), "integer token ids"),
        (torch.tensor([[4, 50]]), r"\[0, vocab_size\) = \[0, 10\)"),
        (torch.zeros(1, 70, dtype=torch.long), "max_len = 64"),
    ],
)
def test_bad_ids_raise_value_error_naming_the_shape(src, message):
    model = EncoderDecoder(10, 10, d_model=16, num_heads=2, d_ff=32)
    with pytest.raises(ValueError, match=message):
        model(src, torch.tensor([[BOS_ID]]))


def test_mismatched_batch_and_bad_config_raise():
    model = EncoderDecoder(10, 10, d_model=16, num_heads=2, d_ff=32)
    with pytest.raises(ValueError, match="share batch"):
        model(torch.tensor([[4, 5]]), torch.tensor([[BOS_ID], [BOS_ID]]))
    with pytest.raises(ValueError, match="divisible"):
        EncoderDecoder(10, 10, d_model=16, num_heads=3)
    with pytest.raises(ValueError, match="final norm mismatch"):
        EncoderDecoder(10, 10, D_MODEL, HEADS, D_FF, LAYERS, LAYERS).load_from_torch(
            nn.Transformer(D_MODEL, HEADS, LAYERS, LAYERS, D_FF, batch_first=True)
        )
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(model, torch.tensor([[4]]), max_len=64)


def test_the_one_generation_loop_pads_finished_rows_and_feeds_only_new_tokens():
    """A bigram table as the model: token t is followed by NEXT[t]; 3 is <eos>."""
    from transformer_tutorial.generation import autoregressive_decode

    table = torch.full((6, 6), -1.0)
    following = {0: 1, 1: 2, 2: EOS_ID, 4: 5, 5: 4}
    for t, nxt in following.items():
        table[t, nxt] = 1.0
    fed: list[list[list[int]]] = []

    def next_logits(ids: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        fed.append(new.tolist())
        return table[ids[:, -1]]

    out = autoregressive_decode(next_logits, torch.tensor([[0], [4]]), 5, eos_id=EOS_ID,
                                pad_id=PAD_ID)  # fmt: skip
    assert out.tolist() == [[0, 1, 2, EOS_ID, PAD_ID, PAD_ID], [4, 5, 4, 5, 4, 5]]
    assert fed[0] == [[0], [4]] and fed[1] == [[1], [5]]
    stopped = autoregressive_decode(next_logits, torch.tensor([[1]]), 5, eos_id=EOS_ID)
    assert stopped.tolist() == [[1, 2, EOS_ID]]  # every row finished: the loop stops
    with pytest.raises(ValueError, match="max_new_tokens"):
        autoregressive_decode(next_logits, torch.tensor([[1]]), 0)
