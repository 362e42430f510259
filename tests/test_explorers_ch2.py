"""Chapter 2's explorer: the temperature slider redraws the weights softmax(s / T)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from transformer_tutorial import explorers
from transformer_tutorial.attention import entropy, relevance_scores, softmax
from transformer_tutorial.embeddings import toy_embeddings
from transformer_tutorial.tokens import tokenize

TOKENS = tokenize(explorers.WEIGHTED_AVERAGE_SENTENCE)
X = toy_embeddings().lookup(TOKENS)
SCORES = relevance_scores(X, X)
IT = TOKENS.index("it")


@pytest.fixture(scope="module")
def explorer():
    return explorers.softmax_temperature()


@pytest.fixture(scope="module")
def figures(explorer):
    """The figure at every position of the slider, drawn once for the module."""
    return {t: explorer.figure(temperature=t) for t in explorers.TEMPERATURES}


def _heatmap_and_bars(fig):
    heatmap = next(ax for ax in fig.axes if ax.images)
    bars = next(ax for ax in fig.axes if ax.patches)
    return heatmap.images[0].get_array(), np.array([p.get_width() for p in bars.patches])


def test_temperature_control_covers_sharp_to_flat(explorer):
    (control,) = explorer.controls
    assert control.name == "temperature" and control.default == 1.0
    assert len(control.values) == 9 and min(control.values) == 0.1 and max(control.values) == 5.0
    assert list(control.values) == sorted(control.values)


@pytest.mark.parametrize("temperature", explorers.TEMPERATURES)
def test_each_temperature_draws_softmax_of_the_scores_at_that_temperature(figures, temperature):
    fig = figures[temperature]
    image, bars = _heatmap_and_bars(fig)
    expected = softmax(SCORES, temperature)
    np.testing.assert_allclose(image, expected, atol=1e-12)
    np.testing.assert_allclose(bars, expected[IT], atol=1e-12)
    title = fig.get_suptitle()
    assert f"T = {temperature:g}" in title
    assert f"is {expected[IT].max():.2f}" in title
    assert f"entropy {entropy(expected[IT]):.2f} nats" in title
    assert f"(uniform: {np.log(len(TOKENS)):.2f})" in title


def test_moving_the_slider_sharpens_and_flattens_the_row(figures):
    largest, entropies = [], []
    for temperature in explorers.TEMPERATURES:
        _, bars = _heatmap_and_bars(figures[temperature])
        largest.append(bars.max())
        title = figures[temperature].get_suptitle()
        entropies.append(float(re.search(r"entropy ([0-9.]+) nats", title).group(1)))
    assert all(a > b for a, b in zip(largest, largest[1:], strict=False))
    assert all(a <= b for a, b in zip(entropies, entropies[1:], strict=False))
    assert entropies[0] < 0.6 and largest[0] > 0.75  # T = 0.1: nearly all on "cat"
    assert entropies[-1] > 0.99 * np.log(len(TOKENS))  # T = 5: nearly uniform


def test_static_viewer_holds_a_different_frame_per_temperature(explorer):
    html = explorer.static_html()
    frames = re.findall(r'"png":"([^"]+)"', html)
    assert len(frames) == len(set(frames)) == len(explorers.TEMPERATURES)
    assert "temperature T" in html


def test_other_sentence_and_query():
    explorer = explorers.softmax_temperature("The dog ran on the mat.", query="dog")
    fig = explorer.figure(temperature=0.5)
    tokens = tokenize("The dog ran on the mat.")
    x = toy_embeddings().lookup(tokens)
    _, bars = _heatmap_and_bars(fig)
    np.testing.assert_allclose(bars, softmax(relevance_scores(x, x), 0.5)[1])


def test_a_query_missing_from_the_sentence_is_a_message_not_a_traceback():
    explorer = explorers.softmax_temperature(query="zebra")
    with pytest.raises(ValueError, match="query must be a token of the sentence"):
        explorer.figure()
    assert "Cannot show this" in explorer.static_html()
