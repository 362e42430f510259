"""Toy tasks, the warm-up schedule, and the reversal model trained once for the whole session."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transformer_tutorial.models import BOS_ID, EOS_ID, PAD_ID
from transformer_tutorial.training import (
    TrainConfig,
    _show_progress,
    make_batch,
    prefix_only_loss,
    sequence_accuracy,
    snapshot_example,
    target_loss,
    task_target,
    task_vocabulary,
    train,
    warmup_learning_rate,
)
from transformer_tutorial.widgets import STATIC_ENV_VAR


@pytest.fixture(scope="session")
def reversal_run():
    """The chapter's model: reversal, the default (seeded) configuration."""
    return train(TrainConfig(), progress=False)


def test_reversal_reaches_95_percent_whole_sequence_accuracy(reversal_run):
    config = reversal_run.config
    assert (config.task, config.steps, config.seed) == ("reverse", 300, 0)
    assert sequence_accuracy(reversal_run.model, "reverse", num_examples=500) >= 0.95
    assert reversal_run.losses[-1] < 0.1 < 2.0 < reversal_run.losses[0]
    assert len(reversal_run.losses) == len(reversal_run.learning_rates) == config.steps


def test_trained_model_reverses_a_word(reversal_run):
    from transformer_tutorial.models import greedy_decode

    vocab = task_vocabulary()
    src = torch.tensor([[vocab.id_of(c) for c in "badge"]])
    out = greedy_decode(reversal_run.model, src, max_len=9)
    assert vocab.decode(out[0]) == [*"egdab", "<eos>"]


def test_snapshots_show_cross_attention_turning_anti_diagonal(reversal_run):
    config = reversal_run.config
    assert sorted(reversal_run.snapshots) == list(config.snapshot_steps)
    first, last = reversal_run.snapshots[0], reversal_run.snapshots[config.steps]
    n = config.max_len
    assert last.kind == "cross" and last.weights.shape == (2, 4, n + 1, n)
    assert last.key_tokens == tuple("abcdefgh") and last.query_tokens[0] == "<bos>"
    # query t (having read t target letters) must find source letter n-1-t
    anti = np.arange(n)[::-1]

    def on_anti_diagonal(record, layer):
        return record.weights[layer, :, np.arange(n), anti].mean()

    last_layer = config.num_layers - 1
    assert on_anti_diagonal(first, last_layer) < 0.2 < 0.5 < on_anti_diagonal(last, last_layer)


def test_training_is_reproducible():
    config = TrainConfig(steps=6, batch_size=8, snapshot_steps=(0, 6))
    a, b = train(config, progress=False), train(config, progress=False)
    assert a.losses == b.losses
    np.testing.assert_array_equal(a.snapshots[6].weights, b.snapshots[6].weights)
    other = train(TrainConfig(steps=6, batch_size=8, seed=1, snapshot_steps=()), progress=False)
    assert other.losses != a.losses


def test_training_restores_the_thread_count():
    before = torch.get_num_threads()
    train(TrainConfig(steps=1, batch_size=2, snapshot_steps=()), progress=False, num_threads=1)
    assert torch.get_num_threads() == before


def test_no_progress_bar_in_the_book_build(monkeypatch):
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    assert _show_progress(None) is False
    assert _show_progress(True) is True


@pytest.mark.parametrize(
    ("task", "expected"), [("reverse", [6, 4, 5]), ("copy", [5, 4, 6]), ("sort", [4, 5, 6])]
)
def test_task_targets(task, expected):
    assert task_target(task, [5, 4, 6]) == expected


def test_batches_are_deterministic_and_well_formed():
    a = make_batch("reverse", 16, 7, min_len=2, max_len=5)
    b = make_batch("reverse", 16, np.random.default_rng(7), min_len=2, max_len=5)
    assert torch.equal(a.src, b.src) and torch.equal(a.tgt, b.tgt)
    assert not torch.equal(a.src, make_batch("reverse", 16, 8, min_len=2, max_len=5).src)
    assert a.src.shape == (16, 5) and a.tgt.shape == (16, 7)
    first_letter, vocab_size = 4, len(task_vocabulary())
    for src, tgt in zip(a.src.tolist(), a.tgt.tolist(), strict=True):
        n = sum(i != PAD_ID for i in src)
        assert 2 <= n <= 5 and all(i == PAD_ID for i in src[n:])
        assert all(first_letter <= i < vocab_size for i in src[:n])
        assert tgt[: n + 2] == [BOS_ID, *src[:n][::-1], EOS_ID]
        assert all(i == PAD_ID for i in tgt[n + 2 :])


def test_the_same_seed_gives_the_same_stream_of_batches():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(3):
        assert torch.equal(make_batch("sort", 4, rng_a).src, make_batch("sort", 4, rng_b).src)
    assert make_batch("sort", 4, 3).src.tolist() == [
        row.tolist() for row in make_batch("sort", 4, np.random.default_rng(3)).src
    ]


def test_snapshot_example_is_the_alphabet_reversed():
    example = snapshot_example(TrainConfig(max_len=4))
    vocab = task_vocabulary()
    assert vocab.decode(example.src[0]) == list("abcd")
    assert vocab.decode(example.tgt[0]) == ["<bos>", *"dcba", "<eos>"]


def test_warmup_learning_rate_values():
    # lrate = d^-0.5 * min(step^-0.5, step * warmup^-1.5), d = 64, warmup = 40
    assert warmup_learning_rate(1, 64, 40) == pytest.approx(0.125 * 40**-1.5)
    assert warmup_learning_rate(40, 64, 40) == pytest.approx(0.125 / np.sqrt(40))
    assert warmup_learning_rate(160, 64, 40) == pytest.approx(0.5 * 0.125 / np.sqrt(40))
    assert warmup_learning_rate(20, 64, 40, factor=0.4) == pytest.approx(
        0.4 * 0.5 * 0.125 / np.sqrt(40)
    )
    lrs = warmup_learning_rate(np.arange(1, 200), 64, 40)
    assert np.argmax(lrs) == 39
    assert np.all(np.diff(lrs[:40]) > 0) and np.all(np.diff(lrs[40:]) < 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step": 0}, "step must be >= 1"),
        ({"d_model": 0}, "d_model must be a positive integer"),
        ({"warmup_steps": 2.5}, "warmup_steps must be a positive integer"),
    ],
)
def test_warmup_bad_arguments(kwargs, message):
    args = {"step": 1, "d_model": 64, "warmup_steps": 40} | kwargs
    with pytest.raises(ValueError, match=message):
        warmup_learning_rate(**args)


def test_bad_task_arguments_raise():
    with pytest.raises(ValueError, match="task must be one of"):
        make_batch("shuffle", 4, 0)
    with pytest.raises(ValueError, match="min_len <= max_len"):
        make_batch("copy", 4, 0, min_len=5, max_len=3)
    with pytest.raises(ValueError, match=r"snapshot_steps must lie in \[0, steps\]"):
        TrainConfig(steps=10, snapshot_steps=(20,))


@pytest.fixture(scope="session")
def no_mask_run():
    """The same training with the decoder's causal mask removed."""
    return train(TrainConfig(causal=False, snapshot_steps=()), progress=False)


def test_causal_model_loss_is_the_same_seeing_only_the_prefix(reversal_run):
    batch = make_batch("reverse", 200, 99)
    assert prefix_only_loss(reversal_run.model, batch) == pytest.approx(
        target_loss(reversal_run.model, batch), abs=1e-4
    )


def test_without_the_causal_mask_training_loss_cheats(no_mask_run, reversal_run):
    """Low training loss, yet the model fails as soon as it cannot see the answer."""
    batch = make_batch("reverse", 200, 99)
    cheating = no_mask_run.model
    assert target_loss(cheating, batch) < 0.2
    assert prefix_only_loss(cheating, batch) > 1.0 > 0.2 > prefix_only_loss(
        reversal_run.model, batch
    )
    assert sequence_accuracy(cheating, "reverse", num_examples=200) < 0.05
