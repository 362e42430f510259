"""Chapter 9: the generation loop step by step, and the KV cache's speed-up position by position.

- :func:`generation_steps`: generate with :meth:`SmolLM2.generate
  <transformer_tutorial.pretrained.SmolLM2.generate>` and return, for every step, the
  distribution the token was drawn from (its most likely candidates), the token chosen and the
  text so far, until the end-of-sequence token or ``max_new_tokens``.
- :func:`steps_table` and :func:`steps_figure`: the same steps as text and as a grid.
- :func:`time_steps_by_position`: the time of one generation step at a given position, with
  and without the KV cache (medians of repeated, warmed-up measurements).
- :func:`speedup_figure`: those times and their ratio against the position.
- :func:`distribution_chart`: the most likely next tokens as bars.
- :func:`next_token_explorer`: the next-token distribution under temperature, top-k and top-p.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from transformer_tutorial.checks import (
    as_float_array,
    float_array,
    instance_of,
    instances,
    int_in_range,
    int_sequence,
    positive_int,
    token_id_list,
)
from transformer_tutorial.cost import MAX_REPEATS, sample_seconds, single_threaded
from transformer_tutorial.llama import LlamaDecoder
from transformer_tutorial.plots import (
    ATTENTION_CMAP,
    CATEGORY_COLORS,
    bar_chart,
    new_axes,
    plain_text,
)
from transformer_tutorial.pretrained import GeneratedText, SmolLM2
from transformer_tutorial.sampling import next_token_distribution
from transformer_tutorial.widgets import Control, Explorer, bars, frame

__all__ = [
    "GenerationStep",
    "generation_steps",
    "steps_table",
    "steps_figure",
    "StepTimes",
    "time_steps_by_position",
    "speedup_figure",
    "NEXT_TOKEN_PROMPT",
    "NEXT_TOKEN_TEMPERATURES",
    "NEXT_TOKEN_FILTERS",
    "NEXT_TOKEN_SHOWN",
    "next_token_explorer",
    "distribution_chart",
]


@dataclass(frozen=True)
class GenerationStep:
    """One step of the loop: ``context`` tokens were read; the ``top`` most likely candidates
    ``(token, probability)`` of the distribution drawn from; the ``chosen`` token, its
    ``probability`` and its ``rank`` in that distribution (0 = most likely); the completion
    ``text`` after appending it."""

    context: int
    candidates: tuple[tuple[str, float], ...]
    chosen: str
    chosen_id: int
    probability: float
    rank: int
    text: str


def generation_steps(
    smollm2: SmolLM2,
    prompt: str,
    max_new_tokens: int = 20,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    top: int = 5,
) -> tuple[list[GenerationStep], GeneratedText]:
    """Generate from ``prompt`` (the arguments of :meth:`SmolLM2.generate`) and read every
    step back from the logits the generation recorded: the distribution
    (:func:`~transformer_tutorial.sampling.next_token_distribution` with the same settings),
    its ``top`` candidates, the token chosen. Returns the steps and the generation itself.

    Greedy decoding (``temperature=0``) draws from a distribution with all its mass on one
    token; its steps show the model's own distribution (temperature 1) instead, of which the
    chosen token is the most likely."""
    smollm2 = instance_of(smollm2, "smollm2", SmolLM2)
    top = positive_int(top, "top")
    result = smollm2.generate(prompt, max_new_tokens, temperature, top_k, top_p, seed)
    generation = result.generation
    steps = []
    for i, (logits, token) in enumerate(zip(generation.step_logits, generation.new_ids,
                                            strict=True)):
        probs = next_token_distribution(logits, temperature or 1.0, top_k, top_p)
        order = np.argsort(-probs, kind="stable")
        names = smollm2.token_strings([int(t) for t in order[:top]])
        candidates = tuple((s, float(probs[t])) for s, t in zip(names, order[:top], strict=True))
        text = smollm2.tokenizer.decode(list(generation.new_ids[: i + 1]),
                                        skip_special_tokens=False)
        steps.append(GenerationStep(
            context=len(generation.prompt_ids) + i,
            candidates=candidates,
            chosen=smollm2.token_strings([token])[0],
            chosen_id=int(token),
            probability=float(probs[token]),
            rank=int(np.flatnonzero(order == token)[0]),
            text=text,
        ))  # fmt: skip
    return steps, result


def steps_table(steps: Sequence[GenerationStep], top: int = 3) -> str:
    """The steps as lines of text: step, tokens read, the ``top`` candidates with their
    probabilities, the token chosen."""
    steps = instances(steps, "steps", GenerationStep)
    top = positive_int(top, "top")
    lines = [f"{'step':>4} {'read':>5}  {'most likely next tokens':<52} chosen"]
    for i, step in enumerate(steps):
        cands = "  ".join(f"{tok!r} {p:.2f}" for tok, p in step.candidates[:top])
        lines.append(f"{i + 1:>4} {step.context:>5}  {cands:<52} {step.chosen!r}")
    return "\n".join(lines)


def _label(token: str) -> str:
    """A token as figure text: quoted (a leading space shows), dollar signs escaped so that
    matplotlib never reads them as mathtext."""
    return plain_text(repr(token), "token")


def steps_figure(steps: Sequence[GenerationStep], title: str | None = None) -> Figure:
    """One row per step, one column per candidate (most likely first): the cell's colour is
    the probability, its text the token and probability; the chosen token is outlined."""
    steps = instances(steps, "steps", GenerationStep, allow_empty=False)
    top = len(steps[0].candidates)
    if top < 1 or any(len(s.candidates) != top for s in steps):
        raise ValueError("steps must all hold the same number (>= 1) of candidates")
    title = None if title is None else plain_text(title, "title")
    probs = np.array([[p for _, p in s.candidates] for s in steps])
    ax = new_axes(None, figsize=(1.6 * top + 2.2, 0.45 * len(steps) + 1.4))
    image = ax.imshow(probs, cmap=ATTENTION_CMAP, vmin=0.0, vmax=1.0, aspect="auto")
    for row, step in enumerate(steps):
        for col, (token, p) in enumerate(step.candidates):
            r, g, b, _ = image.cmap(image.norm(p))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(col, row, f"{_label(token)}\n{p:.2f}", ha="center", va="center",
                    fontsize=7, color="white" if dark else "black")
        if step.rank < top:
            ax.add_patch(Rectangle((step.rank - 0.5, row - 0.5), 1, 1, fill=False,
                                   edgecolor=CATEGORY_COLORS[5], linewidth=2.5))
    ax.set_xticks(range(top), [f"rank {k + 1}" for k in range(top)], fontsize=8)
    ax.set_yticks(range(len(steps)),
                  [f"step {i + 1} (reads {s.context})" for i, s in enumerate(steps)], fontsize=8)
    ax.set_xlabel("candidates for the next token, most likely first (outlined: chosen)")
    ax.figure.colorbar(image, ax=ax, fraction=0.04, label="probability")
    if title:
        ax.set_title(title)
    return ax.figure


@dataclass(frozen=True)
class StepTimes:
    """Seconds of one generation step at each of ``positions`` (the token being produced
    reads ``position`` tokens), ``(positions, repeats)`` each: ``without_cache`` runs the
    model over all ``position`` tokens; ``with_cache`` feeds the one newest token after a
    cache of ``position - 1``."""

    positions: tuple[int, ...]
    without_cache: np.ndarray
    with_cache: np.ndarray

    def medians_ms(self) -> tuple[np.ndarray, np.ndarray]:
        """Median milliseconds per step without and with the cache, ``(positions,)`` each."""
        return 1e3 * np.median(self.without_cache, 1), 1e3 * np.median(self.with_cache, 1)

    @property
    def speedup(self) -> np.ndarray:
        """Median time without the cache over median time with it, per position."""
        without, with_cache = self.medians_ms()
        return without / with_cache


@torch.no_grad()
def time_steps_by_position(
    model: LlamaDecoder,
    token_ids: Sequence[int],
    positions: Sequence[int] = (8, 16, 32, 64, 128),
    repeats: int = 3,
    warmup: int = 1,
) -> StepTimes:
    """Time one step at each position of ``positions`` on one thread (CPU time, see
    :func:`~transformer_tutorial.cost.sample_seconds`), reading the first
    ``position`` ids of ``token_ids``: the whole prefix without a cache, the last token after a
    cache of the others with one (the cache is built beforehand and not timed)."""
    model = instance_of(model, "model", LlamaDecoder)
    ids = token_id_list(token_ids, "token_ids", model.config.vocab_size)
    positions = tuple(int_sequence(positions, "positions"))
    if (
        not positions
        or min(positions) < 2
        or max(positions) > min(len(ids), model.config.max_positions)
    ):
        raise ValueError(
            f"positions must lie in [2, len(token_ids)] = [2, {len(ids)}] (and within the "
            f"model's context of {model.config.max_positions}), got {positions}"
        )
    repeats = int_in_range(repeats, "repeats", 1, MAX_REPEATS)
    warmup = int_in_range(warmup, "warmup", 0, MAX_REPEATS)
    without = np.empty((len(positions), repeats))
    with_cache = np.empty((len(positions), repeats))
    with single_threaded():
        for i, p in enumerate(positions):
            prefix = torch.tensor([ids[:p]])
            cache = model(prefix[:, :-1]).cache
            last = prefix[:, -1:]
            without[i] = sample_seconds(lambda prefix=prefix: model(prefix), repeats, warmup)
            with_cache[i] = sample_seconds(lambda c=cache, t=last: model(t, c), repeats, warmup)
    return StepTimes(positions, without, with_cache)


def speedup_figure(times: StepTimes, title: str | None = None) -> Figure:
    """Left: median time of one step against the position, with and without the cache
    (log–log, bars from fastest to slowest repeat). Right: their ratio, the speed-up."""
    times = instance_of(times, "times", StepTimes)
    shape = (len(int_sequence(times.positions, "times.positions")), None)
    for name in ("without_cache", "with_cache"):
        seconds = float_array(getattr(times, name), f"times.{name}", "(positions, repeats)",
                              shape=shape)  # fmt: skip
        if (seconds <= 0).any():
            raise ValueError(f"times.{name} must hold times > 0 (drawn on log axes)")
    title = None if title is None else plain_text(title, "title")
    figure = Figure(figsize=(9.0, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2)
    x = np.array(times.positions, dtype=float)
    for label, t, color in (("without cache", times.without_cache, CATEGORY_COLORS[0]),
                            ("with cache", times.with_cache, CATEGORY_COLORS[1])):
        ms = 1e3 * t
        median = np.median(ms, 1)
        left.errorbar(x, median, yerr=[median - ms.min(1), ms.max(1) - median], fmt="-o",
                      color=color, capsize=3, label=label)
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("position (tokens read)")
    left.set_ylabel("CPU time per step (ms), measured")
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=8)
    right.plot(x, times.speedup, "-o", color=CATEGORY_COLORS[2])
    right.set_xscale("log", base=2)
    right.set_xlabel("position (tokens read)")
    right.set_ylabel("speed-up (median without / with)")
    right.set_ylim(bottom=0)
    right.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    return figure


# -- Figures: the next-token distribution --------------------------------------------------


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


# -- The chapter's explorer ----------------------------------------------------------------

NEXT_TOKEN_PROMPT = "Thanks for lunch, I had a"
NEXT_TOKEN_TEMPERATURES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3,
                           1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.2, 2.4, 2.6, 2.8, 3.0)  # fmt: skip
# One filter at a time, so that each teaches what it does: top-k keeps the k most likely
# tokens, top-p (nucleus) the fewest whose probability adds up to p.
NEXT_TOKEN_FILTERS = {
    "none": {}, "top-k 50": {"top_k": 50}, "top-k 10": {"top_k": 10}, "top-k 3": {"top_k": 3},
    "top-p 0.95": {"top_p": 0.95}, "top-p 0.9": {"top_p": 0.9}, "top-p 0.75": {"top_p": 0.75},
    "top-p 0.5": {"top_p": 0.5},
}  # fmt: skip
NEXT_TOKEN_SHOWN = 12


@functools.lru_cache(maxsize=4)
def _next_token_logits(prompt: str) -> Any:
    from transformer_tutorial.pretrained import load_smollm2

    return load_smollm2().next_token_logits(prompt)


def next_token_data(temperature: float, sampling_filter: str) -> dict[str, Any]:
    """SmolLM2's distribution over the token after :data:`NEXT_TOKEN_PROMPT`, with
    ``temperature`` and one of :data:`NEXT_TOKEN_FILTERS` (``"none"``, ``"top-k 10"``,
    ``"top-p 0.9"``, ...)."""
    from transformer_tutorial.pretrained import load_smollm2
    from transformer_tutorial.sampling import next_token_distribution

    if sampling_filter not in NEXT_TOKEN_FILTERS:
        raise ValueError(
            f"sampling_filter must be one of {list(NEXT_TOKEN_FILTERS)}, got {sampling_filter!r}"
        )
    probs = next_token_distribution(
        _next_token_logits(NEXT_TOKEN_PROMPT), temperature, **NEXT_TOKEN_FILTERS[sampling_filter]
    )
    kept = int((probs > 0).sum())
    order = np.argsort(-probs, kind="stable")[: min(kept, NEXT_TOKEN_SHOWN)]
    labels = [repr(s) for s in load_smollm2().token_strings([int(i) for i in order])]
    mass = float(probs[order].sum())
    return frame(
        bars(probs[order], labels, vmin=0.0, vmax=1.0, value_title="probability",
             hover="P({label}) = {value}", digits=3),
        title=f"temperature {temperature:g}, filter: {sampling_filter}: {kept} possible "
        f"next tokens; the {len(order)} shown hold {mass:.0%} of the probability",
        description=f"Most likely next token {labels[0]} with probability "
        f"{probs[order[0]]:.2f}; {kept} tokens possible; the {len(order)} shown hold "
        f"{mass:.0%}.",
    )  # fmt: skip


def next_token_explorer() -> Explorer:
    """Chapter 9: the next-token distribution under temperature, top-k and top-p."""
    return Explorer(
        f'The next token after "{NEXT_TOKEN_PROMPT}"',
        (
            Control("temperature", NEXT_TOKEN_TEMPERATURES, label="temperature", default=1.0),
            Control("sampling_filter", tuple(NEXT_TOKEN_FILTERS), label="filter"),
        ),
        next_token_data,
        caption="SmolLM2-135M-Instruct (4-bit weights) run by the book's own decoder. Low "
        "temperature piles the probability on the favourite; high temperature spreads it over "
        "many tokens. Top-k keeps the k most likely tokens, top-p the fewest whose probability "
        "adds up to p; both renormalize what they keep.",
    )
