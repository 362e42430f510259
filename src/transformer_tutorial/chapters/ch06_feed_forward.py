"""Chapter 6: why the block needs a feed-forward network — attention only averages.

Each head's output for a query is :math:`\\sum_j a_j v_j` with weights :math:`a_j \\ge 0`
summing to 1: a point of the convex hull of the value vectors. So every coordinate of the
output lies between the smallest and the largest value of that coordinate
(:func:`outside_value_range`), and in any 2-D view the outputs sit inside the values' hull
(:func:`convex_hull_2d`, :func:`hull_figure`). For fixed weights, attention is linear in the
values; the feed-forward network is the block's per-token nonlinear map
(:func:`nonlinearity_gap`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from transformer_tutorial.checks import argument_errors, as_float_array, as_tensor, function
from transformer_tutorial.plots import CATEGORY_COLORS, new_axes, plain_text

__all__ = ["outside_value_range", "convex_hull_2d", "hull_figure", "nonlinearity_gap"]


def outside_value_range(weights: object, values: object, outputs: object) -> float:
    """How far ``outputs`` ``(..., q, d)`` leave the per-coordinate range of ``values``
    ``(..., k, d)`` over the keys: the largest amount by which an output coordinate is below
    the smallest value or above the largest one (0 if all lie inside). ``weights`` ``(..., q,
    k)`` are checked to be a convex combination (non-negative, rows summing to 1)."""
    w = as_float_array(weights, "weights")
    v = as_float_array(values, "values")
    out = as_float_array(outputs, "outputs")
    if w.shape[-1] != v.shape[-2] or out.shape[-1] != v.shape[-1] or w.shape[-2] != out.shape[-2]:
        raise ValueError(
            f"need weights (..., q, k), values (..., k, d), outputs (..., q, d); got "
            f"{w.shape}, {v.shape}, {out.shape}"
        )
    if (w < 0).any() or not np.allclose(w.sum(-1), 1.0, atol=1e-5):
        raise ValueError("weights must be non-negative with rows summing to 1")
    low = v.min(axis=-2, keepdims=True)
    high = v.max(axis=-2, keepdims=True)
    return float(np.maximum(np.maximum(low - out, out - high), 0.0).max())


def convex_hull_2d(points: object) -> np.ndarray:
    """The corners of the convex hull of ``points`` ``(m, 2)``, counter-clockwise
    (Andrew's monotone chain), ``(corners, 2)``."""
    p = as_float_array(points, "points")
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 3:
        raise ValueError(f"points must have shape (m, 2) with m >= 3, got {p.shape}")
    p = p[np.lexsort((p[:, 1], p[:, 0]))]

    def half(seq: np.ndarray) -> list[np.ndarray]:
        chain: list[np.ndarray] = []
        for q in seq:
            while len(chain) >= 2:
                a, b = chain[-2], chain[-1]
                if (b[0] - a[0]) * (q[1] - a[1]) - (b[1] - a[1]) * (q[0] - a[0]) > 0:
                    break
                chain.pop()
            chain.append(q)
        return chain

    lower, upper = half(p), half(p[::-1])
    return np.array(lower[:-1] + upper[:-1])


def hull_figure(
    values: object, outputs: object, tokens: Sequence[str], title: str | None = None
) -> Figure:
    """Two coordinates of one head's value vectors ``(k, 2)`` (labelled by ``tokens``), their
    convex hull, and the head's outputs ``(q, 2)``: every output lies inside."""
    title = None if title is None else plain_text(title, "title")
    v = as_float_array(values, "values")
    out = as_float_array(outputs, "outputs")
    if v.ndim != 2 or v.shape[1] != 2 or out.ndim != 2 or out.shape[1] != 2:
        raise ValueError(f"values and outputs must have shape (m, 2), got {v.shape}, {out.shape}")
    if len(tokens) != len(v):
        raise ValueError(f"tokens must name the {len(v)} values, got {len(tokens)}")
    ax = new_axes(None, figsize=(5.5, 4.5))
    ax.add_patch(Polygon(convex_hull_2d(v), closed=True, alpha=0.15, color=CATEGORY_COLORS[0],
                         label="convex hull of the values"))
    ax.plot(v[:, 0], v[:, 1], "o", color=CATEGORY_COLORS[0], label="values v_j")
    for (x, y), token in zip(v, tokens, strict=True):
        ax.annotate(plain_text(str(token), "token"), (x, y), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.plot(out[:, 0], out[:, 1], "x", color=CATEGORY_COLORS[5], markersize=8,
            label="outputs (weighted averages)")
    ax.set_xlabel("value coordinate 1")
    ax.set_ylabel("value coordinate 2")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax.figure


@torch.no_grad()
def nonlinearity_gap(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    """:math:`\\max |f(x_1 + x_2) - f(x_1) - f(x_2) + f(0)|` over the entries, with
    :math:`x_1, x_2` the two halves of the tokens of ``x`` ``(batch, seq, d)`` paired up:
    0 for an affine map, large for a nonlinear one. A module ``fn`` gets ``x`` in its own
    dtype."""
    fn = function(fn, "fn")
    weight = next(fn.parameters(), None) if isinstance(fn, torch.nn.Module) else None
    x = as_tensor(x, "x", torch.empty(0) if weight is None else weight,
                  "(batch, seq >= 2, d)", ndim=3, keep_dtype=weight is None)  # fmt: skip
    if x.shape[1] < 2:
        raise ValueError(f"x must have shape (batch, seq >= 2, d), got {tuple(x.shape)}")
    half = x.shape[1] // 2
    a, b = x[:, :half], x[:, half : 2 * half]
    with argument_errors("fn", Exception):
        outputs = [fn(a + b), fn(a), fn(b), fn(torch.zeros_like(a))]
        gap = outputs[0] - outputs[1] - outputs[2] + outputs[3]
        gap = float(gap.abs().max())
    if not math.isfinite(gap):
        raise ValueError("fn returned NaN or inf for the finite x: no gap to measure")
    return gap
