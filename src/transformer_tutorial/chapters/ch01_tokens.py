"""Chapter 1: tokens and embeddings; the chapter's explorer.

- :func:`word_similarity`: pick a word and an embedding table (the hand-made toy table or a
  random, untrained one) and see which words sit close to it (cosine similarity).
"""

from __future__ import annotations

from typing import Any

from transformer_tutorial import checks
from transformer_tutorial.widgets import Control, Explorer, bars, frame

__all__ = [
    "word_similarity",
]


# -- The chapter's explorer ----------------------------------------------------------------


# Wider random tables show the same thing (no word is closer to one than another), slower.
MAX_RANDOM_D_MODEL = 4096


def word_similarity(random_d_model: int = 64, seed: int = 0) -> Explorer:
    """Pick a word of the toy vocabulary and a table (the hand-made one, or a random one of
    width ``random_d_model`` as before training): one bar per other word, its cosine
    similarity to the chosen word, most similar first."""
    from transformer_tutorial.embeddings import EmbeddingTable, most_similar, toy_embeddings

    random_d_model = checks.int_in_range(random_d_model, "random_d_model", 1, MAX_RANDOM_D_MODEL)
    seed = checks.non_negative_int(seed, "seed")
    toy = toy_embeddings()
    tables = {
        "hand-made table (like a trained model)": toy,
        f"random table (untrained, d_model={random_d_model})": EmbeddingTable.random(
            toy.vocab, random_d_model, seed
        ),
    }

    def data(word: str, table: str) -> dict[str, Any]:
        pairs = most_similar(tables[table], word)
        (best, high), (worst, low) = pairs[0], pairs[-1]
        return frame(
            bars([s for _, s in pairs], [w for w, _ in pairs], title=table, vmin=-1.0,
                 vmax=1.0, colors="sign", value_title=f'cosine similarity to "{word}"',
                 hover=f"cos('{word}', '{{label}}') = {{value}}"),
            description=f"Closest to '{word}': '{best}' ({high:.2f}); farthest: '{worst}' "
            f"({low:.2f}).",
        )  # fmt: skip

    return Explorer(
        "Which words does a word sit close to?",
        (
            Control("word", toy.vocab.words, label="word", default="cat"),
            Control("table", tuple(tables), label="embedding table"),
        ),
        data,
        caption="Each bar is the cosine similarity between the chosen word's vector and "
        "another word's vector. In the hand-made table animals sit close to animals; in a "
        "random table, as before training, no word is much closer to one word than another.",
    )
