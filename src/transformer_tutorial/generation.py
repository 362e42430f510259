"""Generating text with a decoder, one token at a time, with or without a KV cache (chapter 9).

Each step reads the sequence so far, turns the last position's logits into a distribution
(:func:`~transformer_tutorial.sampling.next_token_distribution`), picks a token and appends
it; generation stops at the end-of-sequence token or after ``max_new_tokens``.

Without a cache every step recomputes the keys and values of the whole sequence. With the
:class:`~transformer_tutorial.llama.KVCache`, a step feeds only the newest token and reuses
the stored keys and values: the causal mask guarantees earlier tokens never see later ones, so
their keys and values are the same as before and the logits are identical (up to floating-point
rounding).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from transformer_tutorial import checks
from transformer_tutorial.cost import single_threaded
from transformer_tutorial.llama import LlamaDecoder
from transformer_tutorial.sampling import check_filters, next_token_distribution, sample_token

__all__ = ["Generation", "generate", "CacheTiming", "time_generation"]

STOP_EOS = "end of sequence"
STOP_LENGTH = "max_new_tokens"


@dataclass(frozen=True)
class Generation:
    """The result of :func:`generate`.

    ``prompt_ids`` and ``new_ids`` (the generated tokens, the end-of-sequence token included
    when generation stopped there); ``step_logits`` ``(len(new_ids), vocab)``: the logits each
    new token was chosen from; ``stop_reason``: ``"end of sequence"`` or ``"max_new_tokens"``;
    ``cache_bytes``: the KV cache's size at the end (0 without a cache).
    """

    prompt_ids: tuple[int, ...]
    new_ids: tuple[int, ...]
    step_logits: np.ndarray
    stop_reason: str
    cache_bytes: int


@torch.no_grad()
@single_threaded()
def generate(
    model: LlamaDecoder,
    prompt_ids: Sequence[int],
    max_new_tokens: int = 20,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | None = None,
    seed: int = 0,
    use_cache: bool = True,
) -> Generation:
    """Continue ``prompt_ids`` with at most ``max_new_tokens`` tokens.

    ``temperature=0`` is greedy; otherwise each token is sampled (numpy
    ``default_rng(seed)``) from :func:`next_token_distribution` with ``temperature``, ``top_k``
    and ``top_p``. Stops after ``eos_id`` if given. Raises ``ValueError`` if the prompt plus
    ``max_new_tokens`` would not fit the model's context: nothing is truncated.

    Runs torch on one thread (:func:`~transformer_tutorial.cost.single_threaded`, restored
    afterwards): one token at a time the matrix products are small, and on a busy machine a
    second thread mostly waits (measured here: 10x slower per token with 2 threads under load).
    """
    checks.instance_of(model, "model", LlamaDecoder)
    prompt = checks.token_id_list(prompt_ids, "prompt_ids", model.config.vocab_size)
    max_new_tokens = checks.positive_int(max_new_tokens, "max_new_tokens")
    temperature = checks.temperature(temperature, allow_zero=True)
    check_filters(top_k, top_p, model.config.vocab_size)
    if eos_id is not None:
        eos_id = checks.int_in_range(eos_id, "eos_id", 0, model.config.vocab_size - 1)
    seed = checks.non_negative_int(seed, "seed")
    limit = model.config.max_positions
    if len(prompt) + max_new_tokens > limit:
        raise ValueError(
            f"the prompt ({len(prompt)} tokens) plus max_new_tokens ({max_new_tokens}) exceeds "
            f"the model's context of {limit} tokens"
        )
    rng = np.random.default_rng(seed)
    sequence = list(prompt)
    new_ids: list[int] = []
    step_logits: list[np.ndarray] = []
    cache = None
    stop_reason = STOP_LENGTH
    feed = torch.tensor([prompt])
    for _ in range(max_new_tokens):
        if use_cache:
            out = model(feed, cache)
            cache = out.cache
        else:
            out = model(torch.tensor([sequence]))
        logits = out.logits[0, -1].float().numpy()
        probs = next_token_distribution(logits, temperature, top_k, top_p)
        token = int(np.argmax(probs)) if temperature == 0 else sample_token(probs, rng)
        step_logits.append(logits)
        new_ids.append(token)
        sequence.append(token)
        feed = torch.tensor([[token]])
        if eos_id is not None and token == eos_id:
            stop_reason = STOP_EOS
            break
    return Generation(
        tuple(prompt), tuple(new_ids), np.stack(step_logits), stop_reason,
        0 if cache is None else cache.nbytes,
    )  # fmt: skip


@dataclass(frozen=True)
class CacheTiming:
    """Seconds to generate ``new_tokens`` tokens greedily with and without the KV cache (best
    of ``repeats``), their ratio, and the cache's size in bytes at the end."""

    new_tokens: int
    prompt_tokens: int
    seconds_with_cache: float
    seconds_without_cache: float
    cache_bytes: int

    @property
    def speedup(self) -> float:
        return self.seconds_without_cache / self.seconds_with_cache


def time_generation(
    model: LlamaDecoder, prompt_ids: Sequence[int], new_tokens: int = 32, repeats: int = 1
) -> CacheTiming:
    """Measure the KV cache's speed-up on this machine (greedy decoding, no end-of-sequence
    stop, so both runs produce exactly ``new_tokens`` tokens)."""
    repeats = checks.positive_int(repeats, "repeats")

    def best_of(use_cache: bool) -> tuple[float, Generation]:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = generate(model, prompt_ids, new_tokens, use_cache=use_cache)
            times.append(time.perf_counter() - start)
        return min(times), result

    with_cache, result = best_of(True)
    without_cache, _ = best_of(False)
    return CacheTiming(new_tokens, len(prompt_ids), with_cache, without_cache, result.cache_bytes)
