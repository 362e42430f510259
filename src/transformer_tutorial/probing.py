"""Reading a trained model: which heads link two tokens, at which offsets heads look, how alike
the tokens' vectors are.

Everything here works on an :class:`~transformer_tutorial.record.AttentionRecord` or on plain
arrays, so it applies to any model of the book.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transformer_tutorial import checks
from transformer_tutorial.checks import as_float_array
from transformer_tutorial.embeddings import cosine_similarity
from transformer_tutorial.record import AttentionRecord

__all__ = [
    "HeadLink",
    "token_position",
    "attention_between",
    "offset_attention",
    "strongest_heads",
    "mean_pairwise_similarity",
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


