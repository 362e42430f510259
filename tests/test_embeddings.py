"""Embedding tables, lookup and cosine similarity: hand-computed values and torch as the
outside reference (``nn.Embedding``, ``nn.functional.cosine_similarity``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from transformer_tutorial.embeddings import (
    TOY_FEATURES,
    TOY_SENTENCE,
    EmbeddingTable,
    cosine_similarity,
    most_similar,
    similarity_matrix,
    toy_embeddings,
    word_vector_in,
)
from transformer_tutorial.tokens import SPECIAL_TOKENS, Vocabulary, tokenize

AMBIGUOUS = [
    ("apple", "She ate an apple.", "Apple released a new phone."),
    ("match", "Light the match.", "A tennis match."),
]


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary.from_texts(text for _, *texts in AMBIGUOUS for text in texts)


@pytest.fixture
def toy() -> EmbeddingTable:
    return toy_embeddings()


# -- tables ------------------------------------------------------------------------------


def test_random_table_is_deterministic(vocab):
    a = EmbeddingTable.random(vocab, 8, seed=0)
    assert a.vectors.shape == (len(vocab), 8) and a.d_model == 8
    np.testing.assert_array_equal(a.vectors, EmbeddingTable.random(vocab, 8, seed=0).vectors)
    assert not np.allclose(a.vectors, EmbeddingTable.random(vocab, 8, seed=1).vectors)


def test_random_table_has_variance_one_over_d_model(vocab):
    vectors = EmbeddingTable.random(vocab, 400, seed=3).vectors
    assert vectors.std() == pytest.approx(1 / np.sqrt(400), rel=0.05)
    assert abs(vectors.mean()) < 0.01


@pytest.mark.parametrize("d_model", [0, -3, 2.5, True, "4"])
def test_random_table_rejects_bad_width(vocab, d_model):
    with pytest.raises(ValueError, match="d_model must be a positive integer"):
        EmbeddingTable.random(vocab, d_model)


def test_table_checks_its_shape_and_is_read_only(vocab):
    with pytest.raises(ValueError, match=r"\(vocab_size, d_model\) = \(17, d_model\)"):
        EmbeddingTable(vocab, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="features must name all 4 columns"):
        EmbeddingTable(vocab, np.zeros((len(vocab), 4)), features=("a", "b"))
    table = EmbeddingTable.random(vocab, 4)
    with pytest.raises(ValueError, match="read-only"):
        table.vectors[0, 0] = 1.0


# -- lookup ------------------------------------------------------------------------------


def test_toy_lookup_of_how_are_you(toy):
    assert toy.features == TOY_FEATURES == ("animal", "object", "action", "function word")
    np.testing.assert_array_equal(
        toy.lookup("How are you"),
        [[0.0, 0.0, 0.3, 1.2], [0.2, 0.0, 0.9, 1.0], [1.3, 0.0, 0.0, 0.8]],
    )
    np.testing.assert_array_equal(toy.lookup(["how", "are", "you"]), toy.lookup("How are you"))


def test_every_token_of_the_toy_sentence_has_a_hand_made_vector(toy):
    tokens = tokenize(TOY_SENTENCE)
    assert tokens == ["the", "cat", "sat", "on", "the", "mat", "because", "it", "was",
                      "tired", "."]  # fmt: skip
    assert all(token in toy.vocab for token in tokens)
    assert (np.abs(toy.lookup(tokens)).sum(axis=1) > 0).all()


def test_unknown_words_and_specials_get_the_zero_vector_in_the_toy_table(toy):
    assert toy.vocab.words[:3] == ("the", "a", "cat")
    np.testing.assert_array_equal(toy.lookup("zebra"), np.zeros((1, 4)))
    np.testing.assert_array_equal(toy.lookup(list(SPECIAL_TOKENS)), np.zeros((4, 4)))


def test_unknown_words_get_the_unk_row(vocab):
    table = EmbeddingTable.random(vocab, 6, seed=2)
    np.testing.assert_array_equal(table.lookup("zebra giraffe"), table.vectors[[1, 1]])


def test_lookup_equals_torch_embedding_and_one_hot_product(vocab):
    table = EmbeddingTable.random(vocab, 6, seed=4)
    text = "Light the apple, a tennis phone."
    ids = vocab.encode(text)
    layer = torch.nn.Embedding.from_pretrained(torch.from_numpy(np.array(table.vectors)))
    reference = layer(torch.tensor(ids)).numpy()
    np.testing.assert_array_equal(table.lookup(text), reference)
    one_hot = np.eye(len(vocab))[ids]
    np.testing.assert_allclose(one_hot @ table.vectors, table.lookup(text), atol=1e-15)


@pytest.mark.parametrize("tokens", ["", "  ", []])
def test_lookup_rejects_empty_input(toy, tokens):
    with pytest.raises(ValueError, match="at least one word|must not be empty"):
        toy.lookup(tokens)


@pytest.mark.parametrize("word, first, second", AMBIGUOUS)
def test_a_word_gets_the_same_vector_in_every_sentence(vocab, word, first, second):
    table = EmbeddingTable.random(vocab, 8, seed=0)
    a = word_vector_in(table, first, word)
    b = word_vector_in(table, second, word)
    assert a.shape == (8,)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, table.vectors[vocab.id_of(word)])
    assert cosine_similarity(a, b) == pytest.approx(1.0, abs=1e-12)


def test_word_vector_in_needs_the_word_in_the_text(vocab):
    table = EmbeddingTable.random(vocab, 8)
    with pytest.raises(ValueError, match=r"'pear' is not a token of .*\['she', 'ate'"):
        word_vector_in(table, "She ate an apple.", "pear")


# -- cosine similarity -------------------------------------------------------------------


def test_cosine_similarity_hand_computed(toy):
    cat, dog, mat, the, a = toy.lookup(["cat", "dog", "mat", "the", "a"])
    # cat = (2, .2, 0, 0), dog = (1.9, .2, .1, 0), mat = (.1, 2, 0, 0)
    assert cosine_similarity(cat, dog) == pytest.approx(3.84 / np.sqrt(4.04 * 3.66))
    assert cosine_similarity(cat, dog) == pytest.approx(0.998619, abs=1e-6)
    assert cosine_similarity(cat, mat) == pytest.approx(0.6 / np.sqrt(4.04 * 4.01))
    assert cosine_similarity(the, a) == pytest.approx(1.0)
    assert cosine_similarity([1.0, 0.0], [0.0, 3.0]) == 0.0
    assert cosine_similarity([1.0, 0.0], [-2.0, 0.0]) == -1.0
    assert cosine_similarity([1.0, 1.0], [5.0, 0.0]) == pytest.approx(1 / np.sqrt(2))


def test_cosine_similarity_equals_torch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 7, 5))
    reference = torch.nn.functional.cosine_similarity(
        torch.from_numpy(a), torch.from_numpy(b), dim=-1
    ).numpy()
    np.testing.assert_allclose(cosine_similarity(a, b), reference, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, 6, elements=st.floats(-10, 10)).filter(lambda v: np.linalg.norm(v) > 1e-3),
    arrays(np.float64, 6, elements=st.floats(-10, 10)).filter(lambda v: np.linalg.norm(v) > 1e-3),
    st.floats(0.01, 100),
)
def test_cosine_similarity_is_bounded_symmetric_and_scale_free(a, b, scale):
    cos = cosine_similarity(a, b)
    assert -1.0 <= cos <= 1.0
    assert cos == pytest.approx(cosine_similarity(b, a), abs=1e-12)
    assert cos == pytest.approx(cosine_similarity(scale * a, b), abs=1e-9)
    assert cosine_similarity(a, a) == pytest.approx(1.0)


def test_cosine_similarity_rejects_zero_vectors_and_mismatched_shapes():
    with pytest.raises(ValueError, match="undefined for a zero vector"):
        cosine_similarity([0.0, 0.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"shape \(\.\.\., d\) with the same d"):
        cosine_similarity([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="array of numbers"):
        cosine_similarity(["a", "b"], [1.0, 2.0])


# -- similarity matrix and neighbours ----------------------------------------------------


def test_similarity_matrix_of_toy_words(toy):
    words = ["cat", "dog", "mat", "ball"]
    sims = similarity_matrix(toy, words)
    assert sims.shape == (4, 4)
    np.testing.assert_allclose(np.diag(sims), 1.0)
    np.testing.assert_allclose(sims, sims.T)
    assert sims[0, 1] == pytest.approx(3.84 / np.sqrt(4.04 * 3.66))
    # animals are closer to animals than to objects, objects to objects
    assert sims[0, 1] > 0.99 and sims[2, 3] > 0.99 and sims[0, 2] < 0.2 and sims[1, 3] < 0.2


def test_similarity_matrix_equals_torch_pairwise(vocab):
    table = EmbeddingTable.random(vocab, 16, seed=5)
    words, others = ["apple", "match", "tennis"], ["she", "phone", "light", "apple"]
    a = torch.from_numpy(table.lookup(words))[:, None, :]
    b = torch.from_numpy(table.lookup(others))[None, :, :]
    reference = torch.nn.functional.cosine_similarity(a, b, dim=-1).numpy()
    np.testing.assert_allclose(similarity_matrix(table, words, others), reference, atol=1e-12)


def test_similarity_matrix_rejects_unknown_and_empty_word_lists(toy):
    with pytest.raises(ValueError, match=r"unknown: \['zebra'\]"):
        similarity_matrix(toy, ["cat", "zebra"])
    with pytest.raises(ValueError, match="non-empty list of words"):
        similarity_matrix(toy, [])
    with pytest.raises(ValueError, match="non-empty list of words"):
        similarity_matrix(toy, ["cat"], "dog")


def test_most_similar_ranks_neighbours(toy):
    pairs = most_similar(toy, "cat")
    assert [word for word, _ in pairs][:4] == ["dog", "tired", "it", "you"]
    assert len(pairs) == len(toy.vocab.words) - 1 and "cat" not in dict(pairs)
    values = [value for _, value in pairs]
    assert values == sorted(values, reverse=True)
    assert dict(pairs)["mat"] == pytest.approx(0.6 / np.sqrt(4.04 * 4.01))
    assert most_similar(toy, "cat", ["mat", "dog", "cat"]) == [
        ("dog", pytest.approx(0.998619, abs=1e-6)),
        ("mat", pytest.approx(0.6 / np.sqrt(4.04 * 4.01))),
    ]
    with pytest.raises(ValueError, match="at least one word other than 'cat'"):
        most_similar(toy, "cat", ["cat"])
