"""The brief's relevance example: checked against torch's softmax and against e^(-77.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from explorer_frames import ROUNDED, panel

from transformer_tutorial.attention import context_contributions, entropy, relevance_scores, softmax
from transformer_tutorial.chapters import ch02_attention as ch02
from transformer_tutorial.chapters.ch02_attention import BRIEF_SCORES, relevance_example
from transformer_tutorial.embeddings import (
    TOY_SENTENCE,
    toy_embeddings,
)
from transformer_tutorial.tokens import tokenize


def test_the_brief_scores_give_one_weight_near_1_and_one_near_e_minus_77():
    example = relevance_example()
    assert example.words == ("the", "burn")
    reference = torch.softmax(torch.tensor([12.1, 89.3], dtype=torch.float64), dim=0)
    assert example.weights == pytest.approx(reference.numpy(), rel=1e-12)
    assert example.weights[1] == pytest.approx(1.0, abs=1e-15)
    assert example.log_weights[0] == pytest.approx(12.1 - 89.3, abs=1e-9)
    assert example.weights[0] == pytest.approx(math.exp(-77.2), rel=1e-9)


def test_a_temperature_of_sqrt_dk_brings_the_gap_down():
    example = relevance_example(temperature=8.0)
    assert example.log_weights[0] - example.log_weights[1] == pytest.approx(-77.2 / 8)
    assert 1e-5 < example.weights[0] < 1e-4


def test_bad_scores_are_refused():
    with pytest.raises(ValueError, match="scores"):
        relevance_example({})
    with pytest.raises(ValueError, match="underflows"):
        relevance_example({"a": 0.0, "b": 1000.0})
    assert BRIEF_SCORES == {"the": 12.1, "burn": 89.3}


# -- The chapter's explorer ----------------------------------------------------------------


TOY_TOKENS = tokenize(TOY_SENTENCE)


TOY_IT = TOY_TOKENS.index("it")


TOY_X = toy_embeddings().lookup(TOY_TOKENS)


TOY_SCORES = relevance_scores(TOY_X, TOY_X)


def test_temperature_slider_covers_sharp_to_flat_finely():
    (control,) = ch02.softmax_temperature().controls
    assert control.default == 1.0 and len(control.values) >= 25
    assert list(control.values) == sorted(control.values)
    assert min(control.values) <= 0.1 and max(control.values) >= 5.0


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0, 3.0])
def test_temperature_frame_is_softmax_at_that_temperature(temperature):
    data = ch02.softmax_temperature().data(temperature=temperature)
    weights, row = data["panels"]
    expected = softmax(TOY_SCORES, temperature)
    np.testing.assert_allclose(weights["values"], expected, **ROUNDED)
    np.testing.assert_allclose(row["values"], expected[TOY_IT], **ROUNDED)
    assert weights["rows"] == TOY_TOKENS and row["highlight"] == [int(expected[TOY_IT].argmax())]
    assert f"is {expected[TOY_IT].max():.2f}" in data["title"]
    assert f"entropy {entropy(expected[TOY_IT]):.2f} nats" in data["description"]


def test_moving_the_temperature_sharpens_then_flattens_the_row():
    explorer = ch02.softmax_temperature()
    largest = [max(panel(explorer, 1, temperature=t)["values"]) for t in ch02.TEMPERATURES]
    assert all(a > b for a, b in zip(largest, largest[1:], strict=False))
    assert largest[0] > 0.75 and largest[-1] < 1.2 / len(TOY_TOKENS)


def test_temperature_explorer_other_query_and_a_missing_one():
    explorer = ch02.softmax_temperature("The dog ran on the mat.", query="dog")
    x = toy_embeddings().lookup(tokenize("The dog ran on the mat."))
    np.testing.assert_allclose(panel(explorer, 1, temperature=0.5)["values"],
                               softmax(relevance_scores(x, x), 0.5)[1], **ROUNDED)  # fmt: skip
    missing = ch02.softmax_temperature(query="zebra")
    with pytest.raises(ValueError, match="query must be a token of the sentence"):
        missing.data()
    assert all("query must be a token" in f["error"] for f in missing.spec()["frames"].values())


# -- Figures: one query's row, a context vector taken apart --------------------------------


TOKENS = ["the", "cat", "sat", "the", "it"]
SCORES = np.array([0.5, 3.0, -1.0, 0.5, 2.0])
WEIGHTS = softmax(SCORES)
VALUES = np.array([[0.0, 1.0], [2.0, 0.0], [0.5, -1.5], [0.0, 1.0], [1.5, 0.5]])


def _widths(ax):
    return np.array([p.get_width() for p in ax.patches])


def test_scores_vs_weights_draws_both_rows():
    fig = ch02.scores_vs_weights(SCORES, WEIGHTS, TOKENS, title="row of 'it'")
    left, right = fig.axes
    np.testing.assert_allclose(_widths(left), SCORES)
    np.testing.assert_allclose(_widths(right), WEIGHTS)
    assert right.get_xlim() == (0.0, 1.0)
    assert "sum = 1.0000" in right.get_title()
    assert [t.get_text() for t in right.get_yticklabels()] == TOKENS
    assert fig.get_suptitle() == "row of 'it'"


@pytest.mark.parametrize(
    ("scores", "weights", "message"),
    [
        (SCORES, WEIGHTS[:3], r"same shape \(k_len,\)"),
        (SCORES[None], WEIGHTS[None], r"same shape \(k_len,\)"),
        (SCORES, SCORES, "between 0 and 1"),
    ],
)
def test_scores_vs_weights_rejects_bad_input(scores, weights, message):
    with pytest.raises(ValueError, match=message):
        ch02.scores_vs_weights(scores, weights, TOKENS[: np.shape(scores)[-1]])


def _bar_tops(ax):
    """(x, bottom, height, label) of every bar segment."""
    return [(p.get_x() + p.get_width() / 2, p.get_y(), p.get_height(), p.get_label())
            for p in ax.patches]


def test_contribution_bars_stack_to_the_context_vector():
    terms = context_contributions(WEIGHTS[None], VALUES)[0]
    fig = ch02.contribution_bars(terms, TOKENS, ["f0", "f1"], top=3, weights=WEIGHTS,
                                  references={"x_it": VALUES[4]})
    ax = fig.axes[0]
    # the black marks sit at the sum of the terms: the context vector
    total = next(c for c in ax.collections if c.get_label() == "sum: the context vector")
    np.testing.assert_allclose([seg[:, 1] for seg in total.get_segments()],
                               np.repeat((WEIGHTS @ VALUES)[:, None], 2, axis=1))
    np.testing.assert_allclose([seg[:, 0].mean() for seg in total.get_segments()], [0, 1])
    reference = next(c for c in ax.collections if c.get_label() == "x_it")
    np.testing.assert_allclose(reference.get_offsets()[:, 1], VALUES[4])
    # positive parts stack up and negative parts down: the tops and bottoms meet the sums
    for feature in range(2):
        segments = [s for s in _bar_tops(ax) if np.isclose(s[0], feature)]
        up = sum(h for _, _, h, _ in segments if h > 0)
        down = sum(h for _, _, h, _ in segments if h < 0)
        np.testing.assert_allclose(up + down, terms[:, feature].sum())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    largest = np.argsort(-np.abs(terms).sum(axis=1), kind="stable")[:3]
    names = [ch02._token_at(TOKENS, j, WEIGHTS) for j in largest]
    assert names[0] == f"{WEIGHTS[1]:.2f} × cat"
    assert all(name in legend for name in names)
    assert "2 other tokens" in legend
    assert [t.get_text() for t in ax.get_xticklabels()] == ["f0", "f1"]
    low, high = ax.get_ylim()  # every bar and marker is inside the axes
    assert low < min(terms[terms < 0].sum(), VALUES[4].min()) and high > VALUES[4].max()


def test_positive_and_negative_parts_stack_apart():
    terms = context_contributions(WEIGHTS[None], VALUES)[0]
    ax = ch02.contribution_bars(terms, TOKENS, ["f0", "f1"], top=5).axes[0]
    for feature in range(2):
        heights = np.array([h for x, _, h, _ in _bar_tops(ax) if np.isclose(x, feature)])
        np.testing.assert_allclose(heights[heights > 0].sum(), terms[terms[:, feature] > 0,
                                                                    feature].sum())
        np.testing.assert_allclose(heights[heights < 0].sum(), terms[terms[:, feature] < 0,
                                                                    feature].sum())
    assert not any("other" in t.get_text() for t in ax.get_legend().get_texts())


def test_repeated_tokens_are_told_apart_by_position():
    assert ch02._token_at(TOKENS, 3) == "the (position 3)"
    assert ch02._token_at(TOKENS, 1) == "cat"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"contributions": np.ones(3)}, r"shape \(k_len, d\)"),
        ({"key_tokens": ["a"]}, "one label per row of contributions"),
        ({"feature_labels": ["f0"]}, "one label per column"),
        ({"top": 0}, r"top must be in \[1, 8\) \(an integer\)"),
        ({"top": 8}, r"top must be in \[1, 8\) \(an integer\)"),
        ({"references": {"r": np.ones(3)}}, r"must have shape \(d,\) = \(2,\)"),
        ({"weights": np.ones(4)}, r"weights must have shape \(k_len,\) = \(5,\)"),
    ],
)
def test_contribution_bars_rejects_bad_input(kwargs, message):
    arguments = {"contributions": VALUES, "key_tokens": TOKENS, "feature_labels": ["f0", "f1"]}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ch02.contribution_bars(**arguments)
