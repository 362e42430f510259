"""From text to tokens to ids: a word-level tokenizer and its vocabulary.

Real models split text into sub-word pieces; a word-level tokenizer keeps the first chapter's
examples readable while showing every idea that matters: a fixed vocabulary, special tokens,
and an id for words the vocabulary has never seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from transformer_tutorial import checks

__all__ = ["PAD", "UNK", "BOS", "EOS", "SPECIAL_TOKENS", "tokenize", "Vocabulary", "pad_batch"]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS)

_WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split ``text`` into words and punctuation marks: ``"How are you?"`` →
    ``["how", "are", "you", "?"]``."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    tokens = _WORD.findall(text.lower() if lowercase else text)
    if not tokens:
        raise ValueError("text must contain at least one word or punctuation mark, got "
                         f"{text!r}")
    return tokens


@dataclass(frozen=True)
class Vocabulary:
    """A fixed list of tokens; a token's id is its position in the list.

    The four special tokens come first: ``<pad>`` = 0 (fills short sequences in a batch),
    ``<unk>`` = 1 (any word not in the vocabulary), ``<bos>`` = 2 and ``<eos>`` = 3 (beginning
    and end of a sequence).
    """

    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", tuple(checks.strings(self.tokens, "tokens")))
        if self.tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise ValueError(f"tokens: a vocabulary must start with {SPECIAL_TOKENS}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        object.__setattr__(self, "_ids", {tok: i for i, tok in enumerate(self.tokens)})

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Vocabulary:
        """Special tokens, then every word of ``texts`` in order of first appearance."""
        words: dict[str, None] = {}
        for text in texts:
            words.update(dict.fromkeys(tokenize(text)))
        return cls(SPECIAL_TOKENS + tuple(w for w in words if w not in SPECIAL_TOKENS))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    @property
    def words(self) -> tuple[str, ...]:
        """The ordinary tokens: every entry after the special tokens."""
        return self.tokens[len(SPECIAL_TOKENS) :]

    def id_of(self, token: str) -> int:
        """The id of ``token``, or the id of ``<unk>`` if the vocabulary lacks it."""
        return self._ids.get(checks.text(token, "token", allow_empty=True), self._ids[UNK])

    def encode(self, text: str, add_bos_eos: bool = False) -> list[int]:
        """Token ids of ``text``, optionally wrapped in ``<bos>`` … ``<eos>``."""
        ids = [self.id_of(tok) for tok in tokenize(text)]
        return [self._ids[BOS], *ids, self._ids[EOS]] if add_bos_eos else ids

    def decode(self, ids: Sequence[int]) -> list[str]:
        """The tokens of ``ids``; raises ``ValueError`` for an id outside ``[0, len(self))``."""
        ids = checks.int_sequence(ids, "ids")
        bad = [i for i in ids if not 0 <= int(i) < len(self.tokens)]
        if bad:
            raise ValueError(f"ids must lie in [0, {len(self.tokens)}), got {bad}")
        return [self.tokens[int(i)] for i in ids]


def pad_batch(id_lists: Sequence[Sequence[int]], pad_id: int = 0) -> np.ndarray:
    """Stack token-id lists of different lengths into one ``(batch, seq)`` integer array,
    right-padding each list with ``pad_id`` up to the longest (``seq`` = the longest length).

    ``[[5, 6, 7], [8]]`` → ``[[5, 6, 7], [8, 0, 0]]``. A model attends past the padding with a
    padding mask (:func:`~transformer_tutorial.attention.padding_mask`).
    """
    pad_id = checks.non_negative_int(pad_id, "pad_id")
    if not isinstance(id_lists, Sequence) or isinstance(id_lists, str) or len(id_lists) == 0:
        raise ValueError("id_lists must be a non-empty list of id lists, shape (batch, *)")
    rows = [list(ids) for ids in id_lists]
    for i, row in enumerate(rows):
        if not row or not all(
            isinstance(t, (int, np.integer)) and not isinstance(t, bool) and t >= 0 for t in row
        ):
            raise ValueError(
                f"id_lists[{i}] must be a non-empty list of non-negative integer ids, got {row!r}"
            )
    batch = np.full((len(rows), max(len(row) for row in rows)), pad_id, dtype=np.int64)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = row
    return batch
