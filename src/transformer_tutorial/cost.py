"""What attention costs: timings, memory, fitted growth curves and the KV cache (chapter 10).

Self-attention over :math:`n` tokens scores every pair of positions, so it does
:math:`4 n^2 d` floating-point operations per layer (:func:`attention_flops`) and a plain
implementation keeps the :math:`n \\times n` weight matrix in memory
(:func:`attention_matrix_bytes`). This module measures that on the reader's machine —
:func:`time_attention` and :func:`numpy_peak_bytes` — and fits the measurements
(:func:`fit_power_law`, :func:`fit_quadratic`). It also holds the two cheaper attentions the
chapter times: :func:`local_attention` (each query sees a window of ``window`` keys, as in
sparse attention) and :func:`linear_attention` (kernelized, :math:`O(n d^2)`).

Timings depend on the machine; everything else here is exact and tested. To make them depend
as little as possible on what else the machine is doing, they are taken on one thread
(:func:`single_threaded`) and measure that thread's CPU time (:func:`best_seconds`): waiting
for the CPU while other programs run is not counted.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import inspect
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from transformer_tutorial import checks
from transformer_tutorial.attention import scaled_dot_product_attention, softmax
from transformer_tutorial.checks import as_float_array
from transformer_tutorial.multihead import MultiHeadAttention

__all__ = [
    "attention_flops",
    "attention_matrix_bytes",
    "ModelDims",
    "MODEL_DIMS",
    "kv_cache_bytes",
    "fit_power_law",
    "fit_quadratic",
    "best_seconds",
    "sample_seconds",
    "MAX_REPEATS",
    "single_threaded",
    "fused_multihead_attention",
    "AttentionTimings",
    "time_attention",
    "numpy_peak_bytes",
    "process_peak_bytes",
    "local_attention",
    "linear_attention",
    "NumpyCosts",
    "compare_numpy_attentions",
]


def attention_flops(seq_len: int, d_model: int) -> int:
    """Floating-point operations of the attention core for one layer and one sequence:
    :math:`QK^\\top` (:math:`n \\cdot n \\cdot d` multiply-adds) and the weighted sum of the
    values (as many again), :math:`2 \\times 2 n^2 d = 4 n^2 d`. The projections
    (:math:`8 n d^2`) are not included."""
    n, d = checks.positive_int(seq_len, "seq_len"), checks.positive_int(d_model, "d_model")
    return 4 * n * n * d


def attention_matrix_bytes(
    seq_len: int, heads: int = 1, batch: int = 1, bytes_per_value: int = 4
) -> int:
    """Memory of the attention weights ``(batch, heads, n, n)``:
    :math:`batch \\cdot heads \\cdot n^2 \\cdot bytes`."""
    n = checks.positive_int(seq_len, "seq_len")
    return (checks.positive_int(batch, "batch") * checks.positive_int(heads, "heads") * n * n
            * checks.positive_int(bytes_per_value, "bytes_per_value"))


@dataclass(frozen=True)
class ModelDims:
    """The sizes that decide a decoder's KV cache."""

    num_layers: int
    num_heads: int
    num_kv_heads: int
    d_head: int


# Published configurations (Hugging Face config.json of each model).
MODEL_DIMS: dict[str, ModelDims] = {
    # HuggingFaceTB/SmolLM2-135M: 30 layers, 9 query heads, 3 key/value heads, hidden 576
    "SmolLM2-135M (GQA)": ModelDims(30, 9, 3, 64),
    # meta-llama/Llama-2-7b-hf: 32 layers, 32 heads (no GQA), hidden 4096
    "Llama-2-7B": ModelDims(32, 32, 32, 128),
    # meta-llama/Meta-Llama-3-8B: 32 layers, 32 query heads, 8 key/value heads, hidden 4096
    "Llama-3-8B (GQA)": ModelDims(32, 32, 8, 128),
}


def kv_cache_bytes(
    dims: ModelDims, seq_len: int, batch: int = 1, bytes_per_value: int = 2
) -> int:
    """Memory of the KV cache after ``seq_len`` tokens:
    :math:`2 \\cdot layers \\cdot kv\\_heads \\cdot d_{head} \\cdot n \\cdot batch \\cdot bytes`
    (keys and values; 2 bytes per number in float16/bfloat16). It grows linearly with
    :math:`n`; grouped-query attention divides it by :math:`heads / kv\\_heads`."""
    if not isinstance(dims, ModelDims):
        raise ValueError(f"dims must be a ModelDims, got {type(dims).__name__}")
    n = checks.positive_int(seq_len, "seq_len")
    per_token = 2 * dims.num_layers * dims.num_kv_heads * dims.d_head
    return per_token * n * checks.positive_int(batch, "batch") * checks.positive_int(
        bytes_per_value, "bytes_per_value"
    )


def _check_curve(lengths: object, values: object, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    n = as_float_array(lengths, "lengths")
    y = as_float_array(values, "values")
    if n.ndim != 1 or n.shape != y.shape or n.size < minimum:
        raise ValueError(
            f"lengths and values must have the same shape (k,) with k >= {minimum}, got "
            f"{n.shape} and {y.shape}"
        )
    if not (np.isfinite(n).all() and np.isfinite(y).all()):
        raise ValueError("lengths and values must be finite")
    return n, y


def fit_power_law(lengths: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """``(c, k)`` of the least-squares fit :math:`\\log y = \\log c + k \\log n`, i.e.
    :math:`y \\approx c\\, n^k`: :math:`k = 2` is quadratic growth (doubling :math:`n`
    multiplies :math:`y` by 4), :math:`k = 1` linear."""
    n, y = _check_curve(lengths, values, 2)
    if (n <= 0).any() or (y <= 0).any():
        raise ValueError("a power law needs lengths > 0 and values > 0")
    k, log_c = np.polyfit(np.log(n), np.log(y), 1)
    return float(np.exp(log_c)), float(k)


def fit_quadratic(lengths: Sequence[float], values: Sequence[float]) -> np.ndarray:
    """Coefficients ``(a, b, c)`` of the least-squares fit :math:`y \\approx a n^2 + b n + c`,
    with relative errors weighted equally (each point divided by its value), so that the small
    lengths count as much as the large ones."""
    n, y = _check_curve(lengths, values, 3)
    if (y <= 0).any():
        raise ValueError("values must be > 0 (times or bytes)")
    design = np.stack([n**2, n, np.ones_like(n)], axis=1) / y[:, None]
    coefficients, *_ = np.linalg.lstsq(design, np.ones_like(y), rcond=None)
    return coefficients


def _lengths(lengths: object) -> tuple[int, ...]:
    return tuple(checks.positive_int(n, "lengths") for n in checks.int_sequence(lengths, "lengths"))


# Limits of the timing helpers: more repeats than a benchmark needs is a mistake, not a wish.
MAX_REPEATS = 1000


def sample_seconds(
    fn: Callable[[], object],
    repeats: int = 5,
    warmup: int = 1,
    clock: Callable[[], float] = time.thread_time,
) -> np.ndarray:
    """The times of ``repeats`` calls of ``fn()`` ``(repeats,)``, in seconds, after
    ``warmup`` calls whose times are discarded (first calls pay for allocation and caches).
    ``clock``: the calling thread's CPU time by default (see :func:`best_seconds`). At most
    :data:`MAX_REPEATS` repeats and
    warm-up calls; an exception of ``fn`` or ``clock`` comes back as a ``ValueError`` naming
    it."""
    _check_callable(fn, "fn")
    _check_callable(clock, "clock")
    repeats = checks.int_in_range(repeats, "repeats", 1, MAX_REPEATS)
    warmup = checks.int_in_range(warmup, "warmup", 0, MAX_REPEATS)
    with checks.argument_errors("clock", Exception):
        checks.finite_number(clock(), "clock()")
    times = np.empty(repeats)
    with checks.argument_errors("fn", Exception):  # outside the loop: nothing added to the times
        for _ in range(warmup):
            fn()
        for r in range(repeats):
            start = clock()
            fn()
            times[r] = clock() - start
    if not np.isfinite(times).all():
        raise ValueError("clock returned times that are not finite numbers")
    return times


def best_seconds(
    fn: Callable[[], object],
    repeats: int = 5,
    warmup: int = 1,
    clock: Callable[[], float] = time.thread_time,
) -> float:
    """Shortest time of ``fn()`` over ``repeats`` calls, after ``warmup`` calls
    (:func:`sample_seconds`).

    ``clock`` defaults to the CPU time of the calling thread (``time.thread_time``): with one
    thread doing the work (:func:`single_threaded`), that is the cost of the computation,
    without the time spent waiting while other programs use the CPU. Pass
    ``time.perf_counter`` for wall-clock time. The minimum, not the mean: interference only
    ever adds time (the advice of Python's ``timeit``)."""
    return float(sample_seconds(fn, repeats, warmup, clock).min())


@functools.cache
def _openblas() -> ctypes.CDLL | None:
    """numpy's OpenBLAS library, if this process has loaded one (numpy loads it on import,
    so it is looked up once: reading the memory map costs milliseconds)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        with contextlib.suppress(OSError):
            return ctypes.CDLL(path)
    return None


def _blas_thread_functions(lib: ctypes.CDLL | None):
    for getter, setter in (
        ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
        ("openblas_get_num_threads", "openblas_set_num_threads"),
    ):
        if lib is not None and hasattr(lib, getter) and hasattr(lib, setter):
            return getattr(lib, getter), getattr(lib, setter)
    return None


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with torch and numpy's OpenBLAS on one thread; restore them after.

    For timing: on a shared or busy machine, extra threads mostly wait for each other. If
    numpy uses another BLAS, its threads are left as they are."""
    torch_threads = torch.get_num_threads()
    blas = _blas_thread_functions(_openblas())
    blas_threads = blas[0]() if blas else None
    torch.set_num_threads(1)
    if blas:
        blas[1](1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        if blas:
            blas[1](blas_threads)


def fused_multihead_attention(mha: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """The self-attention of ``mha`` on ``x`` ``(batch, seq, d_model)`` with the same
    projections but torch's fused ``scaled_dot_product_attention`` as the core (it never
    returns, and on CPU never stores whole, the ``(n, n)`` weights): ``mha(x,
    need_weights=False)``. Equals ``mha(x)[0]``."""
    checks.instance_of(mha, "mha", MultiHeadAttention)
    return mha(mha._check_input(x, "x", "seq"), need_weights=False)[0]


@dataclass(frozen=True)
class AttentionTimings:
    """Best seconds per call, one list per implementation, one entry per length."""

    lengths: tuple[int, ...]
    seconds: dict[str, list[float]]
    d_model: int
    num_heads: int

    def milliseconds(self) -> dict[str, list[float]]:
        return {name: [1e3 * s for s in values] for name, values in self.seconds.items()}

    def ratios(self, slower: str, faster: str) -> list[float]:
        """``seconds[slower] / seconds[faster]`` per length."""
        return [a / b for a, b in zip(self.seconds[slower], self.seconds[faster], strict=True)]


NUMPY_SDPA = "numpy scaled_dot_product_attention (1 head)"
OURS_MHA = "our MultiHeadAttention (torch)"
FUSED = "torch fused scaled_dot_product_attention"


@torch.no_grad()
def time_attention(
    lengths: Sequence[int] = (128, 256, 512, 1024, 2048),
    d_model: int = 64,
    num_heads: int = 4,
    repeats: int = 5,
    seed: int = 0,
) -> AttentionTimings:
    """Time self-attention over ``n`` tokens for each ``n`` in ``lengths`` with three
    implementations: the numpy :func:`~transformer_tutorial.attention.scaled_dot_product_attention`
    (one head of width ``d_model``, float32), our :class:`MultiHeadAttention` (which also
    returns the weights) and :func:`fused_multihead_attention` (same projections, torch's fused
    kernel). Inputs are seeded; the times (:func:`best_seconds`, on one thread) are whatever
    this machine measures."""
    lengths = _lengths(lengths)
    with single_threaded():
        return _time_attention(lengths, d_model, num_heads, repeats, seed)


def _time_attention(
    lengths: Sequence[int], d_model: int, num_heads: int, repeats: int, seed: int
) -> AttentionTimings:
    lengths = tuple(checks.positive_int(n, "length") for n in lengths)
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mha = MultiHeadAttention(d_model, num_heads).eval()
    seconds: dict[str, list[float]] = {NUMPY_SDPA: [], OURS_MHA: [], FUSED: []}
    for n in lengths:
        q, k, v = (rng.standard_normal((n, d_model)).astype(np.float32) for _ in range(3))
        x = torch.from_numpy(rng.standard_normal((1, n, d_model)).astype(np.float32))
        seconds[NUMPY_SDPA].append(
            best_seconds(lambda q=q, k=k, v=v: scaled_dot_product_attention(q, k, v), repeats)
        )
        seconds[OURS_MHA].append(best_seconds(lambda x=x: mha(x), repeats))
        seconds[FUSED].append(best_seconds(lambda x=x: fused_multihead_attention(mha, x),
                                             repeats))
    return AttentionTimings(lengths, seconds, d_model, num_heads)


def _check_callable(fn: object, name: str) -> None:
    if not callable(fn):
        raise ValueError(f"{name} must be a function taking no arguments, got {fn!r}")
    try:
        signature = inspect.signature(fn.forward if isinstance(fn, torch.nn.Module) else fn)
    except (TypeError, ValueError):
        return  # a builtin without a signature (time.thread_time): trust it
    try:
        signature.bind()
    except TypeError:
        raise ValueError(f"{name} must be a function taking no arguments, got {fn!r}") from None


def _status_bytes(field: str) -> int:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field} line")


def process_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak resident memory of this whole process while running ``fn()``, above what it held
    just before, in bytes: everything torch, numpy and Python allocated, counted by the
    kernel. Linux only: the peak (``VmHWM``) is reset through ``/proc/self/clear_refs``."""
    _check_callable(fn, "fn")
    gc.collect()
    clear_refs = Path("/proc/self/clear_refs")
    if not clear_refs.exists():
        raise RuntimeError("process_peak_bytes needs Linux's /proc/self/clear_refs")
    clear_refs.write_text("5")  # reset the high-water mark to the current resident size
    before = _status_bytes("VmRSS")
    fn()
    return max(0, _status_bytes("VmHWM") - before)


def numpy_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak memory that numpy (and Python) allocated while running ``fn()``, in bytes,
    measured with :mod:`tracemalloc` (numpy reports its array buffers to it)."""
    _check_callable(fn, "fn")
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return int(peak - before)


def _check_qkv(q: object, k: object, v: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q, k, v = (as_float_array(a, name) for a, name in ((q, "q"), (k, "k"), (v, "v")))
    if q.ndim != 2 or k.ndim != 2 or v.ndim != 2 or q.shape != k.shape or v.shape[0] != k.shape[0]:
        raise ValueError(
            f"q and k must have shape (n, d_k) and v (n, d_v), got {q.shape}, {k.shape}, "
            f"{v.shape}"
        )
    return q, k, v


def local_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, window: int) -> np.ndarray:
    """Causal sliding-window attention: query :math:`i` attends keys
    :math:`i - window < j \\le i` only (as in sparse/local attention, e.g. Longformer,
    Mistral), computed block by block so that time and memory grow like :math:`n \\cdot window`
    instead of :math:`n^2`. ``q``, ``k``: ``(n, d_k)``; ``v``: ``(n, d_v)``; returns the
    context vectors ``(n, d_v)``, equal to full attention with the band mask."""
    q, k, v = _check_qkv(q, k, v)
    window = checks.positive_int(window, "window")
    n = q.shape[0]
    out = np.empty((n, v.shape[1]), dtype=np.result_type(q, v))
    for start in range(0, n, window):  # queries start..stop-1 see keys start-window+1..stop-1
        stop = min(start + window, n)
        lo = max(start - window + 1, 0)
        scores = q[start:stop] @ k[lo:stop].T / np.sqrt(q.shape[1])
        i = np.arange(start, stop)[:, None]
        j = np.arange(lo, stop)[None, :]
        scores = np.where((j <= i) & (j > i - window), scores, -np.inf)
        out[start:stop] = softmax(scores) @ v[lo:stop]
    return out


def linear_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Non-causal linear attention (Katharopoulos et al. 2020) with the feature map
    :math:`\\phi(x) = \\mathrm{elu}(x) + 1`:
    :math:`\\mathrm{out}_i = \\phi(q_i)^\\top (\\sum_j \\phi(k_j) v_j^\\top) /
    \\phi(q_i)^\\top \\sum_j \\phi(k_j)`. Computing :math:`\\sum_j \\phi(k_j) v_j^\\top` first
    (a ``(d_k, d_v)`` matrix) costs :math:`O(n\\, d_k d_v)`: no :math:`n \\times n` matrix.
    It is a different model, not an approximation of softmax attention."""
    q, k, v = _check_qkv(q, k, v)

    def phi(x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))

    fq, fk = phi(q), phi(k)
    kv = fk.T @ v  # (d_k, d_v)
    return (fq @ kv) / (fq @ fk.sum(axis=0))[:, None]


@dataclass(frozen=True)
class NumpyCosts:
    """Time (best seconds) and peak memory (bytes, :func:`numpy_peak_bytes`) of the numpy
    attentions, one list per implementation, one entry per length."""

    lengths: tuple[int, ...]
    seconds: dict[str, list[float]]
    peak_bytes: dict[str, list[int]]
    window: int


def compare_numpy_attentions(
    lengths: Sequence[int] = (256, 512, 1024, 2048),
    d_k: int = 64,
    window: int = 128,
    repeats: int = 3,
    seed: int = 0,
) -> NumpyCosts:
    """Full softmax attention (``attention.scaled_dot_product_attention``),
    :func:`local_attention` with ``window`` keys per query and :func:`linear_attention`, all in
    numpy float32 on the same seeded ``(n, d_k)`` queries, keys and values, on one thread."""
    lengths = _lengths(lengths)
    with single_threaded():
        return _compare_numpy_attentions(lengths, d_k, window, repeats, seed)


def _compare_numpy_attentions(
    lengths: Sequence[int], d_k: int, window: int, repeats: int, seed: int
) -> NumpyCosts:
    lengths = tuple(checks.positive_int(n, "length") for n in lengths)
    rng = np.random.default_rng(seed)
    methods: dict[str, Callable[..., object]] = {
        "full softmax attention": lambda q, k, v: scaled_dot_product_attention(q, k, v),
        f"local attention (window {window})": lambda q, k, v: local_attention(q, k, v, window),
        "linear attention": linear_attention,
    }
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    peaks: dict[str, list[int]] = {name: [] for name in methods}
    for n in lengths:
        q, k, v = (rng.standard_normal((n, d_k)).astype(np.float32) for _ in range(3))
        for name, method in methods.items():
            call = lambda method=method, q=q, k=k, v=v: method(q, k, v)  # noqa: E731
            seconds[name].append(best_seconds(call, repeats))
            peaks[name].append(numpy_peak_bytes(call))
    return NumpyCosts(lengths, seconds, peaks, window)
