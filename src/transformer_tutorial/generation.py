"""Generating text with a decoder, one token at a time, with or without a KV cache (chapter 9).

Each step reads the sequence so far, turns the last position's logits into a distribution
(:func:`~transformer_tutorial.sampling.next_token_distribution`), picks a token and appends
it; generation stops at the end-of-sequence token or after ``max_new_tokens``.

Without a cache every step recomputes the keys and values of the whole sequence. With the
:class:`~transformer_tutorial.llama.KVCache`, a step feeds only the newest token and reuses
the stored keys and values: the causal mask guarantees earlier tokens never see later ones, so
their keys and values are the same as before and the logits are identical (up to floating-point
rounding).

:func:`autoregressive_decode` is that loop, the book's only one: :func:`generate` runs it for
SmolLM2, :func:`~transformer_tutorial.models.greedy_decode` and
:func:`~transformer_tutorial.models.greedy_generate` for the small models of chapter 8.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from transformer_tutorial import checks
from transformer_tutorial.cost import single_threaded
from transformer_tutorial.llama import LlamaDecoder
from transformer_tutorial.sampling import check_filters, next_token_distribution, sample_token

__all__ = [
    "greedy_choice",
    "autoregressive_decode",
    "Generation",
    "generate",
    "CacheTiming",
    "time_generation",
]

STOP_EOS = "end of sequence"
STOP_LENGTH = "max_new_tokens"


def greedy_choice(logits: torch.Tensor) -> torch.Tensor:
    """Greedy decoding's choice: the most probable token, ``(batch, vocab) -> (batch,)``."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or not logits.is_floating_point():
        raise ValueError(
            f"logits must be a float tensor (batch, vocab), got {checks.shape_of(logits)}"
        )
    return logits.argmax(-1)


@torch.no_grad()
def autoregressive_decode(
    next_logits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ids: torch.Tensor,
    max_new_tokens: int,
    choose: Callable[[torch.Tensor], torch.Tensor] = greedy_choice,
    eos_id: int | None = None,
    pad_id: int = 0,
) -> torch.Tensor:
    """The generation loop: predict the next token, choose it, append it, repeat.

    ``ids``: ``(batch, length)`` token ids to start from. ``next_logits(ids, new)`` returns the
    logits ``(batch, vocab)`` of the token after ``ids``; ``new`` holds the tokens appended
    since its last call (all of ``ids`` at the first), for a model that keeps a KV cache.
    ``choose`` turns them into one token per sequence ``(batch,)`` (:func:`greedy_choice` by
    default). A sequence that has produced ``eos_id`` is finished and gets ``pad_id`` from
    then on; the loop stops when every sequence is finished or after ``max_new_tokens``.
    Returns ``(batch, length + new)`` ids, the starting ones first.
    """
    if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.is_floating_point():
        raise ValueError(f"ids must be integers (batch, length), got {checks.shape_of(ids)}")
    max_new_tokens = checks.positive_int(max_new_tokens, "max_new_tokens")
    for name, fn in (("next_logits", next_logits), ("choose", choose)):
        if not callable(fn):
            raise ValueError(f"{name} must be a function of tensors, got {type(fn).__name__}")
    if eos_id is not None:
        eos_id = checks.non_negative_int(eos_id, "eos_id")
    pad_id = checks.non_negative_int(pad_id, "pad_id")
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    new = ids
    for _ in range(max_new_tokens):
        step = choose(next_logits(ids, new)).to(ids)
        if eos_id is not None:
            step = torch.where(done, torch.full_like(step, pad_id), step)
            done = done | (step == eos_id)
        new = step[:, None]
        ids = torch.cat([ids, new], dim=1)
        if done.all():
            break
    return ids


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
    step_logits: list[np.ndarray] = []
    cache = None

    def next_logits(ids: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        nonlocal cache
        if not use_cache:
            return model(ids).logits[:, -1]
        out = model(new, cache)
        cache = out.cache
        return out.logits[:, -1]

    def choose(logits: torch.Tensor) -> torch.Tensor:
        step_logits.append(logits[0].float().numpy())
        probs = next_token_distribution(step_logits[-1], temperature, top_k, top_p)
        token = int(np.argmax(probs)) if temperature == 0 else sample_token(probs, rng)
        return torch.tensor([token])

    ids = autoregressive_decode(next_logits, torch.tensor([prompt]), max_new_tokens, choose,
                                eos_id)  # fmt: skip
    new_ids = ids[0, len(prompt):].tolist()
    stop_reason = STOP_EOS if eos_id is not None and new_ids[-1] == eos_id else STOP_LENGTH
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
