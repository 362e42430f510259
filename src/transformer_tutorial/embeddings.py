"""Token embeddings: one vector per vocabulary entry, looked up by id.

An embedding table is a ``(vocab_size, d_model)`` matrix; embedding a sentence is row lookup.
The lookup ignores context: a word gets the same vector in every sentence. Attention (chapter 2
on) is what mixes context into these vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transformer_tutorial.tokens import SPECIAL_TOKENS, Vocabulary, tokenize
from transformer_tutorial.validation import as_float_array

__all__ = [
    "EmbeddingTable",
    "toy_embeddings",
    "cosine_similarity",
    "similarity_matrix",
    "word_vector_in",
    "most_similar",
    "TOY_FEATURES",
    "TOY_SENTENCE",
]


@dataclass(frozen=True)
class EmbeddingTable:
    """A vocabulary and its ``(vocab_size, d_model)`` matrix of vectors.

    ``features`` optionally names the ``d_model`` columns (the hand-made toy table does; a
    learned table's columns have no names).
    """

    vocab: Vocabulary
    vectors: np.ndarray
    features: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        vectors = as_float_array(self.vectors, "vectors")
        if vectors.ndim != 2 or vectors.shape[0] != len(self.vocab):
            raise ValueError(
                f"vectors must have shape (vocab_size, d_model) = ({len(self.vocab)}, d_model), "
                f"got {vectors.shape}"
            )
        if self.features is not None and len(self.features) != vectors.shape[1]:
            raise ValueError(f"features must name all {vectors.shape[1]} columns")
        vectors = vectors.copy()
        vectors.setflags(write=False)
        object.__setattr__(self, "vectors", vectors)

    @classmethod
    def random(cls, vocab: Vocabulary, d_model: int, seed: int = 0) -> EmbeddingTable:
        """A deterministic table drawn from :math:`\\mathcal{N}(0, 1/d_{model})`, as a freshly
        initialised model has before training."""
        if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"d_model must be a positive integer, got {d_model!r}")
        rng = np.random.default_rng(seed)
        return cls(vocab, rng.normal(0.0, 1.0 / np.sqrt(d_model), (len(vocab), d_model)))

    @property
    def d_model(self) -> int:
        return self.vectors.shape[1]

    def lookup(self, tokens: str | Sequence[str]) -> np.ndarray:
        """Vectors of ``tokens`` (a list of tokens, or a text to tokenize): ``(seq, d_model)``.

        Unknown words get the ``<unk>`` vector.
        """
        if isinstance(tokens, str):
            tokens = tokenize(tokens)
        if len(tokens) == 0:
            raise ValueError("tokens must not be empty")
        return self.vectors[[self.vocab.id_of(tok) for tok in tokens]]


# Four hand-chosen features, so that every number in the early chapters can be read.
TOY_FEATURES: tuple[str, ...] = ("animal", "object", "action", "function word")

# The sentence chapters 2 and 3 attend over; every one of its tokens has a hand-made vector.
TOY_SENTENCE = "The cat sat on the mat because it was tired."

_TOY_VECTORS: dict[str, tuple[float, float, float, float]] = {
    "the": (0.0, 0.1, 0.0, 1.0),
    "a": (0.0, 0.1, 0.0, 1.0),
    "cat": (2.0, 0.2, 0.0, 0.0),
    "dog": (1.9, 0.2, 0.1, 0.0),
    "sat": (0.4, 0.0, 1.8, 0.0),
    "ran": (0.5, 0.0, 1.9, 0.0),
    "on": (0.0, 0.3, 0.1, 1.4),
    "mat": (0.1, 2.0, 0.0, 0.0),
    "ball": (0.0, 1.9, 0.2, 0.0),
    "because": (0.0, 0.0, 0.2, 1.5),
    "it": (1.4, 0.7, 0.0, 0.6),
    "was": (0.3, 0.0, 1.0, 0.9),
    "tired": (1.2, 0.0, 0.6, 0.0),
    ".": (0.0, 0.0, 0.0, 0.8),
    "how": (0.0, 0.0, 0.3, 1.2),
    "are": (0.2, 0.0, 0.9, 1.0),
    "you": (1.3, 0.0, 0.0, 0.8),
}


def toy_embeddings() -> EmbeddingTable:
    """A tiny hand-made table with the four named features of :data:`TOY_FEATURES`.

    Real tables are learned and their columns have no names; these values were chosen by hand
    (animals score high on "animal", "it" leans towards animals) so that the early chapters
    can show every number. Special tokens and unknown words map to the zero vector.
    """
    vocab = Vocabulary(SPECIAL_TOKENS + tuple(_TOY_VECTORS))
    vectors = np.zeros((len(vocab), len(TOY_FEATURES)))
    for token, vector in _TOY_VECTORS.items():
        vectors[vocab.id_of(token)] = vector
    return EmbeddingTable(vocab, vectors, TOY_FEATURES)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:math:`\\cos(a, b) = a \\cdot b / (\\lVert a \\rVert \\lVert b \\rVert)`, between -1 and 1.

    ``a``: ``(..., d)``, ``b``: ``(..., d)``, broadcast against each other; for every pair of
    rows pass ``a[:, None, :]`` and ``b[None, :, :]``. Zero vectors have no direction and raise
    ``ValueError``.
    """
    a = as_float_array(a, "a")
    b = as_float_array(b, "b")
    if a.ndim < 1 or b.ndim < 1 or a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"a and b must have shape (..., d) with the same d, got {a.shape} and {b.shape}"
        )
    norm_a = np.linalg.norm(a, axis=-1)
    norm_b = np.linalg.norm(b, axis=-1)
    if (norm_a == 0).any() or (norm_b == 0).any():
        raise ValueError("cosine similarity is undefined for a zero vector")
    return np.clip(np.sum(a * b, axis=-1) / (norm_a * norm_b), -1.0, 1.0)


def similarity_matrix(
    table: EmbeddingTable, words: Sequence[str], others: Sequence[str] | None = None
) -> np.ndarray:
    """Cosine similarity of the vector of every word of ``words`` with that of every word of
    ``others`` (default: ``words`` again): ``(len(words), len(others))``.

    Entry ``[i, j]`` is :math:`\\cos(e_{w_i}, e_{o_j})`. Every word must be in the table's
    vocabulary (an unknown word has no vector of its own to compare).
    """
    others = words if others is None else others
    for name, group in (("words", words), ("others", others)):
        if isinstance(group, str) or len(group) == 0:
            raise ValueError(f"{name} must be a non-empty list of words, got {group!r}")
        unknown = [w for w in group if w not in table.vocab]
        if unknown:
            raise ValueError(f"{name} must be in the vocabulary; unknown: {unknown}")
    a = table.lookup(list(words))
    b = table.lookup(list(others))
    return cosine_similarity(a[:, None, :], b[None, :, :])


def word_vector_in(table: EmbeddingTable, text: str, word: str) -> np.ndarray:
    """The vector that ``word`` (a token, as :func:`~transformer_tutorial.tokens.tokenize`
    writes it) gets inside ``text``: its row of ``table.lookup(text)``, shape ``(d_model,)``.

    The row depends on the word alone, never on ``text``: that is the point of chapter 1.
    """
    tokens = tokenize(text)
    if word not in tokens:
        raise ValueError(f"{word!r} is not a token of {text!r}; its tokens are {tokens}")
    return table.lookup(tokens)[tokens.index(word)]


def most_similar(
    table: EmbeddingTable, word: str, candidates: Sequence[str] | None = None
) -> list[tuple[str, float]]:
    """``(candidate, cosine similarity to word)`` for every candidate other than ``word``
    itself, most similar first (ties keep the candidates' order). ``candidates`` default to
    the table's ordinary words (:attr:`Vocabulary.words`)."""
    candidates = table.vocab.words if candidates is None else candidates
    others = [c for c in candidates if c != word]
    if not others:
        raise ValueError(f"candidates must hold at least one word other than {word!r}")
    similarities = similarity_matrix(table, [word], others)[0]
    order = np.argsort(-similarities, kind="stable")
    return [(others[i], float(similarities[i])) for i in order]
