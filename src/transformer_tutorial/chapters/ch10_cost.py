"""Chapter 10: timing attention like a benchmark, and saying only what the timings support.

- :func:`measure_attention`: five attentions on the same seeded inputs, each length timed
  in interleaved rounds (one call of every implementation per round, so that a change in the
  machine's load hits them all alike), plus the peak memory of the numpy ones.
- :func:`slope_range`: the power-law exponent fitted to the medians, and the smallest and
  largest exponent fitted to single rounds: how precisely the measurement fixes the slope.
- :func:`local_slopes`: the exponent between consecutive lengths.
- :func:`machine_description`: what the times were measured on.
- :func:`cost_figure`: medians, the spread of the rounds, the fitted power laws and a slope-2
  guide, on log–log axes; :func:`cost_curves`: measured times and fits against the length.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from transformer_tutorial.attention import scaled_dot_product_attention
from transformer_tutorial.checks import (
    as_float_array,
    finite_number,
    float_array,
    instance_of,
    int_in_range,
    int_sequence,
    non_negative_int,
    positive_int,
    strings,
)
from transformer_tutorial.cost import (
    MAX_REPEATS,
    fit_power_law,
    fused_multihead_attention,
    linear_attention,
    local_attention,
    numpy_peak_bytes,
    sample_seconds,
    single_threaded,
)
from transformer_tutorial.multihead import MultiHeadAttention
from transformer_tutorial.plots import CATEGORY_COLORS, new_axes, plain_text

__all__ = [
    "AttentionMeasurement",
    "measure_attention",
    "slope_range",
    "local_slopes",
    "machine_description",
    "cost_figure",
    "NUMPY_FULL",
    "NUMPY_LOCAL",
    "NUMPY_LINEAR",
    "TORCH_OURS",
    "TORCH_FUSED",
    "cost_curves",
]

NUMPY_FULL = "numpy full attention (1 head)"
NUMPY_LOCAL = "numpy local attention (1 head)"
NUMPY_LINEAR = "numpy linear attention (1 head)"
TORCH_OURS = "our MultiHeadAttention (torch)"
TORCH_FUSED = "torch fused scaled_dot_product_attention"

# measure_attention: the longest sequence, the widest model, and the most attention weights
# (heads x n^2 float32, kept by our MultiHeadAttention) one call may hold.
MAX_LENGTH = 8192
MAX_D_MODEL = 4096
MAX_WEIGHT_BYTES = 2**31


@dataclass(frozen=True)
class AttentionMeasurement:
    """``seconds[name]``: ``(lengths, repeats)`` times of each implementation;
    ``peak_bytes[name]``: the numpy implementations' peak memory per length;
    ``load_average``: the machine's 1-minute load average before and after measuring."""

    lengths: tuple[int, ...]
    seconds: dict[str, np.ndarray]
    peak_bytes: dict[str, list[int]]
    repeats: int
    warmup: int
    d_model: int
    num_heads: int
    window: int
    load_average: tuple[float, float]

    def medians_ms(self) -> dict[str, np.ndarray]:
        """The median time of each implementation at each length, in milliseconds."""
        return {name: 1e3 * np.median(t, axis=1) for name, t in self.seconds.items()}


@torch.no_grad()
def measure_attention(
    lengths: Sequence[int] = (256, 512, 1024, 2048, 4096),
    d_model: int = 64,
    num_heads: int = 4,
    window: int = 128,
    repeats: int = 5,
    warmup: int = 1,
    seed: int = 0,
) -> AttentionMeasurement:
    """Time five attentions over ``n`` tokens for each ``n`` in ``lengths``, on one thread:
    numpy full softmax attention (``attention.scaled_dot_product_attention``), numpy local
    (``window`` keys) and linear attention, all on the same seeded ``(n, d_model)`` queries,
    keys and values; our :class:`MultiHeadAttention` (``num_heads`` heads, returns the
    weights) and the same projections around torch's fused kernel, on ``(1, n, d_model)``.

    Per length: ``warmup`` discarded calls of each, then ``repeats`` rounds, each timing one
    call of every implementation (:func:`~transformer_tutorial.cost.sample_seconds`). Then the
    numpy peak memories
    (:func:`~transformer_tutorial.cost.numpy_peak_bytes`).

    Refused before any work: lengths beyond :data:`MAX_LENGTH`, ``d_model`` beyond
    :data:`MAX_D_MODEL`, and ``num_heads`` x n^2 float32 weights above
    :data:`MAX_WEIGHT_BYTES` (2 GiB)."""
    lengths = tuple(
        int_in_range(n, "lengths", 1, MAX_LENGTH) for n in int_sequence(lengths, "lengths")
    )
    if not lengths:
        raise ValueError("lengths must hold at least one sequence length")
    d_model = int_in_range(d_model, "d_model", 1, MAX_D_MODEL)
    num_heads = positive_int(num_heads, "num_heads")
    if num_heads * max(lengths) ** 2 * 4 > MAX_WEIGHT_BYTES:
        raise ValueError(
            f"num_heads={num_heads} at lengths up to {max(lengths)} means "
            f"{num_heads * max(lengths) ** 2 * 4 / 2**30:.1f} GiB of attention weights per call "
            f"(at most {MAX_WEIGHT_BYTES / 2**30:.0f} GiB): fewer heads or shorter lengths"
        )
    repeats = int_in_range(repeats, "repeats", 1, MAX_REPEATS)
    warmup = int_in_range(warmup, "warmup", 0, MAX_REPEATS)
    window = positive_int(window, "window")
    seed = non_negative_int(seed, "seed")
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mha = MultiHeadAttention(d_model, num_heads).eval()
    numpy_methods = {
        NUMPY_FULL: scaled_dot_product_attention,
        NUMPY_LOCAL: lambda q, k, v: local_attention(q, k, v, window),
        NUMPY_LINEAR: linear_attention,
    }
    names = [*numpy_methods, TORCH_OURS, TORCH_FUSED]
    seconds = {name: np.empty((len(lengths), repeats)) for name in names}
    peaks: dict[str, list[int]] = {name: [] for name in numpy_methods}
    before = os.getloadavg()[0]
    with single_threaded():
        for i, n in enumerate(lengths):
            q, k, v = (rng.standard_normal((n, d_model)).astype(np.float32) for _ in range(3))
            x = torch.from_numpy(rng.standard_normal((1, n, d_model)).astype(np.float32))
            calls: dict[str, Callable[[], object]] = {
                name: (lambda f=f, q=q, k=k, v=v: f(q, k, v))
                for name, f in numpy_methods.items()
            }
            calls[TORCH_OURS] = lambda x=x: mha(x)
            calls[TORCH_FUSED] = lambda x=x: fused_multihead_attention(mha, x)
            for call in calls.values():
                sample_seconds(call, repeats=1, warmup=warmup)  # the warm-up call(s)
            for r in range(repeats):
                for name, call in calls.items():
                    seconds[name][i, r] = sample_seconds(call, repeats=1, warmup=0)[0]
            for name in numpy_methods:
                peaks[name].append(numpy_peak_bytes(calls[name]))
    return AttentionMeasurement(
        lengths, seconds, peaks, repeats, warmup, d_model, num_heads, window,
        (before, os.getloadavg()[0]),
    )  # fmt: skip


@dataclass(frozen=True)
class SlopeRange:
    """The exponent :math:`k` of :math:`t \\approx c\\, n^k` fitted to the medians
    (``median``), the lowest and highest exponent fitted to single rounds (``low``,
    ``high``), the constant ``c`` of the median fit, and the lengths used."""

    median: float
    low: float
    high: float
    c: float
    lengths: tuple[int, ...]


def slope_range(
    lengths: Sequence[int], samples: np.ndarray, min_length: int = 1
) -> SlopeRange:
    """Fit :func:`~transformer_tutorial.cost.fit_power_law` to the medians of ``samples``
    ``(lengths, repeats)`` and to every round (column) on its own, over the lengths
    ``>= min_length`` (at least two)."""
    n = np.asarray(_positive(lengths, "lengths", "(lengths,)", None), dtype=float)
    samples = np.asarray(
        _positive(samples, "samples", f"(lengths, repeats) = ({n.size}, r)", (n.size, None)),
        dtype=float,
    )
    keep = n >= finite_number(min_length, "min_length")
    if np.unique(n[keep]).size < 2:
        raise ValueError(f"min_length={min_length} leaves fewer than two lengths")
    with np.errstate(over="ignore"):  # an overflowing fit is refused just below
        c, k = fit_power_law(n[keep], np.median(samples[keep], axis=1))
        per_round = [fit_power_law(n[keep], samples[keep, r])[1] for r in range(samples.shape[1])]
    if not np.isfinite([c, k, *per_round]).all():
        raise ValueError("samples span too many orders of magnitude for a power-law fit")
    used = tuple(int(x) for x in n[keep])
    return SlopeRange(k, float(min(per_round)), float(max(per_round)), c, used)


def local_slopes(lengths: Sequence[int], values: Sequence[float]) -> np.ndarray:
    """The exponent between consecutive lengths, :math:`\\log(t_{i+1}/t_i) /
    \\log(n_{i+1}/n_i)`, ``(len(lengths) - 1,)``: 2 where doubling :math:`n` quadruples the
    time."""
    n = np.asarray(_positive(lengths, "lengths", "(k,), k >= 2", None), dtype=float)
    t = np.asarray(_positive(values, "values", f"(k,) = ({n.size},)", (n.size,)), dtype=float)
    if n.size < 2 or (np.diff(n) == 0).any():
        raise ValueError(f"lengths must hold k >= 2 lengths, each unlike the next, got {n}")
    return np.diff(np.log(t)) / np.diff(np.log(n))


def _positive(
    values: object, name: str, expected: str, shape: tuple[int | None, ...] | None
) -> np.ndarray:
    """``values`` as a float array of ``shape`` (``None``: any 1-D array) whose entries are
    finite and > 0 (lengths and times, fitted on log axes)."""
    array = float_array(values, name, expected, ndim=1, shape=shape)
    if (array <= 0).any():
        raise ValueError(f"{name} must be > 0 (they are fitted on log axes)")
    return array


def machine_description() -> str:
    """The processor (from ``/proc/cpuinfo`` where there is one), the number of CPUs, and the
    numpy and torch versions: the machine the chapter's times belong to."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, numpy {np.__version__}, torch {torch.__version__}"
    )


def cost_figure(
    measurement: AttentionMeasurement,
    names: Sequence[str],
    fits: Mapping[str, SlopeRange],
    title: str | None = None,
) -> Figure:
    """The median time (markers) of each of ``names`` against :math:`n` on log–log axes, a
    bar from the fastest to the slowest round, the fitted power law of ``fits[name]``
    (dashed, over the lengths it was fitted on) and a grey dotted slope-2 guide through the
    last median of the first name."""
    measurement = instance_of(measurement, "measurement", AttentionMeasurement)
    names = strings(names, "names", what="implementation names", allow_empty=False)
    unknown = [name for name in names if name not in measurement.seconds]
    if unknown:
        raise ValueError(
            f"names: unknown implementations {unknown}; have {list(measurement.seconds)}"
        )
    fits = instance_of(fits, "fits", Mapping)
    for name, fit in fits.items():
        instance_of(fit, f"fits[{name!r}]", SlopeRange)
    title = None if title is None else plain_text(title, "title")
    n = np.array(measurement.lengths, dtype=float)
    seconds = {
        name: _positive(measurement.seconds[name], f"measurement.seconds[{name!r}]",
                        f"(lengths, repeats) = ({n.size}, r)", (n.size, None))
        for name in names
    }  # fmt: skip
    ax = new_axes(None, figsize=(6.5, 4.2))
    for name, color in zip(names, CATEGORY_COLORS, strict=False):
        ms = 1e3 * seconds[name]
        median = np.median(ms, axis=1)
        ax.errorbar(n, median, yerr=[median - ms.min(axis=1), ms.max(axis=1) - median],
                    fmt="o", color=color, capsize=3, label=name)
        if name in fits:
            fit = fits[name]
            x = np.array(fit.lengths, dtype=float)
            ax.plot(x, 1e3 * fit.c * x**fit.median, "--", color=color, linewidth=1,
                    label=f"fit: n^{fit.median:.2f}")
    last = np.median(1e3 * seconds[names[0]], axis=1)[-1]
    ax.plot(n, last * (n / n[-1]) ** 2, ":", color="grey", label="slope 2 (quadratic)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length n")
    ax.set_ylabel("CPU time per call (ms), measured")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return ax.figure


# -- Figures: measured cost against length -------------------------------------------------


def cost_curves(
    lengths: Sequence[int],
    series: Mapping[str, Sequence[float]],
    fits: Mapping[str, Sequence[float]] | None = None,
    ylabel: str = "time per call (ms)",
    title: str | None = None,
) -> Figure:
    """Measured ``series`` (markers) against sequence length on log–log axes, with optional
    fitted ``fits`` (dashed lines) of the same names; a slope of 2 means quadratic growth."""
    lengths = as_float_array(lengths, "lengths")
    if lengths.ndim != 1 or lengths.size == 0:
        raise ValueError(f"lengths must have shape (n,), got {lengths.shape}")
    ax = new_axes(None, figsize=(6.5, 4.0))
    for (name, values), color in zip(series.items(), CATEGORY_COLORS, strict=False):
        values = as_float_array(values, name)
        if values.shape != lengths.shape:
            raise ValueError(
                f"series {name!r} must have one value per length, shape {lengths.shape}, "
                f"got {values.shape}"
            )
        ax.plot(lengths, values, "o", color=color, label=plain_text(str(name), "name"))
        if fits and name in fits:
            ax.plot(lengths, as_float_array(fits[name], name), "--", color=color, linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length n")
    ax.set_ylabel(plain_text(ylabel, "ylabel"))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(plain_text(title, "title"))
    return ax.figure
