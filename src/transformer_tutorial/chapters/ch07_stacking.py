"""Chapter 7: what MiniLM's layers do, measured; a word's sense by layer; MiniLM in use.

- :func:`layer_profile`: per layer, averaged over a few sentences, how much the strongest head
  attends to the previous and to the next token, how much attention rests on ``[CLS]`` and
  ``[SEP]``, how spread out the attention is (entropy), and how much the block changes the
  tokens' vectors.
- :func:`sense_gap`: how much closer a word's vector is, layer by layer, to one group of
  anchor words than to another (the "bank" exercise).
- :func:`sentence_embeddings` and :func:`similarity_table`: all-MiniLM-L6-v2 used as it was
  trained, mean pooling of the last layer then L2 normalization (its ``modules.json``:
  Transformer, Pooling with ``pooling_mode_mean_tokens``, Normalize).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transformer_tutorial.attention import entropy
from transformer_tutorial.checks import argument_errors, instance_of, reader_text, strings
from transformer_tutorial.embeddings import cosine_similarity
from transformer_tutorial.pretrained import MiniLM
from transformer_tutorial.probing import offset_attention

__all__ = [
    "PROBE_SENTENCES",
    "PROFILE_NAMES",
    "layer_profile",
    "sense_gap",
    "sentence_embeddings",
    "similarity_table",
]

PROBE_SENTENCES: tuple[str, ...] = (
    "The cat sat on the mat because it was tired.",
    "The animal didn't cross the street because it was too tired.",
    "She baked an apple pie for her grandmother on Sunday.",
    "The committee postponed the vote until the report was finished.",
)

PROFILE_NAMES = {
    "previous": "previous token (strongest head)",
    "next": "next token (strongest head)",
    "separators": "[CLS] + [SEP] (mean over heads)",
    "entropy": "attention entropy / ln n (mean over heads)",
    "change": "1 - cos(block input, block output)",
}


def layer_profile(
    minilm: MiniLM, sentences: Sequence[str] = PROBE_SENTENCES
) -> dict[str, np.ndarray]:
    """Five probes per layer ``(layers,)``, averaged over ``sentences`` (keys of
    :data:`PROFILE_NAMES`):

    - ``previous`` / ``next``: the largest, over the layer's heads, of the mean weight a token
      gives the token just before / after it
      (:func:`~transformer_tutorial.probing.offset_attention`);
    - ``separators``: the share of attention on the first and last token (``[CLS]``,
      ``[SEP]``), mean over heads and queries;
    - ``entropy``: the attention's entropy divided by :math:`\\ln n` (1 = uniform over the
      :math:`n` tokens, 0 = all on one token), mean over heads and queries;
    - ``change``: :math:`1 - \\cos(h^{(l)}_i, h^{(l+1)}_i)`, mean over tokens: how far the
      block turns each token's vector.
    """
    minilm = instance_of(minilm, "minilm", MiniLM)
    sentences = strings(sentences, "sentences", what="texts", allow_empty=False)
    rows: dict[str, list[np.ndarray]] = {key: [] for key in PROFILE_NAMES}
    for i, text in enumerate(sentences):
        with argument_errors(f"sentences[{i}]"):
            run = minilm.encode(text)
        weights = run.record.weights  # (layers, heads, n, n)
        n = weights.shape[-1]
        rows["previous"].append(offset_attention(run.record, -1).max(axis=1))
        rows["next"].append(offset_attention(run.record, 1).max(axis=1))
        rows["separators"].append(weights[..., [0, -1]].sum(-1).mean(axis=(1, 2)))
        rows["entropy"].append(entropy(weights).mean(axis=(1, 2)) / np.log(n))
        h = run.hidden_states
        rows["change"].append(1.0 - cosine_similarity(h[:-1], h[1:]).mean(axis=1))
    return {key: np.mean(values, axis=0) for key, values in rows.items()}


def sense_gap(
    minilm: MiniLM, text: str, word: str, towards: Sequence[str], away: Sequence[str]
) -> np.ndarray:
    """``(layers + 1,)``: the cosine similarity of ``word`` in ``text`` to the mean of the
    ``towards`` anchors minus that to the mean of the ``away`` anchors, layer by layer
    (:meth:`~transformer_tutorial.pretrained.MiniLM.similarity_by_layer`). Positive: closer
    to ``towards``."""
    minilm = instance_of(minilm, "minilm", MiniLM)
    tokens = minilm.tokenize(text).tokens
    if reader_text(word, "word") not in tokens:
        raise ValueError(f"word must be one of the tokens of text {list(tokens)}, got {word!r}")
    similarities = []
    for name, anchors in (("towards", towards), ("away", away)):
        anchors = strings(anchors, name, what="anchor words", allow_empty=False)
        with argument_errors(name):
            similarities.append(minilm.similarity_by_layer(text, word, anchors))
    return similarities[0] - similarities[1]


def sentence_embeddings(minilm: MiniLM, sentences: Sequence[str]) -> np.ndarray:
    """``(len(sentences), d_model)``: each sentence's last-layer token vectors averaged (mean
    pooling over all its tokens, ``[CLS]`` and ``[SEP]`` included, as the model card's
    ``mean_pooling`` with an all-ones attention mask) and scaled to length 1."""
    minilm = instance_of(minilm, "minilm", MiniLM)
    sentences = strings(sentences, "sentences", what="texts", allow_empty=False)
    pooled = []
    for i, text in enumerate(sentences):
        with argument_errors(f"sentences[{i}]"):
            pooled.append(minilm.encode(text).hidden_states[-1].mean(axis=0))
    pooled = np.stack(pooled)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def similarity_table(minilm: MiniLM, sentences: Sequence[str]) -> np.ndarray:
    """``(k, k)``: the cosine similarity of every pair of :func:`sentence_embeddings` (their
    dot products, since they have length 1)."""
    vectors = sentence_embeddings(minilm, sentences)
    return vectors @ vectors.T
