"""Reading a trained model (chapters 7 and 9): which heads link two tokens, how a word's vector
changes with depth, and the figures that show it.

Everything here works on an :class:`~transformer_tutorial.record.AttentionRecord` or on plain
arrays, so it applies to any model of the book.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from transformer_tutorial import checks
from transformer_tutorial.checks import as_float_array
from transformer_tutorial.embeddings import cosine_similarity
from transformer_tutorial.plots import bar_chart, new_axes, plain_text
from transformer_tutorial.record import AttentionRecord

__all__ = [
    "HeadLink",
    "token_position",
    "attention_between",
    "offset_attention",
    "strongest_heads",
    "similarity_by_layer",
    "mean_pairwise_similarity",
    "layer_curves",
    "distribution_chart",
]


def token_position(tokens: Sequence[str], token: str | int) -> int:
    """The position of ``token`` in ``tokens``: an index is checked, a string is looked up
    (first occurrence)."""
    tokens = checks.strings(tokens, "tokens")
    if not isinstance(token, str):
        try:
            return checks.int_in_range(token, "token", 0, len(tokens) - 1)
        except ValueError:
            raise ValueError(
                f"token must be a token string or a position; position must be in "
                f"[0, {len(tokens)}), got {token!r}"
            ) from None
    if token not in tokens:
        raise ValueError(f"{token!r} is not one of the tokens {list(tokens)}")
    return list(tokens).index(token)


def attention_between(record: AttentionRecord, query: str | int, key: str | int) -> np.ndarray:
    """How much ``query`` attends to ``key`` in every layer and head: ``(layers, heads)``.

    Entry ``[l, h]`` is ``record.weights[l, h, i, j]`` with :math:`i` the query's position
    and :math:`j` the key's (tokens by string, first occurrence, or by position).
    """
    checks.instance_of(record, "record", AttentionRecord)
    i = token_position(record.query_tokens, query)
    j = token_position(record.key_tokens, key)
    return np.array(record.weights[:, :, i, j])


def offset_attention(record: AttentionRecord, offset: int) -> np.ndarray:
    """How much each head attends ``offset`` tokens away, ``(layers, heads)``: the mean over
    queries :math:`i` of ``weights[l, h, i, i + offset]`` (``-1``: the previous token, ``1``:
    the next one), over the queries for which :math:`i + offset` is a key position. Needs
    self-attention (queries and keys the same tokens).
    """
    checks.instance_of(record, "record", AttentionRecord)
    if record.kind != "self":
        raise ValueError("offset_attention needs a self-attention record")
    offset = checks.int_in_range(offset, "offset", 1 - record.q_len, record.q_len - 1)
    queries = np.arange(max(0, -offset), record.q_len - max(0, offset))
    return record.weights[:, :, queries, queries + offset].mean(axis=-1)


@dataclass(frozen=True)
class HeadLink:
    """One head and the weight it gives from a query token to a key token."""

    layer: int
    head: int
    weight: float


def strongest_heads(
    record: AttentionRecord,
    query: str | int,
    key: str | int,
    top: int = 3,
    layer: int | None = None,
) -> list[HeadLink]:
    """The ``top`` heads that give ``query`` the most attention to ``key``, strongest first
    (only in ``layer`` if given; layers and heads count from 0)."""
    weights = attention_between(record, query, key)
    top = checks.positive_int(top, "top")
    if layer is None:
        layers = range(record.num_layers)
    else:
        record.layer(layer)  # checks the index
        layers = [layer]
    heads = range(record.num_heads)
    links = [HeadLink(lay, h, float(weights[lay, h])) for lay in layers for h in heads]
    links.sort(key=lambda link: -link.weight)
    return links[:top]


def similarity_by_layer(vectors: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Cosine similarity of two words' vectors layer by layer: ``(layers,)`` from two
    ``(layers, d_model)`` arrays (e.g. :meth:`MiniLM.contextual_vectors
    <transformer_tutorial.pretrained.MiniLM.contextual_vectors>`)."""
    a = as_float_array(vectors, "vectors")
    b = as_float_array(others, "others")
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"vectors and others must both have shape (layers, d_model), got {a.shape} and "
            f"{b.shape}"
        )
    return cosine_similarity(a, b)


def mean_pairwise_similarity(vectors: np.ndarray) -> float:
    """The mean cosine similarity between the vectors of different tokens, from ``(seq,
    d_model)``: :math:`\\frac{1}{n(n-1)} \\sum_{i \\ne j} \\cos(h_i, h_j)`."""
    vectors = as_float_array(vectors, "vectors")
    if vectors.ndim != 2 or vectors.shape[0] < 2:
        raise ValueError(
            f"vectors must have shape (seq, d_model) with seq >= 2, got {vectors.shape}"
        )
    sims = cosine_similarity(vectors[:, None, :], vectors[None, :, :])
    return float(sims[~np.eye(len(vectors), dtype=bool)].mean())


def layer_curves(
    curves: Mapping[str, np.ndarray],
    ax=None,
    title: str | None = None,
    ylabel: str = "value",
    xlabel: str = "layer (0 = input embeddings)",
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """One line per named curve ``(layers,)`` over the layer index, with markers."""
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must hold at least one named (layers,) array")
    ax = new_axes(ax, figsize=(6.0, 3.6))
    styles = ["-o", "--s", "-^", ":D", "-v", "--x"]
    for k, (name, values) in enumerate(curves.items()):
        values = as_float_array(values, name)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"curve {name!r} must have shape (layers,), got {values.shape}")
        ax.plot(np.arange(values.size), values, styles[k % len(styles)],
                label=plain_text(str(name), "curves"))
    ax.set_xlabel(plain_text(xlabel, "xlabel"))
    ax.set_ylabel(plain_text(ylabel, "ylabel"))
    ax.xaxis.get_major_locator().set_params(integer=True)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(plain_text(title, "title"))
    return ax.figure


def distribution_chart(
    probs: np.ndarray,
    token_strings: Callable[[list[int]], Sequence[str]],
    top: int = 12,
    ax=None,
    title: str | None = None,
    full_scale: bool = True,
) -> Figure:
    """The ``top`` most likely next tokens of a distribution ``probs`` ``(vocab,)`` as bars,
    most likely first; ``token_strings(ids)`` names token ids (e.g. :meth:`SmolLM2.token_strings
    <transformer_tutorial.pretrained.SmolLM2.token_strings>`; shown quoted, so that a leading
    space is visible). With ``full_scale`` the x axis runs from 0 to 1 so that charts compare;
    otherwise it fits the bars."""
    probs = as_float_array(probs, "probs")
    if probs.ndim != 1 or probs.size == 0:
        raise ValueError(f"probs must have shape (vocab,), got {probs.shape}")
    order = [int(t) for t in np.argsort(-probs, kind="stable")[:top]]
    labels = [repr(s) for s in token_strings(order)]
    ax = new_axes(ax, figsize=(6.5, 1.2 + 0.3 * len(order)))
    return bar_chart(
        probs[order], labels, ax=ax, title=title, xlabel="probability of being the next token",
        value_range=(0.0, 1.0) if full_scale else None,
    )  # fmt: skip
