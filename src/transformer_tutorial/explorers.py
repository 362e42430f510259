"""The book's explorers, in chapter order: each declares its controls once and computes the
data of its figure; :mod:`transformer_tutorial.widgets` shows it, live in Jupyter and without a
kernel in the built book."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from transformer_tutorial.embeddings import TOY_SENTENCE
from transformer_tutorial.widgets import (
    Control,
    Explorer,
    bars,
    frame,
    head_grid,
    heatmap,
    histogram,
    lines,
)

__all__ = [
    "word_similarity",
    "softmax_temperature",
    "sqrt_dk_scaling",
    "heads_explorer",
    "position_explorer",
    "layer_norm_explorer",
    "minilm_layers_explorer",
    "cross_attention_training",
    "next_token_explorer",
]


def _strongest_link(weights: np.ndarray, rows: list[str], cols: list[str]) -> str:
    """``'it' → 'cat' (0.71)``: the largest entry of ``weights`` ``(rows, cols)``."""
    q, k = np.unravel_index(int(np.argmax(weights)), weights.shape)
    return f"'{rows[q]}' → '{cols[k]}' ({weights[q, k]:.2f})"


# -- Chapter 1: tokens and embeddings ----------------------------------------------------


def word_similarity(random_d_model: int = 64, seed: int = 0) -> Explorer:
    """Pick a word of the toy vocabulary and a table (the hand-made one, or a random one of
    width ``random_d_model`` as before training): one bar per other word, its cosine
    similarity to the chosen word, most similar first."""
    from transformer_tutorial.embeddings import EmbeddingTable, most_similar, toy_embeddings

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


# -- Chapter 2: attention as a weighted average ------------------------------------------

WEIGHTED_AVERAGE_SENTENCE = TOY_SENTENCE
# 25 temperatures from very sharp to very flat, denser around T = 1.
TEMPERATURES = (0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4,
                1.6, 1.8, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 7.0, 10.0)  # fmt: skip


def softmax_temperature_data(
    temperature: float, sentence: str = WEIGHTED_AVERAGE_SENTENCE, query: str = "it"
) -> dict[str, Any]:
    """Toy-embedding attention weights :math:`\\mathrm{softmax}(XX^\\top / T)` of ``sentence``
    at ``temperature`` ``T``: every word's weights (heatmap) and the row of ``query`` (bars),
    with that row's largest weight and entropy."""
    from transformer_tutorial.attention import entropy, relevance_scores, softmax
    from transformer_tutorial.embeddings import toy_embeddings
    from transformer_tutorial.tokens import tokenize

    tokens = tokenize(sentence)
    if query not in tokens:
        raise ValueError(f"query must be a token of the sentence {tokens}, got {query!r}")
    x = toy_embeddings().lookup(tokens)
    weights = softmax(relevance_scores(x, x), temperature)
    row = weights[tokens.index(query)]
    top = tokens[int(row.argmax())]
    summary = (f"T = {temperature:g}: the largest weight of '{query}' is {row.max():.2f} (on "
               f"'{top}'); entropy {entropy(row):.2f} nats (uniform: {np.log(len(tokens)):.2f})")
    return frame(
        heatmap(weights, tokens, tokens, title="every word's weights", annotate=False),
        bars(row, tokens, title=f"the row of '{query}'", vmin=0.0, vmax=1.0,
             value_title="attention weight", highlight=[int(row.argmax())],
             hover=f"'{query}' → '{{label}}': {{value}}"),
        title=summary, description=summary + ".", widths=(1.35, 1.0),
    )  # fmt: skip


def softmax_temperature(
    sentence: str = WEIGHTED_AVERAGE_SENTENCE, query: str = "it"
) -> Explorer:
    """Chapter 2: the softmax temperature :math:`T` sharpens (:math:`T<1`) or flattens
    (:math:`T>1`) the attention weights of ``sentence``. Slider: ``temperature``."""

    def data(temperature: float) -> dict[str, Any]:
        return softmax_temperature_data(temperature, sentence, query)

    return Explorer(
        title="Softmax temperature: sharper or flatter weights",
        controls=(Control("temperature", TEMPERATURES, label="temperature T", default=1.0),),
        frame=data,
        caption="Weights softmax(s / T) of the hand-made toy vectors. Small T puts almost all "
        "of a row's weight on its highest score (entropy near 0); large T spreads it evenly "
        "(entropy near ln n, the uniform row). Every row still sums to 1.",
    )


# -- Chapter 3: queries, keys and values -------------------------------------------------

# Neutral labels: the queries and keys are random vectors, not the words of any sentence.
SCALING_TOKENS = tuple(f"t{i}" for i in range(1, 11))
SCALING_D_KS = tuple(2**i for i in range(11))  # 1 … 1024
SCALING_MODES = ("scaled", "unscaled")
SCALING_SCORE_RANGE = (-100.0, 100.0)  # one fixed histogram range, so spreads compare
SCALING_BINS = 40


def scaling_data(d_k: int, scaling: str) -> dict[str, Any]:
    """Weights (heatmap) and scores (histogram) of random unit-variance queries and keys of
    width ``d_k``, with scores :math:`QK^\\top/\\sqrt{d_k}` (``"scaled"``) or :math:`QK^\\top`
    (``"unscaled"``)."""
    from transformer_tutorial.scaling import random_attention

    if scaling not in SCALING_MODES:
        raise ValueError(f"scaling must be one of {SCALING_MODES}, got {scaling!r}")
    scores, weights = random_attention(
        len(SCALING_TOKENS), d_k, scale=scaling == "scaled", seed=0
    )
    largest = float(weights.max(axis=-1).mean())
    summary = (f"d_k = {d_k}, {scaling}: scores spread with standard deviation "
               f"{scores.std():.2f}; the largest weight of a row is {largest:.2f} on average")
    return frame(
        heatmap(weights, SCALING_TOKENS, SCALING_TOKENS, title="attention weights",
                annotate=False),
        histogram(scores, bins=SCALING_BINS, value_range=SCALING_SCORE_RANGE,
                  title="the scores before the softmax", x_title="score"),
        title=summary, description=summary + ".",
    )  # fmt: skip


def sqrt_dk_scaling() -> Explorer:
    """Chapter 3: why divide by :math:`\\sqrt{d_k}`. Slider: ``d_k``; dropdown: scaled or
    unscaled scores."""
    return Explorer(
        title="Scaled or unscaled dot products",
        controls=(
            Control("d_k", SCALING_D_KS, label="d_k", default=64),
            Control("scaling", SCALING_MODES, label="scaling"),
        ),
        frame=scaling_data,
        caption="Ten tokens t1 … t10, each with a random query and key of unit-variance "
        "entries (seed 0). Unscaled, the scores spread like √d_k and the softmax turns nearly "
        "one-hot; scaled, they keep a spread of about 1 whatever d_k is.",
    )


# -- Chapter 4: multi-head attention ---------------------------------------------------

HEADS_SENTENCES = (
    "the cat saw the dog and the dog saw the cat .",
    "the cat sat on the mat because it was tired .",
    "how are you",
)
HEADS_COUNTS = (1, 2, 4)


@functools.lru_cache(maxsize=16)
def _pattern_weights(tokens: tuple[str, ...], num_heads: int) -> np.ndarray:
    """Weights ``(heads, seq, seq)`` of the hand-built heads regrouped into ``num_heads``."""
    from transformer_tutorial.multihead import pattern_features, pattern_heads, regroup_heads

    _, weights = regroup_heads(pattern_heads(), num_heads)(pattern_features(list(tokens)))
    return weights[0].detach().numpy()


def heads_data(sentence: str, num_heads: int, job: str) -> dict[str, Any]:
    """The head that holds ``job`` (one of the four hand-built jobs,
    :data:`~transformer_tutorial.multihead.HEAD_PATTERNS`) when the same weights are split
    into ``num_heads`` heads, on ``sentence``."""
    from transformer_tutorial.multihead import HEAD_PATTERNS
    from transformer_tutorial.tokens import tokenize

    if job not in HEAD_PATTERNS:
        raise ValueError(f"job must be one of {HEAD_PATTERNS}, got {job!r}")
    if num_heads not in HEADS_COUNTS:
        raise ValueError(f"num_heads must be one of {HEADS_COUNTS}, got {num_heads!r}")
    tokens = tokenize(sentence)
    weights = _pattern_weights(tuple(tokens), num_heads)
    per_head = len(HEAD_PATTERNS) // num_heads
    head = HEAD_PATTERNS.index(job) // per_head
    jobs = " + ".join(HEAD_PATTERNS[head * per_head : (head + 1) * per_head])
    title = f"{num_heads} head{'s' if num_heads > 1 else ''}: head {head} = {jobs}"
    sharpness = weights[head].max(axis=-1).mean()
    return frame(
        heatmap(weights[head], tokens, tokens, title=title, annotate=False),
        description=f"{title}. Each row's largest weight is {sharpness:.2f} on average; the "
        f"strongest link is {_strongest_link(weights[head], tokens, tokens)}.",
    )


def heads_explorer() -> Explorer:
    """Chapter 4: the same four hand-built jobs split into 4, 2 or 1 heads; follow one job."""
    from transformer_tutorial.multihead import HEAD_PATTERNS

    return Explorer(
        "One job per head, or several jobs in one head",
        (
            Control("sentence", HEADS_SENTENCES, label="sentence", free_text=True),
            Control("num_heads", HEADS_COUNTS, label="number of heads", default=4),
            Control("job", HEAD_PATTERNS, label="show the head that does"),
        ),
        heads_data,
        caption="The same W^Q, W^K, W^V, W^O every time, split into 4, 2 or 1 heads. With 4 "
        "heads each does one job. With fewer, a head adds up the scores of the jobs it holds "
        "and one softmax must share its attention among them: the patterns blur together.",
    )


# -- Chapter 5: positional encoding ------------------------------------------------------

POSITION_COUNT = 48
POSITION_D_MODEL = 32
POSITION_CHOICES = tuple(range(POSITION_COUNT))
POSITION_KINDS = ("sinusoidal", "learned (untrained)", "RoPE")
_POSITION_LABELS = {
    "sinusoidal": ("PE(position), added to the embedding", "PE(position) · PE(n)"),
    "learned (untrained)": ("E(position), random before training", "E(position) · E(n)"),
    "RoPE": ("a query q rotated to the position", "RoPE(q, position) · RoPE(k, n)"),
}  # fmt: skip


@functools.lru_cache(maxsize=8)
def _position_tables(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """``vectors (positions, d)``, ``dot products (positions, positions)`` and their
    :func:`~transformer_tutorial.positional.offset_spread` for one kind."""
    import torch

    from transformer_tutorial.positional import (
        LearnedPositionalEmbedding,
        apply_rotary,
        offset_spread,
        position_dot_products,
        rotary_scores,
        sinusoidal_encoding,
    )

    if kind == "sinusoidal":
        table = sinusoidal_encoding(POSITION_COUNT, POSITION_D_MODEL)
        dots = position_dot_products(table)
    elif kind == "learned (untrained)":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            table = LearnedPositionalEmbedding(POSITION_COUNT, POSITION_D_MODEL).embedding.weight
        table = table.detach()
        dots = position_dot_products(table)
    elif kind == "RoPE":
        generator = torch.Generator().manual_seed(seed)
        q, noise = torch.randn(2, POSITION_D_MODEL, generator=generator)
        k = q + 0.5 * noise  # a key close to the query: it matches best at offset 0
        table = apply_rotary(q.expand(POSITION_COUNT, -1))  # q at every position
        dots = rotary_scores(q, k, POSITION_COUNT)
    else:
        raise ValueError(f"kind must be one of {POSITION_KINDS}, got {kind!r}")
    return table.numpy(), dots.detach().numpy(), offset_spread(dots)


def position_data(kind: str, position: int) -> dict[str, Any]:
    """Position ``position``'s vector and its dot products with every position, for one
    ``kind`` of positional information (see :func:`position_explorer`)."""
    import torch

    from transformer_tutorial.positional import offset_reference

    if position not in POSITION_CHOICES:
        raise ValueError(f"position must be one of 0 … {POSITION_COUNT - 1}, got {position!r}")
    vectors, dots, spread = _position_tables(kind)
    low, high = float(dots.min()), float(dots.max())
    pad = 0.05 * (high - low)
    bound = float(np.abs(vectors).max())
    vector_label, dot_label = _POSITION_LABELS[kind]
    reference = offset_reference(torch.from_numpy(dots), position).numpy()
    row = dots[position]
    nearest = int(np.argsort(-row)[1]) if row.argmax() == position else int(row.argmax())
    return frame(
        bars(vectors[position], range(POSITION_D_MODEL), title=vector_label, vmin=-bound,
             vmax=bound, orientation="vertical", colors="sign", label_title="feature i",
             hover="feature {label}: {value}"),
        lines(np.arange(POSITION_COUNT), {dot_label: row, "if it depended on the distance "
              "only": reference}, title=f"{dot_label} for every position n", x_title="n",
              ymin=low - pad, ymax=high + pad, xmarker=position,
              styles={"if it depended on the distance only": "dashed"}),
        title=f"{kind}, position {position}: largest gap to 'distance only', over all "
        f"positions: {spread:.2g}",
        description=f"{kind}, position {position}: the most similar other position is "
        f"{nearest}; the curve's largest gap to 'distance only' is {spread:.2g}.",
    )  # fmt: skip


def position_explorer() -> Explorer:
    """Chapter 5: one position's encoding and how it lines up with every other position."""
    return Explorer(
        "What a position looks like, and whom it resembles",
        (
            Control("kind", POSITION_KINDS, label="positional information"),
            Control("position", POSITION_CHOICES, label="position", default=20),
        ),
        position_data,
        caption=f"Left: the vector of the chosen position (d = {POSITION_D_MODEL}). Right: its "
        "dot product with each of the other positions. The dashed curve is what the solid "
        "curve would be if it depended only on the distance between the two positions. "
        "Sinusoidal encodings and RoPE follow it exactly; an untrained learned table does not.",
    )


# -- Chapter 6: add & norm and the feed-forward network ----------------------------------

NORM_SENTENCE = "the cat sat on the mat because it was tired ."
NORM_D_MODEL = 16
NORM_STAGES = (
    "input: x + Attention(x)",
    "standardized: (x - mean) / std",
    "output: gamma * standardized + beta",
)


@functools.lru_cache(maxsize=4)
def layer_norm_example(seed: int = 0) -> tuple[list[str], dict[str, Any]]:
    """The first layer norm of a seeded post-norm encoder block (:func:`seeded_encoder_layer`,
    ``d_model = 16``, 2 heads) on :data:`NORM_SENTENCE`: its tokens and
    :func:`~transformer_tutorial.layers.layer_norm_steps` of :math:`x + \\mathrm{Attention}(x)`,
    each ``(seq, d_model)`` (statistics ``(seq, 1)``), plus ``input``."""
    from transformer_tutorial.embeddings import EmbeddingTable
    from transformer_tutorial.layers import (
        EncoderBlock,
        encoder_block_steps,
        layer_norm_steps,
        seeded_encoder_layer,
    )
    from transformer_tutorial.positional import embed_with_positions
    from transformer_tutorial.tokens import Vocabulary, tokenize

    tokens = tokenize(NORM_SENTENCE)
    table = EmbeddingTable.random(Vocabulary.from_texts([NORM_SENTENCE]), NORM_D_MODEL, seed)
    block = EncoderBlock.from_torch(seeded_encoder_layer(NORM_D_MODEL, 2, 4 * NORM_D_MODEL,
                                                         seed=seed))
    steps = encoder_block_steps(block, embed_with_positions(tokens, table))
    norm = layer_norm_steps(steps["x + attention"], block.add_norm1.norm)
    result = {"input": steps["x + attention"][0]}
    result.update({name: value[0] for name, value in norm.items()})
    return tokens, result


NORM_BLOCKS = ("seeded block (d_model = 16)",
               "MiniLM layer 0 (trained gamma and beta, d_model = 384)")  # fmt: skip


@functools.lru_cache(maxsize=1)
def minilm_layer_norm_example() -> tuple[list[str], dict[str, Any]]:
    """The first layer norm of the real MiniLM's layer 0 on :data:`NORM_SENTENCE`, with its
    trained :math:`\\gamma` and :math:`\beta`: its tokens (``[CLS]`` and ``[SEP]`` included) and
    :func:`~transformer_tutorial.layers.layer_norm_steps` of :math:`x + \\mathrm{Attention}(x)`
    as in :func:`layer_norm_example`, each ``(seq, 384)``."""
    import torch

    from transformer_tutorial.cost import single_threaded
    from transformer_tutorial.layers import encoder_block_steps, layer_norm_steps
    from transformer_tutorial.pretrained import load_minilm

    minilm = load_minilm()
    tokenized = minilm.tokenize(NORM_SENTENCE)
    block = minilm.model.blocks[0]
    with torch.no_grad(), single_threaded():
        x = minilm.model.embeddings(torch.tensor([tokenized.ids]))
        steps = encoder_block_steps(block, x)
        norm = layer_norm_steps(steps["x + attention"], block.add_norm1.norm)
    result = {"input": steps["x + attention"][0]}
    result.update({name: value[0] for name, value in norm.items()})
    return list(tokenized.tokens), result


def layer_norm_token_labels(tokens: list[str]) -> list[str]:
    """``"word (position p)"`` for each token: the labels of the token dropdown."""
    return [f"{token} (position {p})" for p, token in enumerate(tokens)]


def layer_norm_data(token: str, stage: str, block: str = NORM_BLOCKS[0]) -> dict[str, Any]:
    """One token's features at one stage of layer normalization in one ``block`` (see
    :func:`layer_norm_explorer`); ``token`` is ``"word (position p)"`` of
    :data:`NORM_SENTENCE`'s words (MiniLM's ``[CLS]`` shifts its positions by one)."""
    tokens, steps = layer_norm_example()
    names = layer_norm_token_labels(tokens)
    if token not in names:
        raise ValueError(f"token must be one of {names}, got {token!r}")
    if stage not in NORM_STAGES:
        raise ValueError(f"stage must be one of {NORM_STAGES}, got {stage!r}")
    if block not in NORM_BLOCKS:
        raise ValueError(f"block must be one of {NORM_BLOCKS}, got {block!r}")
    position = names.index(token)
    if block != NORM_BLOCKS[0]:
        minilm_tokens, steps = minilm_layer_norm_example()
        position += 1  # after [CLS]
        if minilm_tokens[position] != tokens[position - 1]:
            raise ValueError(f"MiniLM splits {tokens[position - 1]!r} into word pieces")
    key = ("input", "standardized", "output")[NORM_STAGES.index(stage)]
    bound = 1.1 * max(float(steps[k].abs().max()) for k in ("input", "standardized", "output"))
    values = steps[key][position].detach().numpy()
    return frame(
        bars(values, range(values.size), title=f'"{token}": {stage}', vmin=-bound, vmax=bound,
             orientation="vertical", colors="sign", label_title="feature",
             hover="feature {label}: {value}"),
        description=f'"{token}", {stage}: mean {values.mean():.2f}, standard deviation '
        f"{values.std():.2f}, largest feature {np.abs(values).max():.2f}.",
    )  # fmt: skip


def layer_norm_explorer() -> Explorer:
    """Chapter 6: layer norm on one token, before, during and after, in a seeded block or
    with the trained scale and shift of the real MiniLM."""
    from transformer_tutorial.tokens import tokenize

    labels = tuple(layer_norm_token_labels(tokenize(NORM_SENTENCE)))
    return Explorer(
        "Layer norm, one token at a time",
        (
            Control("token", labels, label="token", default=labels[1]),
            Control("stage", NORM_STAGES, label="stage"),
            Control("block", NORM_BLOCKS, label="layer norm of"),
        ),
        layer_norm_data,
        caption="The features of one token inside the first Add & Norm of an encoder block: a "
        "seeded block with 16 features, or the real MiniLM's first layer with 384. "
        "Standardizing moves each token's mean to 0 and its spread to 1 using only that "
        "token's own features; the learned gamma and beta then rescale and shift each feature "
        "(in the trained MiniLM a few features get far larger scales than the rest).",
    )


# -- Chapter 7: stacking layers (the real MiniLM) ----------------------------------------

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
        f"{_strongest_link(links[head], tokens, tokens)}.",
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


# -- Chapter 8: the encoder–decoder ---------------------------------------------------


def cross_attention_training(run) -> Explorer:
    """Chapter 8: the reversal model's cross-attention on one fixed example, at each snapshot
    step of ``run`` (a :class:`~transformer_tutorial.training.TrainingRun`). Slider: training
    step; dropdown: decoder layer. One panel per head."""
    snapshots = run.snapshots
    if not snapshots:
        raise ValueError("run has no snapshots: train with snapshot_steps, e.g. (0, 100, 300)")
    steps = tuple(sorted(snapshots))
    layers = tuple(range(snapshots[steps[0]].num_layers))

    def data(step: int, layer: int) -> dict[str, Any]:
        record = snapshots[step]
        weights = record.layer(layer)
        n = min(weights.shape[1:])
        anti = weights[:, np.arange(n), n - 1 - np.arange(n)].mean()
        return frame(
            head_grid(weights, record.query_tokens, record.key_tokens, per_page=None,
                      columns=record.num_heads),
            title=f"decoder layer {layer}, after {step} training steps",
            description=f"After {step} steps, decoder layer {layer} puts {anti:.0%} of its "
            "attention on the anti-diagonal (the source letter it must copy next).",
        )  # fmt: skip

    return Explorer(
        "Cross-attention while the model learns to reverse",
        (
            Control("step", steps, label="training step"),
            Control("layer", layers, label="decoder layer", default=layers[-1]),
        ),
        data,
        caption="Rows: the decoder's position (it has read <bos> and the letters written so "
        "far); columns: the source letters. Reversing a..h, the decoder must look at h first, "
        "then g, ...: a trained model's attention runs along the anti-diagonal.",
    )


# -- Chapter 9: generating text (the real SmolLM2) ----------------------------------------

NEXT_TOKEN_PROMPT = "Thanks for lunch, I had a"
NEXT_TOKEN_TEMPERATURES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3,
                           1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.2, 2.4, 2.6, 2.8, 3.0)  # fmt: skip
# One filter at a time, so that each teaches what it does: top-k keeps the k most likely
# tokens, top-p (nucleus) the fewest whose probability adds up to p.
NEXT_TOKEN_FILTERS = {
    "none": {}, "top-k 50": {"top_k": 50}, "top-k 10": {"top_k": 10}, "top-k 3": {"top_k": 3},
    "top-p 0.95": {"top_p": 0.95}, "top-p 0.9": {"top_p": 0.9}, "top-p 0.75": {"top_p": 0.75},
    "top-p 0.5": {"top_p": 0.5},
}  # fmt: skip
NEXT_TOKEN_SHOWN = 12


@functools.lru_cache(maxsize=4)
def _next_token_logits(prompt: str) -> Any:
    from transformer_tutorial.pretrained import load_smollm2

    return load_smollm2().next_token_logits(prompt)


def next_token_data(temperature: float, sampling_filter: str) -> dict[str, Any]:
    """SmolLM2's distribution over the token after :data:`NEXT_TOKEN_PROMPT`, with
    ``temperature`` and one of :data:`NEXT_TOKEN_FILTERS` (``"none"``, ``"top-k 10"``,
    ``"top-p 0.9"``, ...)."""
    from transformer_tutorial.pretrained import load_smollm2
    from transformer_tutorial.sampling import next_token_distribution

    if sampling_filter not in NEXT_TOKEN_FILTERS:
        raise ValueError(
            f"sampling_filter must be one of {list(NEXT_TOKEN_FILTERS)}, got {sampling_filter!r}"
        )
    probs = next_token_distribution(
        _next_token_logits(NEXT_TOKEN_PROMPT), temperature, **NEXT_TOKEN_FILTERS[sampling_filter]
    )
    kept = int((probs > 0).sum())
    order = np.argsort(-probs, kind="stable")[: min(kept, NEXT_TOKEN_SHOWN)]
    labels = [repr(s) for s in load_smollm2().token_strings([int(i) for i in order])]
    mass = float(probs[order].sum())
    return frame(
        bars(probs[order], labels, vmin=0.0, vmax=1.0, value_title="probability",
             hover="P({label}) = {value}", digits=3),
        title=f"temperature {temperature:g}, filter: {sampling_filter}: {kept} possible "
        f"next tokens; the {len(order)} shown hold {mass:.0%} of the probability",
        description=f"Most likely next token {labels[0]} with probability "
        f"{probs[order[0]]:.2f}; {kept} tokens possible; the {len(order)} shown hold "
        f"{mass:.0%}.",
    )  # fmt: skip


def next_token_explorer() -> Explorer:
    """Chapter 9: the next-token distribution under temperature, top-k and top-p."""
    return Explorer(
        f'The next token after "{NEXT_TOKEN_PROMPT}"',
        (
            Control("temperature", NEXT_TOKEN_TEMPERATURES, label="temperature", default=1.0),
            Control("sampling_filter", tuple(NEXT_TOKEN_FILTERS), label="filter"),
        ),
        next_token_data,
        caption="SmolLM2-135M-Instruct (4-bit weights) run by the book's own decoder. Low "
        "temperature piles the probability on the favourite; high temperature spreads it over "
        "many tokens. Top-k keeps the k most likely tokens, top-p the fewest whose probability "
        "adds up to p; both renormalize what they keep.",
    )
