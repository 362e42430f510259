"""Chapter 2's figure helpers: one row before and after the softmax, a context vector
taken apart into its terms."""

from __future__ import annotations

import numpy as np
import pytest

from transformer_tutorial import plots
from transformer_tutorial.attention import context_contributions, softmax

TOKENS = ["the", "cat", "sat", "the", "it"]
SCORES = np.array([0.5, 3.0, -1.0, 0.5, 2.0])
WEIGHTS = softmax(SCORES)
VALUES = np.array([[0.0, 1.0], [2.0, 0.0], [0.5, -1.5], [0.0, 1.0], [1.5, 0.5]])


def _widths(ax):
    return np.array([p.get_width() for p in ax.patches])


def test_scores_vs_weights_draws_both_rows():
    fig = plots.scores_vs_weights(SCORES, WEIGHTS, TOKENS, title="row of 'it'")
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
        plots.scores_vs_weights(scores, weights, TOKENS[: np.shape(scores)[-1]])


def _bar_tops(ax):
    """(x, bottom, height, label) of every bar segment."""
    return [(p.get_x() + p.get_width() / 2, p.get_y(), p.get_height(), p.get_label())
            for p in ax.patches]


def test_contribution_bars_stack_to_the_context_vector():
    terms = context_contributions(WEIGHTS[None], VALUES)[0]
    fig = plots.contribution_bars(terms, TOKENS, ["f0", "f1"], top=3, weights=WEIGHTS,
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
    names = [plots._token_at(TOKENS, j, WEIGHTS) for j in largest]
    assert names[0] == f"{WEIGHTS[1]:.2f} × cat"
    assert all(name in legend for name in names)
    assert "2 other tokens" in legend
    assert [t.get_text() for t in ax.get_xticklabels()] == ["f0", "f1"]
    low, high = ax.get_ylim()  # every bar and marker is inside the axes
    assert low < min(terms[terms < 0].sum(), VALUES[4].min()) and high > VALUES[4].max()


def test_positive_and_negative_parts_stack_apart():
    terms = context_contributions(WEIGHTS[None], VALUES)[0]
    ax = plots.contribution_bars(terms, TOKENS, ["f0", "f1"], top=5).axes[0]
    for feature in range(2):
        heights = np.array([h for x, _, h, _ in _bar_tops(ax) if np.isclose(x, feature)])
        np.testing.assert_allclose(heights[heights > 0].sum(), terms[terms[:, feature] > 0,
                                                                    feature].sum())
        np.testing.assert_allclose(heights[heights < 0].sum(), terms[terms[:, feature] < 0,
                                                                    feature].sum())
    assert not any("other" in t.get_text() for t in ax.get_legend().get_texts())


def test_repeated_tokens_are_told_apart_by_position():
    assert plots._token_at(TOKENS, 3) == "the (position 3)"
    assert plots._token_at(TOKENS, 1) == "cat"


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
        plots.contribution_bars(**arguments)
