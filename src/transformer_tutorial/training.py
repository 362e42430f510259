"""Train the encoder–decoder on toy sequence tasks, reproducibly, in seconds on a CPU.

* Tasks (:data:`TASKS`): ``"reverse"``, ``"copy"`` and ``"sort"`` a random string of letters
  from :data:`SYMBOLS`. Batches come from ``numpy.random.default_rng(seed)``: the same seed
  gives the same data, on any machine.
* :func:`warmup_learning_rate`: the schedule of "Attention Is All You Need" (section 5.3),
  :math:`lrate = d_{model}^{-0.5} \\cdot \\min(step^{-0.5},\\ step \\cdot warmup\\_steps^{-1.5})`.
* :func:`train`: teacher forcing with cross-entropy over the target tokens, Adam with the
  paper's :math:`\\beta_1 = 0.9, \\beta_2 = 0.98, \\epsilon = 10^{-9}`, a tqdm progress bar
  (only in an interactive session, never in the book build), and snapshots of the
  cross-attention on one fixed example at chosen steps.
* :func:`target_loss` (what training minimises, every position computed at once with the
  whole target as input) and :func:`prefix_only_loss` (each position computed from the tokens
  before it only, as in generation): equal for a causal decoder, far apart for one that
  cheats by looking at the answer.
* :func:`sequence_accuracy`: the share of held-out sources whose greedy decoding is exactly
  right, ``<eos>`` included.

Training and evaluation run on one thread (restored afterwards): the matrices are tiny, and on
a busy two-core machine a second thread makes every step many times slower.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from transformer_tutorial import checks
from transformer_tutorial.cost import single_threaded
from transformer_tutorial.models import BOS_ID, EOS_ID, PAD_ID, EncoderDecoder, greedy_decode
from transformer_tutorial.record import AttentionRecord
from transformer_tutorial.tokens import SPECIAL_TOKENS, Vocabulary
from transformer_tutorial.widgets import STATIC_ENV_VAR

__all__ = [
    "TASKS",
    "SYMBOLS",
    "task_vocabulary",
    "task_target",
    "TaskBatch",
    "make_batch",
    "warmup_learning_rate",
    "TrainConfig",
    "TrainingRun",
    "build_model",
    "train",
    "sequence_accuracy",
    "snapshot_example",
    "target_loss",
    "prefix_only_loss",
]

TASKS = ("reverse", "copy", "sort")
SYMBOLS: tuple[str, ...] = tuple("abcdefghij")


def task_vocabulary() -> Vocabulary:
    """The four special tokens, then the letters of :data:`SYMBOLS` (ids 4, 5, ...)."""
    return Vocabulary(SPECIAL_TOKENS + SYMBOLS)


def _check_task(task: str) -> str:
    return checks.one_of(task, "task", TASKS)


def task_target(task: str, source: Sequence[int]) -> list[int]:
    """The answer to ``task`` for one source sequence (ids, no special tokens)."""
    _check_task(task)
    source = checks.int_sequence(source, "source")
    if task == "reverse":
        return source[::-1]
    if task == "sort":
        return sorted(source)
    return source


@dataclass(frozen=True)
class TaskBatch:
    """``src`` ``(batch, max_len)``: the letters, right-padded with ``<pad>``; ``tgt``
    ``(batch, max_len + 2)``: ``<bos>`` answer ``<eos>``, right-padded."""

    src: torch.Tensor
    tgt: torch.Tensor


def _lengths(min_len: int, max_len: int) -> None:
    checks.positive_int(min_len, "min_len")
    checks.positive_int(max_len, "max_len")
    if min_len > max_len:
        raise ValueError(f"need min_len <= max_len, got {min_len} > {max_len}")


def make_batch(
    task: str,
    batch_size: int,
    rng: np.random.Generator | int,
    min_len: int = 3,
    max_len: int = 8,
) -> TaskBatch:
    """``batch_size`` random sources of ``min_len``..``max_len`` letters and their answers.

    ``rng`` is a ``numpy.random.Generator`` (consumed: successive calls give successive
    batches) or a seed. Deterministic: the same seed gives the same batch.
    """
    _check_task(task)
    _lengths(min_len, max_len)
    checks.positive_int(batch_size, "batch_size")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(checks.non_negative_int(rng, "rng"))
    first = len(SPECIAL_TOKENS)
    lengths = rng.integers(min_len, max_len + 1, size=batch_size)
    letters = rng.integers(first, first + len(SYMBOLS), size=(batch_size, max_len))
    src = np.full((batch_size, max_len), PAD_ID, dtype=np.int64)
    tgt = np.full((batch_size, max_len + 2), PAD_ID, dtype=np.int64)
    for row, (n, seq) in enumerate(zip(lengths, letters, strict=True)):
        src[row, :n] = seq[:n]
        tgt[row, : n + 2] = [BOS_ID, *task_target(task, seq[:n]), EOS_ID]
    return TaskBatch(torch.from_numpy(src), torch.from_numpy(tgt))


def warmup_learning_rate(
    step: int | np.ndarray, d_model: int, warmup_steps: int, factor: float = 1.0
) -> float | np.ndarray:
    """:math:`lrate = factor \\cdot d_{model}^{-0.5} \\cdot \\min(step^{-0.5},\\ step \\cdot
    warmup\\_steps^{-1.5})` for ``step`` >= 1 (scalar or array).

    It grows linearly for ``warmup_steps`` steps, peaks at
    :math:`factor \\cdot (d_{model} \\cdot warmup\\_steps)^{-0.5}`, then decays like
    :math:`step^{-0.5}`.
    """
    steps = checks.as_float_array(step, "step")
    if steps.size == 0 or (steps < 1).any() or not np.isfinite(steps).all():
        raise ValueError(f"step must be >= 1 (steps count from 1), got {step!r}")
    checks.positive_int(d_model, "d_model")
    checks.positive_int(warmup_steps, "warmup_steps")
    factor = checks.positive_number(factor, "factor")
    lr = factor * d_model**-0.5 * np.minimum(steps**-0.5, steps * warmup_steps**-1.5)
    return float(lr) if lr.ndim == 0 else lr


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; the same config gives the same model."""

    task: str = "reverse"
    steps: int = 300
    batch_size: int = 64
    min_len: int = 3
    max_len: int = 8
    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 128
    num_layers: int = 2
    norm_first: bool = False
    causal: bool = True
    warmup_steps: int = 40
    lr_factor: float = 0.4
    seed: int = 0
    snapshot_steps: tuple[int, ...] = tuple(range(0, 301, 10))

    def __post_init__(self) -> None:
        _check_task(self.task)
        _lengths(self.min_len, self.max_len)
        for name in ("steps", "batch_size", "d_model", "num_heads", "d_ff", "num_layers",
                     "warmup_steps"):  # fmt: skip
            checks.positive_int(getattr(self, name), name)
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model must be divisible by num_heads, got d_model={self.d_model}, "
                f"num_heads={self.num_heads}"
            )
        checks.positive_number(self.lr_factor, "lr_factor")
        checks.non_negative_int(self.seed, "seed")
        for name in ("norm_first", "causal"):
            checks.instance_of(getattr(self, name), name, bool)
        steps = checks.int_sequence(self.snapshot_steps, "snapshot_steps")
        bad = [s for s in steps if not 0 <= s <= self.steps]
        if bad:
            raise ValueError(
                f"snapshot_steps must lie in [0, steps] = [0, {self.steps}], got {bad}"
            )


@dataclass
class TrainingRun:
    """The trained ``model``, the loss and learning rate of every step, the cross-attention
    ``snapshots`` ``{step: AttentionRecord}`` on :func:`snapshot_example`, and the
    wall-clock ``seconds`` the training loop took."""

    config: TrainConfig
    model: EncoderDecoder
    losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    snapshots: dict[int, AttentionRecord] = field(default_factory=dict)
    seconds: float = 0.0


def build_model(config: TrainConfig) -> EncoderDecoder:
    """A freshly initialised :class:`EncoderDecoder` for ``config``, seeded by ``config.seed``
    (without touching the global random state)."""
    checks.instance_of(config, "config", TrainConfig)
    vocab = len(task_vocabulary())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return EncoderDecoder(
            vocab, vocab, config.d_model, config.num_heads, config.d_ff, config.num_layers,
            config.num_layers, max_len=config.max_len + 2, norm_first=config.norm_first,
            share_embeddings=True, causal=config.causal,
        )  # fmt: skip


def snapshot_example(config: TrainConfig) -> TaskBatch:
    """The one source watched during training: the first ``max_len`` letters, in order."""
    checks.instance_of(config, "config", TrainConfig)
    first = len(SPECIAL_TOKENS)
    source = list(range(first, first + min(config.max_len, len(SYMBOLS))))
    target = [BOS_ID, *task_target(config.task, source), EOS_ID]
    return TaskBatch(torch.tensor([source]), torch.tensor([target]))


@torch.no_grad()
def _cross_attention(model: EncoderDecoder, example: TaskBatch) -> AttentionRecord:
    was_training = model.training
    model.eval()
    out = model(example.src, example.tgt[:, :-1])
    model.train(was_training)
    vocab = task_vocabulary()
    return out.records(vocab.decode(example.src[0]), vocab.decode(example.tgt[0, :-1]))["cross"]


def _check_model_batch(model: object, batch: object) -> None:
    checks.instance_of(model, "model", EncoderDecoder)
    checks.instance_of(batch, "batch", TaskBatch)


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of :math:`-\\log p(\\text{target})` over the non-padding targets;
    ``logits`` ``(batch, tgt_len, vocab)``, ``targets`` ``(batch, tgt_len)``."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=PAD_ID
    )


def _show_progress(progress: bool | None) -> bool:
    """By default a bar only in an interactive session, never in the book build."""
    if progress is not None:
        return progress
    if os.environ.get(STATIC_ENV_VAR):
        return False
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def train(
    config: TrainConfig, progress: bool | None = None, num_threads: int | None = 1
) -> TrainingRun:
    """Train a fresh model on ``config.task`` for ``config.steps`` steps; reproducible.

    Step :math:`s` (from 1) draws batch :math:`s` of the stream ``default_rng(config.seed)``,
    sets the learning rate to :func:`warmup_learning_rate` and takes one Adam step on the
    cross-entropy of the target tokens (padding ignored). ``progress``: show a tqdm bar
    (default: only when interactive and not building the book). ``num_threads``: torch's
    intra-op threads during training, restored afterwards (``None``: leave them). One thread is
    the default because the matrices are tiny: on two cores, a second thread costs more in
    synchronisation than it saves, and on a busy machine it can be many times slower.
    """
    checks.instance_of(config, "config", TrainConfig)
    if progress is not None:
        checks.instance_of(progress, "progress", bool)
    if num_threads is not None:
        num_threads = checks.positive_int(num_threads, "num_threads")
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _train(config, progress)
    finally:
        torch.set_num_threads(previous)


def _diverged(config: TrainConfig, step: int) -> ValueError:
    return ValueError(
        f"training diverged at step {step} (the loss or the weights are no longer finite); "
        f"lower lr_factor (now {config.lr_factor}) or raise warmup_steps "
        f"(now {config.warmup_steps})"
    )


def _train(config: TrainConfig, progress: bool | None) -> TrainingRun:
    from tqdm.auto import tqdm

    model = build_model(config)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    rng = np.random.default_rng(config.seed)
    example = snapshot_example(config)
    run = TrainingRun(config, model)
    if 0 in config.snapshot_steps:
        run.snapshots[0] = _cross_attention(model, example)
    start = time.perf_counter()
    bar = tqdm(range(1, config.steps + 1), desc=f"training on {config.task}", leave=False,
               disable=not _show_progress(progress))
    for step in bar:
        batch = make_batch(config.task, config.batch_size, rng, config.min_len, config.max_len)
        lr = warmup_learning_rate(step, config.d_model, config.warmup_steps, config.lr_factor)
        for group in optimizer.param_groups:
            group["lr"] = lr
        try:
            loss = _cross_entropy(model(batch.src, batch.tgt[:, :-1]).logits, batch.tgt[:, 1:])
        except ValueError as err:  # the model refuses its own non-finite activations
            if step == 1:
                raise
            raise _diverged(config, step) from err
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if not math.isfinite(loss.item()):
            raise _diverged(config, step)
        run.losses.append(loss.item())
        run.learning_rates.append(lr)
        if step in config.snapshot_steps:
            run.snapshots[step] = _cross_attention(model, example)
        if step % 25 == 0:
            bar.set_postfix(loss=f"{run.losses[-1]:.3f}")
    bar.close()
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise _diverged(config, config.steps)
    run.seconds = time.perf_counter() - start
    model.eval()
    return run


@single_threaded()
def sequence_accuracy(
    model: EncoderDecoder,
    task: str,
    num_examples: int = 500,
    seed: int = 12345,
    min_len: int = 3,
    max_len: int = 8,
) -> float:
    """Share of ``num_examples`` fresh sources (``default_rng(seed)``, a different stream from
    training) whose greedy decoding equals the answer followed by ``<eos>``, exactly."""
    checks.instance_of(model, "model", EncoderDecoder)
    batch = make_batch(task, num_examples, seed, min_len, max_len)
    out = greedy_decode(model, batch.src, max_len=batch.tgt.shape[1] - 1)
    expected = batch.tgt[:, 1:]
    width = max(out.shape[1], expected.shape[1])
    out = F.pad(out, (0, width - out.shape[1]), value=PAD_ID)
    expected = F.pad(expected, (0, width - expected.shape[1]), value=PAD_ID)
    return (out == expected).all(dim=1).float().mean().item()


@torch.no_grad()
@single_threaded()
def target_loss(model: EncoderDecoder, batch: TaskBatch) -> float:
    """The training loss on ``batch``: one forward pass with the whole target
    ``<bos> y_1 ... y_n`` as the decoder's input, cross-entropy of ``y_1 ... <eos>``."""
    _check_model_batch(model, batch)
    return _cross_entropy(model(batch.src, batch.tgt[:, :-1]).logits, batch.tgt[:, 1:]).item()


@torch.no_grad()
@single_threaded()
def prefix_only_loss(model: EncoderDecoder, batch: TaskBatch) -> float:
    """The same cross-entropy, but the prediction at position :math:`t` comes from a forward
    pass on the prefix ``tgt[:, :t+1]`` only: what the model sees when it generates. For a
    decoder with the causal mask it equals :func:`target_loss` (up to rounding)."""
    _check_model_batch(model, batch)
    inputs, targets = batch.tgt[:, :-1], batch.tgt[:, 1:]
    logits = torch.stack(
        [model(batch.src, inputs[:, : t + 1]).logits[:, t] for t in range(inputs.shape[1])], 1
    )
    return _cross_entropy(logits, targets).item()
