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
- :func:`similarity_to_anchors`: the "apple" experiment, a word's similarity to a group of
  anchor words layer by layer; :func:`layer_curves` draws such per-layer curves.
- :func:`minilm_layers_explorer`: every head of a chosen layer, on a sentence the reader types.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from transformer_tutorial import checks
from transformer_tutorial.attention import entropy
from transformer_tutorial.checks import (
    argument_errors,
    as_float_array,
    instance_of,
    reader_text,
    strings,
)
from transformer_tutorial.embeddings import cosine_similarity
from transformer_tutorial.plots import new_axes, plain_text
from transformer_tutorial.pretrained import MiniLM
from transformer_tutorial.probing import offset_attention
from transformer_tutorial.widgets import Control, Explorer, frame, head_grid, strongest_link

__all__ = [
    "PROBE_SENTENCES",
    "PROFILE_NAMES",
    "layer_profile",
    "sense_gap",
    "sentence_embeddings",
    "similarity_table",
    "MINILM_SENTENCES",
    "MINILM_LAYERS",
    "MINILM_MAX_GRID_TOKENS",
    "minilm_layers_explorer",
    "similarity_by_layer",
    "similarity_to_anchors",
    "layer_curves",
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
    (:func:`similarity_to_anchors`). Positive: closer to ``towards``."""
    minilm = instance_of(minilm, "minilm", MiniLM)
    tokens = minilm.tokenize(text).tokens
    if reader_text(word, "word") not in tokens:
        raise ValueError(f"word must be one of the tokens of text {list(tokens)}, got {word!r}")
    similarities = []
    for name, anchors in (("towards", towards), ("away", away)):
        anchors = strings(anchors, name, what="anchor words", allow_empty=False)
        with argument_errors(name):
            similarities.append(similarity_to_anchors(minilm, text, word, anchors))
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


# -- A word's sense, layer by layer (the "apple" experiment) -------------------------------


def similarity_by_layer(vectors: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Cosine similarity of two words' vectors layer by layer: ``(layers,)`` from two
    ``(layers, d_model)`` arrays (e.g. :meth:`MiniLM.contextual_vectors
    <transformer_tutorial.pretrained.MiniLM.contextual_vectors>`)."""
    a = as_float_array(vectors, "vectors")
    b = as_float_array(others, "others")
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"vectors and others must both have shape (layers, d_model), got {a.shape} and "
            f"{b.shape}"
        )
    return cosine_similarity(a, b)


def similarity_to_anchors(
    minilm: MiniLM, text: str, word: str, anchors: Sequence[str]
) -> np.ndarray:
    """Cosine similarity, layer by layer, between ``word`` inside ``text`` and the mean of
    the ``anchors`` (words, each read alone as ``[CLS] anchor [SEP]``), ``(layers + 1,)``.

    The "Apple" experiment: "apple" in a sentence about phones against company names,
    and in one about pie against fruit names.
    """
    checks.instance_of(minilm, "minilm", MiniLM)
    anchors = checks.strings(anchors, "anchors")
    if not anchors:
        raise ValueError("anchors must be a non-empty list of words")
    anchor = np.mean([minilm.contextual_vectors(a, a.lower()) for a in anchors], axis=0)
    return similarity_by_layer(minilm.contextual_vectors(text, word), anchor)


def layer_curves(
    curves: Mapping[str, np.ndarray],
    ax=None,
    title: str | None = None,
    ylabel: str = "value",
    xlabel: str = "layer (0 = input embeddings)",
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """One line per named curve ``(layers,)`` over the layer index, with markers."""
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must hold at least one named (layers,) array")
    ax = new_axes(ax, figsize=(6.0, 3.6))
    styles = ["-o", "--s", "-^", ":D", "-v", "--x"]
    for k, (name, values) in enumerate(curves.items()):
        values = as_float_array(values, name)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"curve {name!r} must have shape (layers,), got {values.shape}")
        ax.plot(np.arange(values.size), values, styles[k % len(styles)],
                label=plain_text(str(name), "curves"))
    ax.set_xlabel(plain_text(xlabel, "xlabel"))
    ax.set_ylabel(plain_text(ylabel, "ylabel"))
    ax.xaxis.get_major_locator().set_params(integer=True)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(plain_text(title, "title"))
    return ax.figure


# -- The chapter's explorer ----------------------------------------------------------------

MINILM_SENTENCES = (
    "The cat sat on the mat because it was tired.",
    "The animal didn't cross the street because it was too tired.",
)
MINILM_LAYERS = (0, 1, 2, 3, 4, 5)
MINILM_MAX_GRID_TOKENS = 24  # beyond this a head's heatmap is unreadable at column width
_SEPARATORS = ("[CLS]", "[SEP]")


@functools.lru_cache(maxsize=32)
def _minilm_record(sentence: str) -> Any:
    from transformer_tutorial.pretrained import load_minilm

    return load_minilm().attention(sentence)


def minilm_layer_data(sentence: str, layer: int) -> dict[str, Any]:
    """All 12 heads of one layer of the real MiniLM on ``sentence`` (at most
    :data:`MINILM_MAX_GRID_TOKENS` tokens), four at a time."""
    if layer not in MINILM_LAYERS:
        raise ValueError(f"layer must be one of {MINILM_LAYERS}, got {layer!r}")
    record = _minilm_record(sentence)
    if record.q_len > MINILM_MAX_GRID_TOKENS:
        raise ValueError(
            f"the sentence has {record.q_len} tokens; this view shows at most "
            f"{MINILM_MAX_GRID_TOKENS}: type a shorter sentence"
        )
    tokens = list(record.query_tokens)
    weights = record.layer(layer)  # (heads, seq, seq)
    words = np.array([t not in _SEPARATORS for t in tokens])
    links = weights * np.outer(words, words) * (1 - np.eye(len(tokens)))  # word → other word
    head = int(links.reshape(len(weights), -1).max(axis=1).argmax())
    resting = float(weights[:, :, ~words].sum(axis=-1).mean())
    return frame(
        head_grid(weights, tokens, title=f"MiniLM, layer {layer}: the 12 heads"),
        description=f"Layer {layer}: {resting:.0%} of the attention rests on [CLS]/[SEP]; the "
        f"strongest link between two different words is in head {head}: "
        f"{strongest_link(links[head], tokens, tokens)}.",
    )


def minilm_layers_explorer() -> Explorer:
    """Chapter 7: every head of a chosen layer of MiniLM, on a sentence the reader types (in
    the built book MiniLM runs in the reader's browser: :mod:`.browser_model`)."""
    from transformer_tutorial.bertviz_views import VENDOR_URL_MARKER
    from transformer_tutorial.browser_model import FILE_PROTOCOL_MESSAGE

    return Explorer(
        "What each layer of a trained encoder attends to",
        (
            Control("sentence", MINILM_SENTENCES, label="sentence", free_text=True),
            Control("layer", MINILM_LAYERS, label="layer"),
        ),
        minilm_layer_data,
        caption="all-MiniLM-L6-v2 run by the book's own encoder (in the online book: the same "
        "weights, exported from it, running in your browser). Each panel is one head: row = "
        "the token that attends, column = the token attended to. Early layers look at "
        "neighbours and at [CLS]/[SEP]; later ones link words that belong together.",
        browser_model={"name": "minilm-layers", "site_root": VENDOR_URL_MARKER + "../",
                       "file_message": FILE_PROTOCOL_MESSAGE},
    )  # fmt: skip
