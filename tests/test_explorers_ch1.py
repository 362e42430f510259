"""Chapter 1's explorer: each control changes the bars as it should."""

from __future__ import annotations

import numpy as np
import pytest

from transformer_tutorial.embeddings import EmbeddingTable, cosine_similarity, toy_embeddings
from transformer_tutorial.explorers import MAX_STATIC_FRAMES, word_similarity

HAND_MADE, RANDOM = "hand-made table (like a trained model)", "random table (untrained, d_model=64)"


@pytest.fixture(scope="module")
def explorer():
    return word_similarity()


def _bars(fig) -> dict[str, float]:
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    return dict(zip(labels, [p.get_width() for p in ax.patches], strict=True))


def test_controls_and_defaults(explorer):
    word, table = explorer.controls
    toy = toy_embeddings()
    assert word.values == toy.vocab.words and word.default == "cat"
    assert table.values == (HAND_MADE, RANDOM) and table.default == HAND_MADE
    assert len(word.values) * len(table.values) <= MAX_STATIC_FRAMES


@pytest.mark.parametrize("word", ["cat", "mat", "sat", "it"])
def test_bars_are_the_cosine_similarities_of_the_chosen_word(explorer, word):
    toy = toy_embeddings()
    bars = _bars(explorer.figure(word=word))
    assert set(bars) == set(toy.vocab.words) - {word}
    (target,) = toy.lookup([word])
    for other, height in bars.items():
        assert height == pytest.approx(cosine_similarity(target, toy.lookup([other])[0]))
    heights = list(bars.values())
    assert heights == sorted(heights, reverse=True)  # most similar on top


def test_nearest_word_follows_the_choice(explorer):
    assert next(iter(_bars(explorer.figure(word="cat")))) == "dog"
    assert next(iter(_bars(explorer.figure(word="mat")))) == "ball"
    assert next(iter(_bars(explorer.figure(word="sat")))) == "ran"


def test_table_control_switches_to_a_random_table(explorer):
    toy = toy_embeddings()
    random = EmbeddingTable.random(toy.vocab, 64, seed=0)
    fig = explorer.figure(word="cat", table=RANDOM)
    bars = _bars(fig)
    (cat,) = random.lookup(["cat"])
    assert bars["dog"] == pytest.approx(cosine_similarity(cat, random.lookup(["dog"])[0]))
    # before training no word stands out: every similarity is small
    assert max(abs(v) for v in bars.values()) < 0.35
    assert fig.axes[0].get_title() == RANDOM
    assert explorer.png(word="cat", table=RANDOM) != explorer.png(word="cat")


def test_axis_is_fixed_so_frames_compare(explorer):
    for table in (HAND_MADE, RANDOM):
        ax = explorer.figure(word="ball", table=table).axes[0]
        assert ax.get_xlim() == (-1.0, 1.0)
        assert ax.get_xlabel() == 'cosine similarity to "ball"'


def test_static_viewer_renders_every_frame(explorer):
    html = explorer.static_html()
    assert html.count('"png":') == 34 and '"error"' not in html
    assert np.isfinite(list(_bars(explorer.figure(word=".")).values())).all()
