"""Token embeddings: one vector per vocabulary entry, looked up by id.

An embedding table is a ``(vocab_size, d_model)`` matrix; embedding a sentence is row lookup.
The lookup ignores context: a word gets the same vector in every sentence. Attention (chapter 2
on) is what mixes context into these vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transformer_tutorial import checks
from transformer_tutorial.tokens import SPECIAL_TOKENS, Vocabulary, tokenize

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
        checks.instance_of(self.vocab, "vocab", Vocabulary)
        vectors = checks.float_array(self.vectors, "vectors", "(vocab_size, d_model)", ndim=2)
        if vectors.shape[0] != len(self.vocab):
            raise ValueError(
                f"vectors must have shape (vocab_size, d_model) = ({len(self.vocab)}, d_model), "
                f"got {vectors.shape}"
            )
        features = self.features
        if features is not None and len(checks.strings(features, "features")) != vectors.shape[1]:
            raise ValueError(f"features must name all {vectors.shape[1]} columns")
        vectors = vectors.copy()
        vectors.setflags(write=False)
        object.__setattr__(self, "vectors", vectors)

    @classmethod
    def random(cls, vocab: Vocabulary, d_model: int, seed: int = 0) -> EmbeddingTable:
        """A deterministic table drawn from :math:`\\mathcal{N}(0, 1/d_{model})`, as a freshly
        initialised model has before training."""
        d_model = checks.positive_int(d_model, "d_model")
        rng = np.random.default_rng(checks.non_negative_int(seed, "seed"))
        return cls(vocab, rng.normal(0.0, 1.0 / np.sqrt(d_model), (len(vocab), d_model)))

    @property
    def d_model(self) -> int:
        return self.vectors.shape[1]

    def lookup(self, tokens: str | Sequence[str]) -> np.ndarray:
        """Vectors of ``tokens`` (a list of tokens, or a text to tokenize): ``(seq, d_model)``.

        Unknown words get the ``<unk>`` vector.
        """
        tokens = tokenize(tokens) if isinstance(tokens, str) else checks.strings(tokens, "tokens")
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


def _scaled_to_max_one(x: np.ndarray) -> np.ndarray:
    """Each vector (last axis) divided by its largest absolute entry (zero vectors stay 0)."""
    peak = np.max(np.abs(x), axis=-1, keepdims=True)
    return np.divide(x, peak, out=np.zeros_like(x), where=peak > 0)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:math:`\\cos(a, b) = a \\cdot b / (\\lVert a \\rVert \\lVert b \\rVert)`, between -1 and 1.

    ``a``: ``(..., d)``, ``b``: ``(..., d)``, broadcast against each other; for every pair of
    rows pass ``a[:, None, :]`` and ``b[None, :, :]``. Zero vectors have no direction and raise
    ``ValueError``.
    """
    a = checks.float_array(a, "a", "(..., d)", min_ndim=1)
    b = checks.float_array(b, "b", "(..., d)", min_ndim=1)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"a and b must have shape (..., d) with the same d, got {a.shape} and {b.shape}"
        )
    checks.batch_axes(1, a=a, b=b)
    # Scale each vector by its largest entry first: the norm of 1e200-sized entries would
    # overflow to inf (and of 1e-200-sized ones underflow to 0), the cosine does not change.
    a, b = _scaled_to_max_one(a), _scaled_to_max_one(b)
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
    checks.instance_of(table, "table", EmbeddingTable)
    others = words if others is None else others
    for name, group in (("words", words), ("others", others)):
        if isinstance(group, str) or not isinstance(group, Sequence) or len(group) == 0:
            raise ValueError(f"{name} must be a non-empty list of words, got {group!r}")
        checks.strings(group, name)
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
    tokens = tokenize(checks.text(text, "text"))
    checks.text(word, "word")
    if word not in tokens:
        raise ValueError(f"word {word!r} is not a token of {text!r}; its tokens are {tokens}")
    return table.lookup(tokens)[tokens.index(word)]


def most_similar(
    table: EmbeddingTable, word: str, candidates: Sequence[str] | None = None
) -> list[tuple[str, float]]:
    """``(candidate, cosine similarity to word)`` for every candidate other than ``word``
    itself, most similar first (ties keep the candidates' order). ``candidates`` default to
    the table's ordinary words (:attr:`Vocabulary.words`)."""
    checks.instance_of(table, "table", EmbeddingTable)
    checks.text(word, "word")
    if candidates is None:
        candidates = table.vocab.words
    candidates = checks.strings(candidates, "candidates")
    others = [c for c in candidates if c != word]
    if not others:
        raise ValueError(f"candidates must hold at least one word other than {word!r}")
    similarities = similarity_matrix(table, [word], others)[0]
    order = np.argsort(-similarities, kind="stable")
    return [(others[i], float(similarities[i])) for i in order]
