"""MultiHeadAttention against torch.nn.MultiheadAttention and the numpy foundation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from transformer_tutorial import multihead as mh
from transformer_tutorial.attention import scaled_dot_product_attention
from transformer_tutorial.multihead import MultiHeadAttention

D_MODEL, HEADS = 16, 4
ATOL = 1e-5


def _pair(bias: bool = True, seed: int = 0) -> tuple[MultiHeadAttention, nn.MultiheadAttention]:
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(D_MODEL, HEADS, bias=bias, batch_first=True).eval()
    with torch.no_grad():  # torch zero-initialises the biases: make them matter
        if bias:
            ref.in_proj_bias.normal_()
            ref.out_proj.bias.normal_()
    ours = MultiHeadAttention(D_MODEL, HEADS, bias=bias).load_from_torch(ref)
    return ours, ref


def _ref(ref: nn.MultiheadAttention, q, k, v, key_padding_mask=None, attn_mask=None):
    """torch's result; our masks are True = may attend, torch's boolean masks True = blocked."""
    return ref(
        q,
        k,
        v,
        key_padding_mask=None if key_padding_mask is None else ~key_padding_mask,
        attn_mask=None if attn_mask is None else ~attn_mask,
        need_weights=True,
        average_attn_weights=False,
    )


@pytest.fixture
def inputs():
    torch.manual_seed(1)
    x = torch.randn(3, 5, D_MODEL)
    memory = torch.randn(3, 7, D_MODEL)
    return x, memory


PAD5 = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
PAD7 = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4], dtype=torch.bool)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("mask_kind", [None, "causal", "causal_flag", "random"])
def test_self_attention_equals_torch(inputs, bias, padding, mask_kind):
    x, _ = inputs
    ours, ref = _pair(bias)
    kpm = PAD5 if padding else None
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    if mask_kind == "random":
        torch.manual_seed(2)
        attn_mask = torch.rand(5, 5) > 0.4
        attn_mask[:, 0] = True  # every query keeps at least one key (torch gives NaN otherwise)
    else:
        attn_mask = causal if mask_kind in ("causal", "causal_flag") else None
    if mask_kind == "causal_flag":
        out, weights = ours(x, key_padding_mask=kpm, causal=True)
    else:
        out, weights = ours(x, mask=attn_mask, key_padding_mask=kpm)
    ref_out, ref_weights = _ref(ref, x, x, x, kpm, attn_mask)
    assert out.shape == (3, 5, D_MODEL)
    assert weights.shape == (3, HEADS, 5, 5)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=ATOL, rtol=0)
    if kpm is not None:  # the padded keys really got no weight
        assert weights[2, :, :, 2:].abs().max() == 0


@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_cross_attention_equals_torch(inputs, padding, with_mask):
    x, memory = inputs
    ours, ref = _pair()
    kpm = PAD7 if padding else None
    attn_mask = None
    if with_mask:
        torch.manual_seed(3)
        attn_mask = torch.rand(5, 7) > 0.5
        attn_mask[:, 0] = True
    out, weights = ours(x, memory, memory, mask=attn_mask, key_padding_mask=kpm)
    ref_out, ref_weights = _ref(ref, x, memory, memory, kpm, attn_mask)
    assert weights.shape == (3, HEADS, 5, 7)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=ATOL, rtol=0)


def test_distinct_key_and_value_and_batched_masks_equal_torch(inputs):
    x, memory = inputs
    ours, ref = _pair(seed=4)
    torch.manual_seed(5)
    value = torch.randn(3, 7, D_MODEL)
    mask3 = torch.rand(3, 5, 7) > 0.5
    mask3[..., 0] = True
    out, weights = ours(x, memory, value, mask=mask3)
    # torch wants a 3-D mask as (batch * heads, q_len, k_len)
    ref_out, ref_weights = ref(
        x, memory, value, attn_mask=~mask3.repeat_interleave(HEADS, 0), average_attn_weights=False
    )
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=ATOL, rtol=0)
    # the same mask given per head gives the same result
    out4, _ = ours(x, memory, value, mask=mask3[:, None].expand(3, HEADS, 5, 7))
    torch.testing.assert_close(out4, out, atol=0, rtol=0)


def test_from_torch_and_separate_projection_weights(inputs):
    x, memory = inputs
    torch.manual_seed(6)
    # kdim/vdim given explicitly makes torch keep q/k/v projections apart
    ref = nn.MultiheadAttention(D_MODEL, HEADS, batch_first=True, kdim=D_MODEL, vdim=D_MODEL)
    ref._qkv_same_embed_dim = False
    ref.q_proj_weight = nn.Parameter(torch.randn(D_MODEL, D_MODEL) / 4)
    ref.k_proj_weight = nn.Parameter(torch.randn(D_MODEL, D_MODEL) / 4)
    ref.v_proj_weight = nn.Parameter(torch.randn(D_MODEL, D_MODEL) / 4)
    ref.in_proj_weight = None
    ours = MultiHeadAttention.from_torch(ref.eval())
    out, weights = ours(x, memory)
    ref_out, ref_weights = ref(x, memory, memory, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=ATOL, rtol=0)


def test_per_head_path_equals_numpy_foundation(inputs):
    x, memory = inputs
    ours, _ = _pair()
    ours = ours.double()
    x, memory = x.double(), memory.double()
    mask = (torch.rand(5, 7, generator=torch.Generator().manual_seed(7)) > 0.3) & PAD7[:, None, :]
    mask[2, 4] = False  # one query of sentence 2 may attend nothing
    out, weights = ours(x, memory, mask=mask)

    with torch.no_grad():
        q = ours.split_heads(ours.w_q(x)).numpy()
        k = ours.split_heads(ours.w_k(memory)).numpy()
        v = ours.split_heads(ours.w_v(memory)).numpy()
    context, np_weights = scaled_dot_product_attention(q, k, v, mask.numpy()[:, None])
    np.testing.assert_allclose(weights.detach().numpy(), np_weights, atol=1e-12, rtol=0)
    with torch.no_grad():
        expected = ours.w_o(ours.merge_heads(torch.from_numpy(context)))
    np.testing.assert_allclose(out.detach().numpy(), expected.numpy(), atol=1e-12, rtol=0)
    # and a fully masked query row gives zeros, in both implementations
    assert np.all(np_weights[2, :, 4] == 0)
    assert weights[2, :, 4].abs().max() == 0


def test_split_and_merge_heads_are_inverse_and_slice_features():
    mha = MultiHeadAttention(D_MODEL, HEADS)
    x = torch.arange(2 * 3 * D_MODEL, dtype=torch.float32).reshape(2, 3, D_MODEL)
    heads = mha.split_heads(x)
    assert heads.shape == (2, HEADS, 3, D_MODEL // HEADS)
    # head h holds features h*d_head ... (h+1)*d_head - 1
    torch.testing.assert_close(heads[1, 2, 0], x[1, 0, 8:12])
    torch.testing.assert_close(mha.merge_heads(heads), x)


def test_fully_masked_rows_give_zeros_not_nan():
    torch.manual_seed(8)
    mha = MultiHeadAttention(D_MODEL, HEADS)
    x = torch.randn(2, 4, D_MODEL, requires_grad=True)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[1] = False  # query 1 may attend nothing
    out, weights = mha(x, mask=mask)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert weights[:, :, 1].abs().max() == 0
    # its output is the output bias alone (zero context vector)
    torch.testing.assert_close(out[:, 1].detach(), mha.w_o.bias.detach().expand(2, D_MODEL))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    # other rows still sum to one
    torch.testing.assert_close(weights[:, :, [0, 2, 3]].sum(-1), torch.ones(2, HEADS, 3))


def test_numpy_inputs_are_accepted():
    torch.manual_seed(9)
    mha = MultiHeadAttention(8, 2)
    x = np.random.default_rng(0).normal(size=(1, 3, 8))
    out, weights = mha(x)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 8)
    torch.testing.assert_close(out, mha(torch.tensor(x, dtype=torch.float32))[0])


# --- shape and argument errors ------------------------------------------------------------


def test_heads_must_divide_d_model():
    with pytest.raises(ValueError, match=r"d_model must be divisible by num_heads.*d_model=10"):
        MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="num_heads must be a positive integer"):
        MultiHeadAttention(8, 0)


def test_wrong_d_model_names_expected_shape():
    mha = MultiHeadAttention(D_MODEL, HEADS)
    shape = r"query must be a tensor of shape \(batch, q_len, d_model\)"
    with pytest.raises(ValueError, match=shape + ".*16"):
        mha(torch.randn(2, 5, 12))
    with pytest.raises(ValueError, match=shape):
        mha(torch.randn(5, D_MODEL))
    with pytest.raises(ValueError, match=r"key must be a tensor of shape \(batch, k_len, d_"):
        mha(torch.randn(2, 5, D_MODEL), torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="must share batch"):
        mha(torch.randn(2, 5, D_MODEL), torch.randn(3, 5, D_MODEL))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, seq, d_model\)"):
        mha.split_heads(torch.randn(2, 5, 12))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, heads, seq, d_head\)"):
        mha.merge_heads(torch.randn(2, 3, 5, 4))


def test_wrong_masks_name_expected_shape():
    mha = MultiHeadAttention(D_MODEL, HEADS)
    x = torch.randn(2, 5, D_MODEL)
    with pytest.raises(ValueError, match=r"mask must have shape \(q_len, k_len\) = \(5, 5\)"):
        mha(x, mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(batch, k_len\)"):
        mha(x, key_padding_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="must be boolean"):
        mha(x, mask=torch.zeros(5, 5))


def test_load_from_torch_checks_sizes():
    with pytest.raises(ValueError, match="embed_dim=16, num_heads=4"):
        MultiHeadAttention(16, 2).load_from_torch(nn.MultiheadAttention(16, 4))
    with pytest.raises(ValueError, match="expected a torch.nn.MultiheadAttention"):
        MultiHeadAttention(16, 2).load_from_torch(nn.Linear(16, 16))


@pytest.mark.parametrize("masked", [False, True])
def test_attention_core_equals_torch_sdpa_both_ways(masked):
    """The one torch core, explicit (weights returned) and fused, against torch's kernel."""
    g = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    allowed = torch.rand(2, 1, 5, 5, generator=g) > 0.4 if masked else None
    if masked:
        allowed[..., 0] = True  # torch's kernel gives NaN for a row with no key
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    context, weights = mh.scaled_dot_product_attention(q, k, v, allowed)
    fused, none = mh.scaled_dot_product_attention(q, k, v, allowed, need_weights=False)
    assert none is None and weights.shape == (2, 3, 5, 5)
    torch.testing.assert_close(context, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(fused, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(weights @ v, expected, atol=1e-6, rtol=0)


def test_attention_core_fully_masked_rows_are_zero_in_both_paths():
    q, k, v = (torch.randn(1, 2, 3, 4, generator=torch.Generator().manual_seed(s))
               for s in range(3))  # fmt: skip
    allowed = torch.tensor([[True, True, False], [False, False, False], [True, False, True]])
    for need_weights in (True, False):
        context, _ = mh.scaled_dot_product_attention(q, k, v, allowed, need_weights)
        assert torch.isfinite(context).all()
        assert context[:, :, 1].abs().max() == 0
        expected = torch.nn.functional.scaled_dot_product_attention(
            q[:, :, ::2], k, v, attn_mask=allowed[::2]
        )
        torch.testing.assert_close(context[:, :, ::2], expected, atol=1e-6, rtol=0)


def test_attention_core_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"q must be a float tensor \(batch, heads, seq, d_head\)"):
        mh.scaled_dot_product_attention(torch.zeros(2, 3, 4), torch.zeros(1, 2, 3, 4),
                                        torch.zeros(1, 2, 3, 4))  # fmt: skip
    with pytest.raises(ValueError, match="share"):
        mh.scaled_dot_product_attention(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 5),
                                        torch.zeros(1, 2, 3, 4))  # fmt: skip


def test_need_weights_false_is_torch_fused_path_and_equals_torch(inputs):
    x, _ = inputs
    ours, ref = _pair()
    out, weights = ours(x, key_padding_mask=PAD5, causal=True, need_weights=False)
    ref_out, _ = _ref(ref, x, x, x, PAD5, torch.ones(5, 5, dtype=torch.bool).tril())
    assert weights is None
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)


def test_causal_is_for_self_attention_only(inputs):
    x, memory = inputs
    with pytest.raises(ValueError, match="q_len == k_len"):
        _pair()[0](x, memory, memory, causal=True)
