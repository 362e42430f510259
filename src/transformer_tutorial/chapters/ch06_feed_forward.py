"""Chapter 6: why the block needs a feed-forward network — attention only averages.

Each head's output for a query is :math:`\\sum_j a_j v_j` with weights :math:`a_j \\ge 0`
summing to 1: a point of the convex hull of the value vectors. So every coordinate of the
output lies between the smallest and the largest value of that coordinate
(:func:`outside_value_range`), and in any 2-D view the outputs sit inside the values' hull
(:func:`convex_hull_2d`, :func:`hull_figure`). For fixed weights, attention is linear in the
values; the feed-forward network is the block's per-token nonlinear map
(:func:`nonlinearity_gap`).

Also the chapter's explorer, :func:`layer_norm_explorer`: layer norm on one token, before,
during and after, in a seeded block or in the real MiniLM.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from transformer_tutorial.checks import argument_errors, as_float_array, as_tensor, function
from transformer_tutorial.plots import CATEGORY_COLORS, new_axes, plain_text
from transformer_tutorial.widgets import Control, Explorer, bars, frame

__all__ = [
    "outside_value_range",
    "convex_hull_2d",
    "hull_figure",
    "nonlinearity_gap",
    "NORM_SENTENCE",
    "NORM_D_MODEL",
    "NORM_STAGES",
    "NORM_BLOCKS",
    "layer_norm_explorer",
]


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


# -- The chapter's explorer ----------------------------------------------------------------

NORM_SENTENCE = "the cat sat on the mat because it was tired ."
NORM_D_MODEL = 16
NORM_STAGES = (
    "input: x + Attention(x)",
    "standardized: (x - mean) / std",
    "output: gamma * standardized + beta",
)


@functools.lru_cache(maxsize=4)
def layer_norm_example(seed: int = 0) -> tuple[list[str], dict[str, Any]]:
    """The first layer norm of a seeded post-norm encoder block (:func:`seeded_encoder_layer`,
    ``d_model = 16``, 2 heads) on :data:`NORM_SENTENCE`: its tokens and
    :func:`~transformer_tutorial.layers.layer_norm_steps` of :math:`x + \\mathrm{Attention}(x)`,
    each ``(seq, d_model)`` (statistics ``(seq, 1)``), plus ``input``."""
    from transformer_tutorial.embeddings import EmbeddingTable
    from transformer_tutorial.layers import (
        EncoderBlock,
        encoder_block_steps,
        layer_norm_steps,
        seeded_encoder_layer,
    )
    from transformer_tutorial.positional import embed_with_positions
    from transformer_tutorial.tokens import Vocabulary, tokenize

    tokens = tokenize(NORM_SENTENCE)
    table = EmbeddingTable.random(Vocabulary.from_texts([NORM_SENTENCE]), NORM_D_MODEL, seed)
    block = EncoderBlock.from_torch(seeded_encoder_layer(NORM_D_MODEL, 2, 4 * NORM_D_MODEL,
                                                         seed=seed))
    steps = encoder_block_steps(block, embed_with_positions(tokens, table))
    norm = layer_norm_steps(steps["x + attention"], block.add_norm1.norm)
    result = {"input": steps["x + attention"][0]}
    result.update({name: value[0] for name, value in norm.items()})
    return tokens, result


NORM_BLOCKS = ("seeded block (d_model = 16)",
               "MiniLM layer 0 (trained gamma and beta, d_model = 384)")  # fmt: skip


@functools.lru_cache(maxsize=1)
def minilm_layer_norm_example() -> tuple[list[str], dict[str, Any]]:
    """The first layer norm of the real MiniLM's layer 0 on :data:`NORM_SENTENCE`, with its
    trained :math:`\\gamma` and :math:`\beta`: its tokens (``[CLS]`` and ``[SEP]`` included) and
    :func:`~transformer_tutorial.layers.layer_norm_steps` of :math:`x + \\mathrm{Attention}(x)`
    as in :func:`layer_norm_example`, each ``(seq, 384)``."""
    import torch

    from transformer_tutorial.cost import single_threaded
    from transformer_tutorial.layers import encoder_block_steps, layer_norm_steps
    from transformer_tutorial.pretrained import load_minilm

    minilm = load_minilm()
    tokenized = minilm.tokenize(NORM_SENTENCE)
    block = minilm.model.blocks[0]
    with torch.no_grad(), single_threaded():
        x = minilm.model.embeddings(torch.tensor([tokenized.ids]))
        steps = encoder_block_steps(block, x)
        norm = layer_norm_steps(steps["x + attention"], block.add_norm1.norm)
    result = {"input": steps["x + attention"][0]}
    result.update({name: value[0] for name, value in norm.items()})
    return list(tokenized.tokens), result


def layer_norm_token_labels(tokens: list[str]) -> list[str]:
    """``"word (position p)"`` for each token: the labels of the token dropdown."""
    return [f"{token} (position {p})" for p, token in enumerate(tokens)]


def layer_norm_data(token: str, stage: str, block: str = NORM_BLOCKS[0]) -> dict[str, Any]:
    """One token's features at one stage of layer normalization in one ``block`` (see
    :func:`layer_norm_explorer`); ``token`` is ``"word (position p)"`` of
    :data:`NORM_SENTENCE`'s words (MiniLM's ``[CLS]`` shifts its positions by one)."""
    tokens, steps = layer_norm_example()
    names = layer_norm_token_labels(tokens)
    if token not in names:
        raise ValueError(f"token must be one of {names}, got {token!r}")
    if stage not in NORM_STAGES:
        raise ValueError(f"stage must be one of {NORM_STAGES}, got {stage!r}")
    if block not in NORM_BLOCKS:
        raise ValueError(f"block must be one of {NORM_BLOCKS}, got {block!r}")
    position = names.index(token)
    if block != NORM_BLOCKS[0]:
        minilm_tokens, steps = minilm_layer_norm_example()
        position += 1  # after [CLS]
        if minilm_tokens[position] != tokens[position - 1]:
            raise ValueError(f"MiniLM splits {tokens[position - 1]!r} into word pieces")
    key = ("input", "standardized", "output")[NORM_STAGES.index(stage)]
    bound = 1.1 * max(float(steps[k].abs().max()) for k in ("input", "standardized", "output"))
    values = steps[key][position].detach().numpy()
    return frame(
        bars(values, range(values.size), title=f'"{token}": {stage}', vmin=-bound, vmax=bound,
             orientation="vertical", colors="sign", label_title="feature",
             hover="feature {label}: {value}"),
        description=f'"{token}", {stage}: mean {values.mean():.2f}, standard deviation '
        f"{values.std():.2f}, largest feature {np.abs(values).max():.2f}.",
    )  # fmt: skip


def layer_norm_explorer() -> Explorer:
    """Chapter 6: layer norm on one token, before, during and after, in a seeded block or
    with the trained scale and shift of the real MiniLM."""
    from transformer_tutorial.tokens import tokenize

    labels = tuple(layer_norm_token_labels(tokenize(NORM_SENTENCE)))
    return Explorer(
        "Layer norm, one token at a time",
        (
            Control("token", labels, label="token", default=labels[1]),
            Control("stage", NORM_STAGES, label="stage"),
            Control("block", NORM_BLOCKS, label="layer norm of"),
        ),
        layer_norm_data,
        caption="The features of one token inside the first Add & Norm of an encoder block: a "
        "seeded block with 16 features, or the real MiniLM's first layer with 384. "
        "Standardizing moves each token's mean to 0 and its spread to 1 using only that "
        "token's own features; the learned gamma and beta then rescale and shift each feature "
        "(in the trained MiniLM a few features get far larger scales than the rest).",
    )
