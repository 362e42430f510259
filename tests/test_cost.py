"""Everything in cost.py that is not a timing: formulas, fits, the cheaper attentions, figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from transformer_tutorial.cost import (
    MODEL_DIMS,
    ModelDims,
    attention_flops,
    attention_matrix_bytes,
    best_seconds,
    compare_numpy_attentions,
    fit_power_law,
    fit_quadratic,
    fused_multihead_attention,
    kv_cache_bytes,
    linear_attention,
    local_attention,
    numpy_peak_bytes,
    sample_seconds,
    single_threaded,
    time_attention,
)
from transformer_tutorial.multihead import MultiHeadAttention


def test_attention_flops_counts_both_matrix_products():
    # n = 2, d = 3: QK^T is 2*2*3 multiply-adds, the weighted sum as many: 2 * 2 * 12 flops
    assert attention_flops(2, 3) == 48
    assert attention_flops(2048, 64) == 4 * attention_flops(1024, 64)
    with pytest.raises(ValueError, match="seq_len must be a positive integer"):
        attention_flops(0, 64)


def test_attention_matrix_bytes():
    assert attention_matrix_bytes(1024, heads=4, batch=2) == 2 * 4 * 1024 * 1024 * 4
    assert attention_matrix_bytes(3, bytes_per_value=2) == 18


def test_kv_cache_bytes_matches_published_and_allocated_sizes():
    from transformer_tutorial.llama import KVCache

    smol = MODEL_DIMS["SmolLM2-135M (GQA)"]
    # 2 x 30 layers x 3 kv heads x 64 numbers per token = 11,520 numbers = 45 KiB in float32
    assert kv_cache_bytes(smol, 1, bytes_per_value=4) == 45 * 1024
    # Llama-2-7B: the often-quoted 0.5 MiB per token in float16
    assert kv_cache_bytes(MODEL_DIMS["Llama-2-7B"], 1) == 2**19
    # the size of a cache actually allocated the way the SmolLM2 decoder holds it
    layers = tuple((torch.zeros(2, 3, 10, 64), torch.zeros(2, 3, 10, 64)) for _ in range(30))
    assert KVCache(layers).nbytes == kv_cache_bytes(smol, 10, batch=2, bytes_per_value=4)
    # grouped-query attention: 9 query heads share 3 key/value heads, a 3x smaller cache
    mha = ModelDims(30, 9, 9, 64)
    assert kv_cache_bytes(mha, 100) == 3 * kv_cache_bytes(smol, 100)
    with pytest.raises(ValueError, match="ModelDims"):
        kv_cache_bytes((30, 9, 3, 64), 10)


@settings(max_examples=30, deadline=None)
@given(
    c=st.floats(1e-6, 1e3),
    k=st.floats(0.5, 3.0),
    lengths=st.lists(st.integers(8, 5000), min_size=3, max_size=6, unique=True),
)
def test_fit_power_law_recovers_exact_curves(c, k, lengths):
    n = np.array(lengths, dtype=float)
    c_fit, k_fit = fit_power_law(n, c * n**k)
    assert k_fit == pytest.approx(k, abs=1e-6)
    assert c_fit == pytest.approx(c, rel=1e-5)


def test_fit_quadratic_recovers_coefficients():
    n = np.array([128, 256, 512, 1024, 2048], dtype=float)
    a, b, c = 3e-8, 2e-6, 5e-4
    np.testing.assert_allclose(fit_quadratic(n, a * n**2 + b * n + c), [a, b, c], rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fit_power_law([1, 2], [1.0]), r"same shape \(k,\) with k >= 2"),
        (lambda: fit_power_law([1, 2], [1.0, -1.0]), "values > 0"),
        (lambda: fit_quadratic([1, 2], [1.0, 2.0]), "k >= 3"),
        (lambda: fit_quadratic([1, 2, 3], [1.0, np.nan, 2.0]), "finite"),
    ],
)
def test_fits_reject_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_fused_attention_equals_ours_and_torch():
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_bias.normal_()
        ours = MultiHeadAttention.from_torch(ref)
        x = torch.randn(2, 9, 32)
        fused = fused_multihead_attention(ours, x)
        torch.testing.assert_close(fused, ours(x)[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(fused, ref(x, x, x, need_weights=False)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("n", "window"), [(10, 3), (12, 4), (5, 8), (1, 1)])
def test_local_attention_equals_torch_with_the_band_mask(n, window):
    rng = np.random.default_rng(n)
    q, k, v = (rng.standard_normal((n, 6)) for _ in range(3))
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    band = torch.from_numpy((j <= i) & (j > i - window))
    expected = F.scaled_dot_product_attention(
        *(torch.from_numpy(a) for a in (q, k, v)), attn_mask=band
    )
    np.testing.assert_allclose(local_attention(q, k, v, window), expected.numpy(), atol=1e-10)


def test_linear_attention_equals_its_quadratic_form():
    rng = np.random.default_rng(0)
    q, k, v = (torch.from_numpy(rng.standard_normal((7, 5))) for _ in range(3))
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    similarity = phi_q @ phi_k.T  # (n, n): what linear attention never builds
    expected = (similarity @ v) / similarity.sum(-1, keepdim=True)
    np.testing.assert_allclose(
        linear_attention(q.numpy(), k.numpy(), v.numpy()), expected.numpy(), atol=1e-10
    )


def test_cheaper_attentions_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"\(n, d_k\)"):
        linear_attention(np.ones((3, 2)), np.ones((4, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="window must be a positive integer"):
        local_attention(np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2)), 0)


def test_numpy_peak_bytes_sees_a_numpy_allocation():
    peak = numpy_peak_bytes(lambda: np.ones(1_000_000))
    assert 8_000_000 <= peak < 8_100_000


def test_sample_seconds_discards_the_warmup():
    calls = []
    ticks = iter(range(100))
    times = sample_seconds(lambda: calls.append(1), repeats=3, warmup=2,
                           clock=lambda: float(next(ticks)))
    assert len(calls) == 5
    np.testing.assert_array_equal(times, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="repeats"):
        sample_seconds(lambda: None, repeats=0)


def test_best_seconds_calls_warmup_plus_repeats():
    calls = []
    seconds = best_seconds(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and 0 <= seconds < 0.1


def test_time_attention_structure_and_thread_count():
    before = torch.get_num_threads()
    timings = time_attention(lengths=(8, 16), d_model=16, num_heads=2, repeats=1)
    assert torch.get_num_threads() == before
    assert timings.lengths == (8, 16) and len(timings.seconds) == 3
    assert all(len(v) == 2 and min(v) > 0 for v in timings.seconds.values())
    names = list(timings.seconds)
    assert len(timings.ratios(names[0], names[2])) == 2
    assert timings.milliseconds()[names[1]][0] == pytest.approx(1e3 * timings.seconds[names[1]][0])


def test_compare_numpy_attentions_memory_grows_quadratically_only_for_full_attention():
    costs = compare_numpy_attentions(lengths=(256, 512, 1024), d_k=16, window=64, repeats=1)
    full, local, linear = costs.peak_bytes.values()
    assert len(costs.seconds) == 3 and all(len(v) == 3 for v in costs.seconds.values())
    # memory is deterministic: the full attention's peak holds several (n, n) float32 arrays
    assert full[2] >= attention_matrix_bytes(1024) and fit_power_law(costs.lengths, full)[1] > 1.8
    assert fit_power_law(costs.lengths, local)[1] < 1.2
    assert fit_power_law(costs.lengths, linear)[1] < 1.2


def test_single_threaded_restores_torch_and_blas_threads():
    from transformer_tutorial.cost import _blas_thread_functions, _openblas

    blas = _blas_thread_functions(_openblas())
    before = (torch.get_num_threads(), blas[0]() if blas else None)
    with single_threaded():
        assert torch.get_num_threads() == 1
        if blas:
            assert blas[0]() == 1
    assert (torch.get_num_threads(), blas[0]() if blas else None) == before
