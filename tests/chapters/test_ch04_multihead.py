"""Chapter 4: the hand-built heads do their jobs, and the heads explorer shows them."""

from __future__ import annotations

import numpy as np
import pytest
from explorer_frames import ROUNDED, panel
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer_tutorial.chapters import ch04_multihead as ch04
from transformer_tutorial.chapters.ch04_multihead import (
    HEAD_PATTERNS,
    PATTERN_MAX_LEN,
    pattern_features,
    pattern_heads,
    pattern_words,
)
from transformer_tutorial.multihead import regroup_heads
from transformer_tutorial.tokens import tokenize

# -- The chapter's explorer ----------------------------------------------------------------


def test_heads_explorer_follows_a_job_through_the_number_of_heads():
    explorer = ch04.heads_explorer()
    tokens = tokenize(ch04.HEADS_SENTENCES[0])
    n = len(tokens)
    prev = np.array(panel(explorer, num_heads=4, job="previous token")["values"])
    assert (prev[np.arange(1, n), np.arange(n - 1)] > 0.95).all()
    assert (np.array(panel(explorer, num_heads=4, job="first token")["values"])[:, 0] > 0.95).all()
    pair = panel(explorer, num_heads=2, job="next token")
    assert pair == panel(explorer, num_heads=2)  # previous and next token share head 0
    assert pair["title"] == "2 heads: head 0 = previous token + next token"
    _, w = regroup_heads(pattern_heads(), 2)(pattern_features(tokens))
    np.testing.assert_allclose(pair["values"], w[0, 0].detach().numpy(), **ROUNDED)
    one = np.array(panel(explorer, num_heads=1, job="same word")["values"])
    assert one.max(axis=1).mean() < prev[1:].max(axis=1).mean()  # one head blurs the jobs
    assert panel(explorer, sentence="how are you")["cols"] == ["how", "are", "you"]
    with pytest.raises(ValueError, match="1 to 16 tokens"):
        ch04.heads_data(" ".join(["word"] * 17), 4, "same word")


# -- Hand-built heads ----------------------------------------------------------------------


SENTENCE = tokenize("the cat saw the dog and the dog saw the cat .")


def test_each_hand_built_head_does_its_job():
    _, weights = pattern_heads()(pattern_features(SENTENCE))
    w = weights[0].detach().numpy()  # (4, seq, seq)
    n = len(SENTENCE)
    assert HEAD_PATTERNS == ("previous token", "next token", "same word", "first token")
    for p in range(1, n):
        assert w[0, p, p - 1] > 0.95
    for p in range(n - 1):
        assert w[1, p, p + 1] > 0.95
    np.testing.assert_allclose(w[0, 0], 1.0 / n, rtol=1e-6)  # no previous token: even spread
    np.testing.assert_allclose(w[1, n - 1], 1.0 / n, rtol=1e-6)
    for p, word in enumerate(SENTENCE):
        same = [j for j, other in enumerate(SENTENCE) if other == word]
        assert w[2, p, same].sum() > 0.95
        np.testing.assert_allclose(w[2, p, same], w[2, p, same[0]], rtol=1e-6)
    assert (w[3, :, 0] > 0.95).all()


def test_each_head_reports_the_word_it_read_in_its_own_slot():
    out, _ = pattern_heads()(pattern_features(SENTENCE))
    words = pattern_words(SENTENCE)
    assert words == ["the", "cat", "saw", "dog", "and", "."]
    slots = out[0].detach().reshape(len(SENTENCE), 4, 16)  # (seq, heads, d_head)
    dog = 4  # "the cat saw the dog": head 0 read "the", head 1 "and", head 2 "dog", head 3 "the"
    assert [words[i] for i in slots[dog].argmax(-1)] == ["the", "and", "dog", "the"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=2, max_size=PATTERN_MAX_LEN))
def test_previous_token_head_on_any_sentence(tokens):
    _, weights = pattern_heads()(pattern_features(tokens))
    prev = weights[0, 0, 1:].argmax(-1)
    assert prev.tolist() == list(range(len(tokens) - 1))


def test_pattern_inputs_reject_what_they_cannot_hold():
    with pytest.raises(ValueError, match="1 to 16 tokens"):
        pattern_features(["w"] * 17)
    with pytest.raises(ValueError, match="sequence of token strings"):
        pattern_features("a sentence")
    with pytest.raises(ValueError, match="sharpness"):
        pattern_heads(sharpness=0)
