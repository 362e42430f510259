"""Chapter 4: hand-built heads that each do one recognisable job, and the chapter's explorer.

- :func:`pattern_heads`: four heads whose weights are set by hand so that each does one job
  (:data:`HEAD_PATTERNS`: previous token, next token, same word, first token) on the inputs
  :func:`pattern_features` builds (a one-hot of the word and one of the position).
- :func:`heads_explorer`: the same four jobs split into 4, 2 or 1 heads
  (:func:`~transformer_tutorial.multihead.regroup_heads`); follow one job.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from transformer_tutorial import checks
from transformer_tutorial.multihead import MultiHeadAttention, regroup_heads
from transformer_tutorial.widgets import Control, Explorer, frame, heatmap, strongest_link

__all__ = [
    "HEAD_PATTERNS",
    "PATTERN_MAX_LEN",
    "pattern_words",
    "pattern_features",
    "pattern_heads",
    "HEADS_SENTENCES",
    "HEADS_COUNTS",
    "heads_explorer",
]


# -- Hand-built heads that each do one recognisable thing ----------------------------------
#
# Random weights give heads with no visible job. A trained model's heads do have jobs, and
# some of the simplest ones seen in real models are "look at the previous token", "look at
# the same word elsewhere" and "look at the first token". The weights below are set by hand
# so that each of four heads does exactly one such job, on inputs that carry a one-hot of
# the word and a one-hot of the position (plus a constant feature).

HEAD_PATTERNS = ("previous token", "next token", "same word", "first token")
PATTERN_MAX_LEN = 16  # positions and distinct words the hand-built inputs can hold
_PATTERN_D_HEAD = 16
_WORDS, _POSITIONS, _CONSTANT = 0, PATTERN_MAX_LEN, 2 * PATTERN_MAX_LEN


def pattern_words(tokens: Sequence[str]) -> list[str]:
    """The distinct words of ``tokens`` in order of first appearance (the word slots)."""
    return list(dict.fromkeys(checks.strings(tokens, "tokens", what="token strings")))


def pattern_features(tokens: Sequence[str]) -> torch.Tensor:
    """Inputs for :func:`pattern_heads`, shape ``(1, seq, 64)``.

    Token :math:`p` gets a 1 at feature ``w`` (its word's slot, :func:`pattern_words`), a 1 at
    feature ``16 + p`` (its position) and a 1 at feature 32 (a constant); the rest are 0.
    At most 16 tokens and 16 distinct words.
    """
    words = pattern_words(tokens)
    tokens = list(tokens)
    if not 1 <= len(tokens) <= PATTERN_MAX_LEN or len(words) > PATTERN_MAX_LEN:
        raise ValueError(
            f"tokens must hold 1 to {PATTERN_MAX_LEN} tokens with at most {PATTERN_MAX_LEN} "
            f"distinct words, got {len(tokens)} tokens and {len(words)} distinct words"
        )
    x = torch.zeros(1, len(tokens), len(HEAD_PATTERNS) * _PATTERN_D_HEAD)
    for p, token in enumerate(tokens):
        x[0, p, _WORDS + words.index(token)] = 1.0
        x[0, p, _POSITIONS + p] = 1.0
        x[0, p, _CONSTANT] = 1.0
    return x


@torch.no_grad()
def pattern_heads(sharpness: float = 6.0) -> MultiHeadAttention:
    """Four heads with hand-set weights, one job each (:data:`HEAD_PATTERNS`), ``d_model = 64``.

    On :func:`pattern_features` inputs, head 0's score is ``sharpness`` for the key just before
    the query (0 elsewhere), head 1's for the key just after, head 2's for every key holding
    the same word, head 3's for the first key. A query with no such key (the first token for
    head 0, the last for head 1) scores all keys 0 and spreads its attention evenly.
    :math:`W^V` copies the word one-hot into each head's slot and :math:`W^O` is the identity,
    so the output's slot ``h`` (features ``16h .. 16h+15``) holds the words head ``h`` read.
    No biases.
    """
    sharpness = checks.positive_number(sharpness, "sharpness")
    d, n = _PATTERN_D_HEAD, PATTERN_MAX_LEN
    mha = MultiHeadAttention(len(HEAD_PATTERNS) * d, len(HEAD_PATTERNS), bias=False)
    w_q = torch.zeros(mha.d_model, mha.d_model)  # (out, in), as nn.Linear stores it
    w_k = torch.zeros(mha.d_model, mha.d_model)
    w_v = torch.zeros(mha.d_model, mha.d_model)
    q_scale = sharpness * math.sqrt(d)  # the 1/sqrt(d_head) of the attention cancels it
    for j in range(n):
        # head 0, previous token: the query of position j points at position j - 1
        if j >= 1:
            w_q[0 * d + j - 1, _POSITIONS + j] = q_scale
        # head 1, next token: the query of position j points at position j + 1
        if j + 1 < n:
            w_q[1 * d + j + 1, _POSITIONS + j] = q_scale
        # heads 0 and 1: a key says where it is
        w_k[0 * d + j, _POSITIONS + j] = 1.0
        w_k[1 * d + j, _POSITIONS + j] = 1.0
        # head 2, same word: query and key both say which word they hold
        w_q[2 * d + j, _WORDS + j] = q_scale
        w_k[2 * d + j, _WORDS + j] = 1.0
    # head 3, first token: every query asks for position 0 (through the constant feature)
    w_q[3 * d, _CONSTANT] = q_scale
    w_k[3 * d, _POSITIONS] = 1.0
    for h in range(len(HEAD_PATTERNS)):  # every head passes on the word it reads
        w_v[h * d : h * d + n, _WORDS : _WORDS + n] = torch.eye(n)
    mha.w_q.weight.copy_(w_q)
    mha.w_k.weight.copy_(w_k)
    mha.w_v.weight.copy_(w_v)
    mha.w_o.weight.copy_(torch.eye(mha.d_model))
    return mha


# -- The chapter's explorer ----------------------------------------------------------------

HEADS_SENTENCES = (
    "the cat saw the dog and the dog saw the cat .",
    "the cat sat on the mat because it was tired .",
    "how are you",
)
HEADS_COUNTS = (1, 2, 4)


@functools.lru_cache(maxsize=16)
def _pattern_weights(tokens: tuple[str, ...], num_heads: int) -> np.ndarray:
    """Weights ``(heads, seq, seq)`` of the hand-built heads regrouped into ``num_heads``."""
    _, weights = regroup_heads(pattern_heads(), num_heads)(pattern_features(list(tokens)))
    return weights[0].detach().numpy()


def heads_data(sentence: str, num_heads: int, job: str) -> dict[str, Any]:
    """The head that holds ``job`` (one of the four hand-built jobs,
    :data:`HEAD_PATTERNS`) when the same weights are split
    into ``num_heads`` heads, on ``sentence``."""
    from transformer_tutorial.tokens import tokenize

    if job not in HEAD_PATTERNS:
        raise ValueError(f"job must be one of {HEAD_PATTERNS}, got {job!r}")
    if num_heads not in HEADS_COUNTS:
        raise ValueError(f"num_heads must be one of {HEADS_COUNTS}, got {num_heads!r}")
    tokens = tokenize(sentence)
    weights = _pattern_weights(tuple(tokens), num_heads)
    per_head = len(HEAD_PATTERNS) // num_heads
    head = HEAD_PATTERNS.index(job) // per_head
    jobs = " + ".join(HEAD_PATTERNS[head * per_head : (head + 1) * per_head])
    title = f"{num_heads} head{'s' if num_heads > 1 else ''}: head {head} = {jobs}"
    sharpness = weights[head].max(axis=-1).mean()
    return frame(
        heatmap(weights[head], tokens, tokens, title=title, annotate=False),
        description=f"{title}. Each row's largest weight is {sharpness:.2f} on average; the "
        f"strongest link is {strongest_link(weights[head], tokens, tokens)}.",
    )


def heads_explorer() -> Explorer:
    """Chapter 4: the same four hand-built jobs split into 4, 2 or 1 heads; follow one job."""
    return Explorer(
        "One job per head, or several jobs in one head",
        (
            Control("sentence", HEADS_SENTENCES, label="sentence", free_text=True),
            Control("num_heads", HEADS_COUNTS, label="number of heads", default=4),
            Control("job", HEAD_PATTERNS, label="show the head that does"),
        ),
        heads_data,
        caption="The same W^Q, W^K, W^V, W^O every time, split into 4, 2 or 1 heads. With 4 "
        "heads each does one job. With fewer, a head adds up the scores of the jobs it holds "
        "and one softmax must share its attention among them: the patterns blur together.",
    )
