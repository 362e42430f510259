"""Chapter 1: the word-similarity explorer against the embeddings' own cosine similarities."""

from __future__ import annotations

import pytest
from explorer_frames import bar_values, panel

from transformer_tutorial.chapters import ch01_tokens as ch01
from transformer_tutorial.embeddings import (
    EmbeddingTable,
    cosine_similarity,
    toy_embeddings,
)

# -- The chapter's explorer ----------------------------------------------------------------


HAND_MADE = "hand-made table (like a trained model)"


RANDOM = "random table (untrained, d_model=64)"


@pytest.mark.parametrize("word", ["cat", "mat", "sat", "it"])
def test_word_similarity_bars_are_cosine_similarities(word):
    explorer, toy = ch01.word_similarity(), toy_embeddings()
    shown = bar_values(explorer, word=word)
    assert set(shown) == set(toy.vocab.words) - {word}
    (target,) = toy.lookup([word])
    for other, value in shown.items():
        assert value == pytest.approx(cosine_similarity(target, toy.lookup([other])[0]), rel=1e-3,
                                      abs=1e-6)  # fmt: skip
    assert list(shown.values()) == sorted(shown.values(), reverse=True)


def test_word_similarity_follows_the_word_and_the_table():
    explorer = ch01.word_similarity()
    assert [c.default for c in explorer.controls] == ["cat", HAND_MADE]
    assert next(iter(bar_values(explorer, word="cat"))) == "dog"
    assert next(iter(bar_values(explorer, word="mat"))) == "ball"
    random = EmbeddingTable.random(toy_embeddings().vocab, 64, seed=0)
    shown = bar_values(explorer, word="cat", table=RANDOM)
    (cat,) = random.lookup(["cat"])
    expected = cosine_similarity(cat, random.lookup(["dog"])[0])
    assert shown["dog"] == pytest.approx(expected, rel=1e-3, abs=1e-6)
    assert max(abs(v) for v in shown.values()) < 0.35  # before training no word stands out
    shown_panel = panel(explorer, word="ball", table=RANDOM)
    assert (shown_panel["vmin"], shown_panel["vmax"]) == (-1.0, 1.0)  # fixed axis: frames compare
    assert shown_panel["title"] == RANDOM
    assert "'dog'" in explorer.data(word="cat")["description"]
