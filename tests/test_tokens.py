"""The word-level tokenizer and its vocabulary, checked by hand and against Hugging Face
`tokenizers` (a WordLevel model with the same vocabulary)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from transformer_tutorial.tokens import (
    BOS,
    EOS,
    PAD,
    SPECIAL_TOKENS,
    UNK,
    Vocabulary,
    pad_batch,
    tokenize,
)

TEXTS = ["How are you?", "The cat sat on the mat."]


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary.from_texts(TEXTS)


def test_tokenize_splits_words_and_punctuation():
    assert tokenize("How are you?") == ["how", "are", "you", "?"]
    assert tokenize("The cat sat, then ran!") == ["the", "cat", "sat", ",", "then", "ran", "!"]
    assert tokenize("Don't   stop") == ["don't", "stop"]
    assert tokenize("How are you?", lowercase=False) == ["How", "are", "you", "?"]
    assert tokenize("?!") == ["?", "!"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_tokenize_rejects_empty_text(text):
    with pytest.raises(ValueError, match="at least one word"):
        tokenize(text)


def test_tokenize_rejects_non_strings():
    with pytest.raises(ValueError, match="must be a string"):
        tokenize(["how", "are"])


def test_specials_come_first_with_fixed_ids(vocab):
    assert SPECIAL_TOKENS == ("<pad>", "<unk>", "<bos>", "<eos>")
    assert [vocab.id_of(t) for t in (PAD, UNK, BOS, EOS)] == [0, 1, 2, 3]
    assert vocab.tokens == (
        *SPECIAL_TOKENS, "how", "are", "you", "?", "the", "cat", "sat", "on", "mat", ".",
    )  # fmt: skip
    assert vocab.words == ("how", "are", "you", "?", "the", "cat", "sat", "on", "mat", ".")
    assert len(vocab) == 14
    assert "cat" in vocab and "dog" not in vocab


def test_encode_maps_unknown_words_to_unk(vocab):
    assert vocab.encode("How are you?") == [4, 5, 6, 7]
    assert vocab.encode("How is the dog?") == [4, 1, 8, 1, 7]
    assert vocab.id_of("dog") == vocab.id_of(UNK) == 1


def test_encode_wraps_in_bos_eos(vocab):
    assert vocab.encode("how are you", add_bos_eos=True) == [2, 4, 5, 6, 3]


def test_decode_inverts_encode_up_to_unknown_words(vocab):
    assert vocab.decode(vocab.encode("The cat sat on the mat.")) == tokenize(
        "The cat sat on the mat."
    )
    assert vocab.decode(vocab.encode("a cat", add_bos_eos=True)) == [BOS, UNK, "cat", EOS]


@pytest.mark.parametrize("ids", [[14], [-1], [0, 99]])
def test_decode_rejects_ids_outside_the_vocabulary(vocab, ids):
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 14\)"):
        vocab.decode(ids)


def test_vocabulary_checks_its_tokens():
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(("cat", *SPECIAL_TOKENS))
    with pytest.raises(ValueError, match="unique"):
        Vocabulary((*SPECIAL_TOKENS, "cat", "cat"))


def _reference(vocab: Vocabulary) -> Tokenizer:
    """Hugging Face's WordLevel tokenizer with our vocabulary, lower-casing and bos/eos."""
    ref = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab.tokens)}, unk_token=UNK))
    ref.normalizer = normalizers.Lowercase()
    ref.pre_tokenizer = pre_tokenizers.Whitespace()
    ref.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, 2), (EOS, 3)]
    )
    return ref


# Sentences of known and unknown words and single punctuation marks (where our regex and
# the reference's `\w+|[^\w\s]+` agree).
_words = st.sampled_from(
    ["How", "are", "you", "the", "CAT", "sat", "mat", "dog", "zebra", "?", "."]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_words, min_size=1, max_size=12))
def test_encode_equals_huggingface_word_level(words):
    vocab = Vocabulary.from_texts(TEXTS)
    text = " ".join(words)
    ref = _reference(vocab)
    assert vocab.encode(text, add_bos_eos=True) == ref.encode(text).ids
    assert vocab.encode(text) == ref.encode(text, add_special_tokens=False).ids


def test_pad_batch_right_pads_to_the_longest(vocab):
    ids = [vocab.encode("The cat sat on the mat."), vocab.encode("How are you?")]
    batch = pad_batch(ids, pad_id=vocab.id_of(PAD))
    np.testing.assert_array_equal(
        batch, [[8, 9, 10, 11, 8, 12, 13], [4, 5, 6, 7, 0, 0, 0]]
    )
    assert batch.dtype == np.int64
    np.testing.assert_array_equal(pad_batch([[1], [2, 3]], pad_id=9), [[1, 9], [2, 3]])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=8), min_size=1, max_size=5),
    st.integers(0, 50),
)
def test_pad_batch_equals_torch_pad_sequence(id_lists, pad_id):
    expected = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(ids) for ids in id_lists], batch_first=True, padding_value=pad_id
    )
    np.testing.assert_array_equal(pad_batch(id_lists, pad_id=pad_id), expected.numpy())


@pytest.mark.parametrize(
    ("id_lists", "pad_id", "message"),
    [
        ([], 0, "non-empty list of id lists"),
        ([[1, 2], []], 0, r"id_lists\[1\] must be a non-empty list"),
        ([[1, -2]], 0, "non-negative integer ids"),
        ([[1.5]], 0, "non-negative integer ids"),
        ([[1]], -1, "pad_id must be a non-negative integer"),
    ],
)
def test_pad_batch_rejects_bad_input(id_lists, pad_id, message):
    with pytest.raises(ValueError, match=message):
        pad_batch(id_lists, pad_id=pad_id)
