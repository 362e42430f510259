"""The parts of the LLaMA-style decoder and the sampling functions, each against a reference
nobody here wrote: transformers' Llama modules with copied weights, torch's RMSNorm and
scaled_dot_product_attention(enable_gqa=True), transformers' top-k / top-p logits warpers,
and llama.cpp's Q/K permutation (its converter's code, quoted)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import LlamaConfig as HFLlamaConfig
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper
from transformers.models.llama import modeling_llama as hf_llama

from transformer_tutorial.generation import generate
from transformer_tutorial.layers import SwiGLU
from transformer_tutorial.llama import KVCache, LlamaConfig, LlamaDecoder, unpermute_qk
from transformer_tutorial.multihead import GroupedQueryAttention, repeat_kv
from transformer_tutorial.norms import RMSNorm
from transformer_tutorial.positional import apply_rotary
from transformer_tutorial.sampling import (
    next_token_distribution,
    sample_token,
    top_k_filter,
    top_p_filter,
)

D_MODEL, HEADS, KV_HEADS, D_FF, ROPE_BASE = 48, 6, 2, 80, 100000.0


def hf_config() -> HFLlamaConfig:
    config = HFLlamaConfig(
        hidden_size=D_MODEL, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        intermediate_size=D_FF, rope_theta=ROPE_BASE, rms_norm_eps=1e-5, vocab_size=64,
        num_hidden_layers=2, max_position_embeddings=128,
    )  # fmt: skip
    config._attn_implementation = "eager"
    return config


# -- RMSNorm ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rmsnorm_equals_transformers_and_torch(dtype):
    torch.manual_seed(0)
    ours = RMSNorm(D_MODEL, eps=1e-5).to(dtype)
    with torch.no_grad():
        ours.weight.copy_(torch.randn(D_MODEL))
    hf = hf_llama.LlamaRMSNorm(D_MODEL, eps=1e-5).to(dtype)
    reference = torch.nn.RMSNorm(D_MODEL, eps=1e-5).to(dtype)
    hf.load_state_dict(ours.state_dict())
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 7, D_MODEL, dtype=dtype) * 3
    torch.testing.assert_close(ours(x), hf(x), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)


def test_rmsnorm_gives_unit_root_mean_square_before_the_gain():
    x = torch.randn(3, 5, 16) * 7 + 2
    y = RMSNorm(16, eps=1e-12)(x)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(3, 5))


def test_rmsnorm_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"\(\.\.\., d_model\) = \(\.\.\., 8\)"):
        RMSNorm(8)(torch.zeros(2, 7))
    with pytest.raises(ValueError, match="eps"):
        RMSNorm(8, eps=0)


# -- SwiGLU ----------------------------------------------------------------------------------


def test_swiglu_equals_transformers_llama_mlp():
    torch.manual_seed(1)
    ours = SwiGLU(D_MODEL, D_FF)
    hf = hf_llama.LlamaMLP(hf_config())
    with torch.no_grad():
        hf.gate_proj.weight.copy_(ours.w_gate.weight)
        hf.up_proj.weight.copy_(ours.w_up.weight)
        hf.down_proj.weight.copy_(ours.w_down.weight)
    x = torch.randn(2, 9, D_MODEL)
    torch.testing.assert_close(ours(x), hf(x), atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="d_model"):
        ours(torch.zeros(2, 9, D_MODEL + 1))


# -- grouped-query attention -----------------------------------------------------------------


def make_gqa(seed: int = 2) -> GroupedQueryAttention:
    torch.manual_seed(seed)
    gqa = GroupedQueryAttention(D_MODEL, HEADS, KV_HEADS, ROPE_BASE)
    with torch.no_grad():
        for p in gqa.parameters():
            p.normal_(0, 0.3)
    return gqa


def test_gqa_equals_transformers_llama_attention():
    gqa = make_gqa()
    hf = hf_llama.LlamaAttention(hf_config(), layer_idx=0)
    with torch.no_grad():
        for ours, theirs in [
            (gqa.w_q, hf.q_proj), (gqa.w_k, hf.k_proj), (gqa.w_v, hf.v_proj), (gqa.w_o, hf.o_proj)
        ]:  # fmt: skip
            theirs.weight.copy_(ours.weight)
    seq = 11
    x = torch.randn(2, seq, D_MODEL)
    positions = torch.arange(seq)[None].expand(2, seq)
    cos, sin = hf_llama.LlamaRotaryEmbedding(hf_config())(x, positions)
    causal = torch.full((seq, seq), float("-inf")).triu(1)[None, None].expand(2, 1, seq, seq)
    hf_out, hf_weights = hf(x, position_embeddings=(cos, sin), attention_mask=causal)
    out, weights, (k, v) = gqa(x)
    torch.testing.assert_close(out, hf_out, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weights, hf_weights, atol=1e-6, rtol=1e-4)
    assert weights.shape == (2, HEADS, seq, seq)
    assert k.shape == v.shape == (2, KV_HEADS, seq, D_MODEL // HEADS)


def test_gqa_core_equals_torch_sdpa_with_enable_gqa():
    gqa = make_gqa(3)
    x = torch.randn(1, 8, D_MODEL)
    split = gqa._split
    q = apply_rotary(split(gqa.w_q(x), HEADS), base=ROPE_BASE)
    k = apply_rotary(split(gqa.w_k(x), KV_HEADS), base=ROPE_BASE)
    v = split(gqa.w_v(x), KV_HEADS)
    context = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    expected = gqa.w_o(context.transpose(1, 2).reshape(1, 8, D_MODEL))
    torch.testing.assert_close(gqa(x)[0], expected, atol=1e-5, rtol=1e-4)


def test_repeat_kv_equals_transformers():
    x = torch.randn(2, KV_HEADS, 5, 4)
    torch.testing.assert_close(repeat_kv(x, 3), hf_llama.repeat_kv(x, 3))
    assert torch.equal(repeat_kv(x, 3)[:, 4], x[:, 1])  # query head 4 uses kv head 4 // 3 = 1


def test_gqa_with_cache_equals_one_pass():
    gqa = make_gqa(4)
    x = torch.randn(1, 10, D_MODEL)
    full, full_weights, (k, v) = gqa(x)
    first, _, past = gqa(x[:, :6])
    second, weights, (k2, v2) = gqa(x[:, 6:], past)
    torch.testing.assert_close(torch.cat([first, second], 1), full, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weights, full_weights[:, :, 6:], atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(k2, k)
    assert (full_weights.triu(1) == 0).all()  # causal: nothing attends to the future


def test_gqa_rejects_bad_configuration_and_input():
    with pytest.raises(ValueError, match="multiple of num_kv_heads"):
        GroupedQueryAttention(48, 6, 4)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        GroupedQueryAttention(50, 6, 2)
    gqa = make_gqa()
    with pytest.raises(ValueError, match=r"\(batch, seq, d_model\) = \(batch, seq, 48\)"):
        gqa(torch.zeros(1, 3, 40))
    with pytest.raises(ValueError, match="past keys and values"):
        gqa(torch.zeros(1, 3, 48), (torch.zeros(1, 3, 2, 8), torch.zeros(1, 3, 2, 8)))


# -- llama.cpp's Q/K permutation ---------------------------------------------------------------


def llama_cpp_permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py, LlamaModel.permute (quoted)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


@pytest.mark.parametrize(("heads", "kv_heads", "which"), [(9, 3, "q"), (9, 3, "k"), (4, 4, "q")])
def test_unpermute_undoes_llama_cpp(heads, kv_heads, which):
    rows = (heads if which == "q" else kv_heads) * 8
    w = np.random.default_rng(0).normal(size=(rows, 12))
    stored = llama_cpp_permute(w, heads, heads if which == "q" else kv_heads)
    assert not np.array_equal(stored, w)
    np.testing.assert_array_equal(unpermute_qk(stored, heads if which == "q" else kv_heads), w)


# -- a tiny decoder: cache -----------------------------------------------------------------------


def test_tiny_decoder_cache_equals_full_pass_and_counts_bytes():
    torch.manual_seed(5)
    config = LlamaConfig(64, D_MODEL, 2, HEADS, KV_HEADS, D_FF, 32, ROPE_BASE)
    model = LlamaDecoder(config).eval()
    assert model.lm_head.weight is model.embed.weight  # tied
    ids = torch.randint(0, 64, (1, 9))
    with torch.no_grad():
        full = model(ids)
        a = model(ids[:, :5])
        b = model(ids[:, 5:], a.cache)
    torch.testing.assert_close(torch.cat([a.logits, b.logits], 1), full.logits, atol=1e-5, rtol=0)
    assert isinstance(b.cache, KVCache) and b.cache.length == 9
    assert b.cache.nbytes == 2 * 2 * KV_HEADS * 9 * (D_MODEL // HEADS) * 4
    with pytest.raises(ValueError, match="at most 32 tokens"):
        model(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        model(torch.full((1, 3), 64))


# -- sampling ------------------------------------------------------------------------------------


def logits_1d(seed: int = 0, vocab: int = 50) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=2.0, size=vocab)


def warped_probs(warper, logits: np.ndarray) -> np.ndarray:
    scores = warper(None, torch.tensor(logits[None], dtype=torch.float64))
    return torch.softmax(scores, dim=-1)[0].numpy()


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_top_k_equals_transformers_warper(k):
    logits = logits_1d(k)
    ours = next_token_distribution(logits, top_k=k)
    np.testing.assert_allclose(ours, warped_probs(TopKLogitsWarper(k), logits), atol=1e-12)
    assert (ours > 0).sum() == k


@pytest.mark.parametrize("p", [0.05, 0.3, 0.9, 1.0])
def test_top_p_equals_transformers_warper(p):
    logits = logits_1d(7)
    ours = next_token_distribution(logits, top_p=p)
    np.testing.assert_allclose(ours, warped_probs(TopPLogitsWarper(p), logits), atol=1e-12)


def test_temperature_equals_torch_softmax_and_zero_is_greedy():
    logits = logits_1d(3)
    for t in (0.3, 1.0, 2.5):
        expected = torch.softmax(torch.tensor(logits) / t, dim=-1).numpy()
        np.testing.assert_allclose(next_token_distribution(logits, t), expected, atol=1e-12)
    greedy = next_token_distribution(logits, 0)
    assert greedy[np.argmax(logits)] == 1.0 and greedy.sum() == 1.0


@settings(max_examples=50, deadline=None)
@given(
    st.integers(0, 10_000), st.floats(0.05, 3.0), st.integers(1, 30), st.floats(0.01, 1.0)
)
def test_filters_give_distributions_on_the_most_likely_tokens(seed, temperature, k, p):
    logits = logits_1d(seed, 30)
    probs = next_token_distribution(logits, temperature, top_k=k, top_p=p)
    assert np.isclose(probs.sum(), 1.0) and (probs >= 0).all()
    kept = probs > 0
    assert 1 <= kept.sum() <= k
    # whatever is kept is more likely than whatever is dropped
    assert logits[kept].min() >= logits[~kept].max(initial=-np.inf)
    assert kept[np.argmax(logits)]


def test_top_p_keeps_the_fewest_tokens_reaching_p():
    probs = np.array([0.1, 0.5, 0.25, 0.15])
    np.testing.assert_allclose(top_p_filter(probs, 0.5), [0, 1, 0, 0])
    np.testing.assert_allclose(top_p_filter(probs, 0.6), [0, 0.5, 0.25, 0] / np.float64(0.75))
    np.testing.assert_allclose(top_k_filter(probs, 2), [0, 0.5, 0.25, 0] / np.float64(0.75))


def test_sampling_is_seeded_and_follows_the_distribution():
    probs = np.array([0.2, 0.5, 0.3])
    draws = [sample_token(probs, np.random.default_rng(s)) for s in range(2000)]
    assert draws[:20] == [sample_token(probs, np.random.default_rng(s)) for s in range(20)]
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 2000, probs, atol=0.04)


def test_sampling_rejects_bad_settings():
    with pytest.raises(ValueError, match=r"top_k must be in \[1, 51\)"):
        next_token_distribution(logits_1d(), top_k=51)
    with pytest.raises(ValueError, match=r"p must be a number in \(0, 1\]"):
        next_token_distribution(logits_1d(), top_p=0)
    with pytest.raises(ValueError, match="temperature"):
        next_token_distribution(logits_1d(), temperature=-1)
    with pytest.raises(ValueError, match="sum to 1"):
        top_k_filter(np.array([0.5, 0.2]), 1)


def test_generate_decodes_on_one_thread_and_restores_the_setting():
    torch.manual_seed(6)
    model = LlamaDecoder(LlamaConfig(64, D_MODEL, 1, HEADS, KV_HEADS, D_FF, 32, ROPE_BASE)).eval()
    seen = []
    model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    result = generate(model, [1, 2, 3], max_new_tokens=4)
    assert len(result.new_ids) == 4 and result.stop_reason == "max_new_tokens"
    assert seen == [1, 1, 1, 1]
    assert torch.get_num_threads() == before
