"""Explorers: sliders and dropdowns that redraw a figure, declared once for every reader.

An :class:`Explorer` is a title, a few :class:`Control` s (each with a finite set of values)
and a pure function ``draw(**values) -> Figure``. Displaying one shows

* in a live kernel (JupyterLab, VS Code, Colab): ipywidgets controls over an image that is
  redrawn on every change, without flicker (the image's bytes are swapped in place);
* in the built book (where there is no kernel): a self-contained HTML viewer holding the
  figure for every point of the control grid, rendered ahead of time, switched by plain HTML
  controls and a few lines of inline JavaScript. No kernel, no CDN.

Both show the very same PNG bytes for the same control values. The book build selects the
static form by setting :data:`STATIC_ENV_VAR` (done by :mod:`transformer_tutorial.sphinx_ext`),
so notebook authors never pass a flag.

The chapter explorers are declared at the bottom of this module.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from matplotlib.figure import Figure

from transformer_tutorial.embeddings import TOY_SENTENCE

__all__ = ["STATIC_ENV_VAR", "MAX_STATIC_FRAMES", "Control", "Explorer"]

STATIC_ENV_VAR = "TRANSFORMER_TUTORIAL_STATIC"
MAX_STATIC_FRAMES = 40  # bounds a chapter page's weight: every frame is a PNG in the page
PNG_DPI = 80


@dataclass(frozen=True)
class Control:
    """One slider or dropdown: the keyword ``name`` passed to ``draw`` and its ``values``.

    Numeric values show as a slider, anything else as a dropdown. With ``free_text=True`` a
    live kernel shows a text box (the reader types any sentence) and ``values`` are the
    examples offered, which are also all the static book can show.
    """

    name: str
    values: tuple[Any, ...]
    label: str = ""
    default: Any = None
    free_text: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"control name must be a Python identifier, got {self.name!r}")
        values = tuple(self.values)
        if not values:
            raise ValueError(f"control {self.name!r} needs at least one value")
        if len(set(values)) != len(values):
            raise ValueError(f"control {self.name!r} has repeated values")
        default = values[0] if self.default is None else self.default
        if default not in values:
            raise ValueError(f"default of {self.name!r} must be one of {values}, got {default!r}")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "label", self.label or self.name)

    @property
    def is_slider(self) -> bool:
        return not self.free_text and all(
            isinstance(v, Real) and not isinstance(v, bool) for v in self.values
        )

    def format(self, value: Any) -> str:
        """How a value is shown next to the control."""
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)


@dataclass(frozen=True)
class Explorer:
    """A figure that depends on a few controls, declared once (see the module docstring).

    ``draw`` must be pure: the same control values give the same figure. It may raise
    ``ValueError`` for values it cannot show (e.g. an empty sentence); the reader then sees
    the message instead of the figure, never a traceback.
    """

    title: str
    controls: tuple[Control, ...]
    draw: Callable[..., Figure]
    caption: str = ""
    _pngs: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        controls = tuple(self.controls)
        if not controls:
            raise ValueError("an explorer needs at least one control")
        names = [c.name for c in controls]
        if len(set(names)) != len(names):
            raise ValueError(f"control names must be unique, got {names}")
        frames = 1
        for control in controls:
            frames *= len(control.values)
        if frames > MAX_STATIC_FRAMES:
            raise ValueError(
                f"the control grid has {frames} points; at most {MAX_STATIC_FRAMES} are "
                "rendered into the static book: use fewer values per control"
            )
        object.__setattr__(self, "controls", controls)

    # -- the pure part: control values -> figure -> PNG ----------------------------------
    def values(self, **overrides: Any) -> dict[str, Any]:
        """Every control's value: its default unless given in ``overrides`` (checked)."""
        unknown = set(overrides) - {c.name for c in self.controls}
        if unknown:
            raise ValueError(
                f"unknown control(s) {sorted(unknown)}; this explorer has "
                f"{[c.name for c in self.controls]}"
            )
        values = {}
        for control in self.controls:
            value = overrides.get(control.name, control.default)
            if not control.free_text and value not in control.values:
                raise ValueError(
                    f"{control.name} must be one of {list(control.values)}, got {value!r}"
                )
            values[control.name] = value
        return values

    def figure(self, **values: Any) -> Figure:
        """The figure for these control values (defaults for the ones not given)."""
        return self.draw(**self.values(**values))

    def png(self, **values: Any) -> bytes:
        """The figure as PNG bytes, rendered once per set of values and then cached."""
        values = self.values(**values)
        key = tuple(values.values())
        if key not in self._pngs:
            fig = self.draw(**values)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
            self._pngs[key] = buffer.getvalue()
        return self._pngs[key]

    def describe(self, **values: Any) -> str:
        """Alt text: the title and the current value of each control."""
        values = self.values(**values)
        settings = ", ".join(f"{c.label} = {c.format(values[c.name])}" for c in self.controls)
        return f"{self.title} ({settings})"

    # -- live kernel ------------------------------------------------------------------
    def widget(self):
        """ipywidgets controls over the figure; each change swaps the image's bytes."""
        import ipywidgets as widgets

        def make(control: Control):
            style = {"description_width": "initial"}
            if control.free_text:
                return widgets.Combobox(
                    value=str(control.default), options=[str(v) for v in control.values],
                    description=control.label, ensure_option=False, continuous_update=False,
                    style=style, layout=widgets.Layout(width="32em"),
                )
            options = [(control.format(v), v) for v in control.values]
            if control.is_slider:
                return widgets.SelectionSlider(
                    options=options, value=control.default, description=control.label,
                    continuous_update=True, style=style,
                )
            return widgets.Dropdown(
                options=options, value=control.default, description=control.label, style=style
            )

        inputs = {c.name: make(c) for c in self.controls}
        image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        message = widgets.HTML()

        def redraw(_change=None) -> None:
            values = {name: box.value for name, box in inputs.items()}
            try:
                image.value = self.png(**values)
            except ValueError as err:
                message.value = f"<b>Cannot show this:</b> {html.escape(str(err))}"
                image.layout.display = "none"
                return
            message.value = ""
            image.layout.display = None

        for box in inputs.values():
            box.observe(redraw, names="value")
        redraw()
        caption = widgets.HTML(f"<em>{html.escape(self.caption)}</em>") if self.caption else None
        header = widgets.HTML(f"<b>{html.escape(self.title)}</b>")
        parts = [header, widgets.HBox(list(inputs.values())), message, image]
        return widgets.VBox(parts + ([caption] if caption else []))

    # -- static book ------------------------------------------------------------------
    def static_html(self) -> str:
        """A self-contained viewer: every frame of the control grid as a PNG, plain HTML
        controls and inline JavaScript. All text is escaped."""
        frames = {}
        for indices in itertools.product(*(range(len(c.values)) for c in self.controls)):
            values = {c.name: c.values[i] for c, i in zip(self.controls, indices, strict=True)}
            key = ",".join(map(str, indices))
            try:
                png = base64.b64encode(self.png(**values)).decode("ascii")
                frames[key] = {"png": png, "alt": self.describe(**values)}
            except ValueError as err:
                frames[key] = {"error": str(err), "alt": self.describe(**values)}
        labels = [[c.format(v) for v in c.values] for c in self.controls]
        data = _json_for_script({"frames": frames, "labels": labels})
        first = frames[",".join(str(c.values.index(c.default)) for c in self.controls)]
        return _STATIC_TEMPLATE.format(
            title=html.escape(self.title),
            controls="\n".join(_static_control(i, c) for i, c in enumerate(self.controls)),
            src=f"data:image/png;base64,{first['png']}" if "png" in first else "",
            alt=html.escape(first["alt"]),
            caption=f'<p class="tt-explorer-caption">{html.escape(self.caption)}</p>'
            if self.caption else "",
            data=data,
            script=_STATIC_SCRIPT,
        )

    # -- display ----------------------------------------------------------------------
    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        if os.environ.get(STATIC_ENV_VAR):
            return {"text/html": self.static_html(), "text/plain": self.describe()}
        bundle = self.widget()._repr_mimebundle_()
        bundle["text/plain"] = self.describe()
        return bundle


def _json_for_script(obj: object) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no HTML)."""
    text = json.dumps(obj, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _static_control(index: int, control: Control) -> str:
    label = html.escape(control.label)
    start = control.values.index(control.default)
    if control.is_slider:
        return (
            f'<label>{label} <input type="range" min="0" max="{len(control.values) - 1}" '
            f'step="1" value="{start}" data-control="{index}" aria-label="{label}"> '
            f"<output>{html.escape(control.format(control.default))}</output></label>"
        )
    options = "".join(
        f'<option value="{i}"{" selected" if i == start else ""}>'
        f"{html.escape(control.format(v))}</option>"
        for i, v in enumerate(control.values)
    )
    return (
        f'<label>{label} <select data-control="{index}" aria-label="{label}">{options}'
        "</select></label>"
    )


_STATIC_TEMPLATE = """<div class="tt-explorer">
<p class="tt-explorer-title"><strong>{title}</strong></p>
<div class="tt-explorer-controls">
{controls}
</div>
<p class="tt-explorer-error" role="status"></p>
<img class="tt-explorer-figure" src="{src}" alt="{alt}">
{caption}<script type="application/json" class="tt-explorer-data">{data}</script>
<script>{script}</script>
</div>"""

# Picks the frame of the current control positions; labels go in via textContent only.
_STATIC_SCRIPT = """(function (root) {
  var data = JSON.parse(root.querySelector(".tt-explorer-data").textContent);
  var inputs = root.querySelectorAll("[data-control]");
  var img = root.querySelector(".tt-explorer-figure");
  var error = root.querySelector(".tt-explorer-error");
  function show() {
    var key = [];
    inputs.forEach(function (input) {
      var i = Number(input.value), out = input.parentNode.querySelector("output");
      if (out) { out.textContent = data.labels[Number(input.dataset.control)][i]; }
      key.push(i);
    });
    var frame = data.frames[key.join(",")];
    img.alt = frame.alt;
    if (frame.png) {
      img.src = "data:image/png;base64," + frame.png;
      img.style.display = "";
      error.textContent = "";
    } else {
      img.style.display = "none";
      error.textContent = "Cannot show this: " + frame.error;
    }
  }
  inputs.forEach(function (input) { input.addEventListener("input", show); });
  show();
})(document.currentScript.parentNode);"""


# -- Chapter 1: tokens and embeddings ----------------------------------------------------


def word_similarity(random_d_model: int = 64, seed: int = 0) -> Explorer:
    """Pick a word of the toy vocabulary and a table (the hand-made one, or a random one of
    width ``random_d_model`` as before training): one bar per other word, its cosine
    similarity to the chosen word, most similar first."""
    from transformer_tutorial.embeddings import EmbeddingTable, most_similar, toy_embeddings
    from transformer_tutorial.plots import bar_chart

    toy = toy_embeddings()
    tables = {
        "hand-made table (like a trained model)": toy,
        f"random table (untrained, d_model={random_d_model})": EmbeddingTable.random(
            toy.vocab, random_d_model, seed
        ),
    }

    def draw(word: str, table: str) -> Figure:
        pairs = most_similar(tables[table], word)
        return bar_chart(
            [similarity for _, similarity in pairs],
            [other for other, _ in pairs],
            title=table,
            xlabel=f'cosine similarity to "{word}"',
            value_range=(-1.0, 1.0),
        )

    return Explorer(
        "Which words does a word sit close to?",
        (
            Control("word", toy.vocab.words, label="word", default="cat"),
            Control("table", tuple(tables), label="embedding table"),
        ),
        draw,
        caption="Each bar is the cosine similarity between the chosen word's vector and "
        "another word's vector. In the hand-made table animals sit close to animals; in a "
        "random table, as before training, no word is much closer to one word than another.",
    )


# -- Chapter 2: attention as a weighted average ------------------------------------------

WEIGHTED_AVERAGE_SENTENCE = TOY_SENTENCE
TEMPERATURES = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


def draw_softmax_temperature(
    temperature: float, sentence: str = WEIGHTED_AVERAGE_SENTENCE, query: str = "it"
) -> Figure:
    """Toy-embedding attention weights :math:`\\mathrm{softmax}(XX^\\top / T)` of ``sentence``
    at ``temperature`` ``T``: every word's weights (heatmap) and the row of ``query`` (bars),
    with that row's largest weight and entropy in the title."""
    import numpy as np

    from transformer_tutorial.attention import entropy, relevance_scores, softmax
    from transformer_tutorial.embeddings import toy_embeddings
    from transformer_tutorial.plots import attention_heatmap, bar_chart
    from transformer_tutorial.tokens import tokenize

    tokens = tokenize(sentence)
    if query not in tokens:
        raise ValueError(f"query must be a token of the sentence {tokens}, got {query!r}")
    x = toy_embeddings().lookup(tokens)
    weights = softmax(relevance_scores(x, x), temperature)
    row = weights[tokens.index(query)]
    figure = Figure(figsize=(8.8, 4.4), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=(1.35, 1.0))
    attention_heatmap(weights, tokens, tokens, ax=left, title="every word's weights",
                      annotate=False)  # at this size the numbers would not be readable
    bar_chart(row, tokens, ax=right, xlabel="attention weight", value_range=(0.0, 1.0),
              title=f"the row of {query!r}")
    figure.suptitle(
        f"T = {temperature:g}: the largest weight of {query!r} is {row.max():.2f} "
        f"(on {tokens[int(row.argmax())]!r}); entropy {entropy(row):.2f} nats "
        f"(uniform: {np.log(len(tokens)):.2f})"
    )
    return figure


def softmax_temperature(
    sentence: str = WEIGHTED_AVERAGE_SENTENCE, query: str = "it"
) -> Explorer:
    """Chapter 2: the softmax temperature :math:`T` sharpens (:math:`T<1`) or flattens
    (:math:`T>1`) the attention weights of ``sentence``. Slider: ``temperature``."""
    def draw(temperature: float) -> Figure:
        return draw_softmax_temperature(temperature, sentence, query)

    return Explorer(
        title="Softmax temperature: sharper or flatter weights",
        controls=(Control("temperature", TEMPERATURES, label="temperature T", default=1.0),),
        draw=draw,
        caption="Weights softmax(s / T) of the hand-made toy vectors. Small T puts almost all "
        "of a row's weight on its highest score (entropy near 0); large T spreads it evenly "
        "(entropy near ln n, the uniform row). Every row still sums to 1.",
    )


# -- Chapter 3: queries, keys and values -------------------------------------------------

# Neutral labels: the queries and keys are random vectors, not the words of any sentence.
SCALING_TOKENS = tuple(f"t{i}" for i in range(1, 11))
SCALING_D_KS = (4, 16, 64, 256, 1024)
SCALING_MODES = ("scaled", "unscaled")
SCALING_SCORE_RANGE = (-100.0, 100.0)  # one fixed histogram range, so spreads compare


def draw_scaling(d_k: int, scaling: str) -> Figure:
    """Weights (heatmap) and scores (histogram) of random unit-variance queries and keys of
    width ``d_k``, with scores :math:`QK^\\top/\\sqrt{d_k}` (``"scaled"``) or :math:`QK^\\top`
    (``"unscaled"``)."""
    from transformer_tutorial.plots import weights_and_scores
    from transformer_tutorial.scaling import random_attention

    if scaling not in SCALING_MODES:
        raise ValueError(f"scaling must be one of {SCALING_MODES}, got {scaling!r}")
    scores, weights = random_attention(
        len(SCALING_TOKENS), d_k, scale=scaling == "scaled", seed=0
    )
    return weights_and_scores(
        weights, scores, SCALING_TOKENS, SCALING_TOKENS, score_xlim=SCALING_SCORE_RANGE,
        annotate=False,
        title=f"$d_k$ = {d_k}, {scaling}: largest weight of a row, on average "
        f"{weights.max(axis=-1).mean():.2f}",
    )


def sqrt_dk_scaling() -> Explorer:
    """Chapter 3: why divide by :math:`\\sqrt{d_k}`. Slider: ``d_k``; dropdown: scaled or
    unscaled scores."""
    return Explorer(
        title="Scaled or unscaled dot products",
        controls=(
            Control("d_k", SCALING_D_KS, label="d_k", default=64),
            Control("scaling", SCALING_MODES, label="scaling"),
        ),
        draw=draw_scaling,
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
def _pattern_weights(tokens: tuple[str, ...], num_heads: int) -> Any:
    """Weights ``(heads, seq, seq)`` (numpy) of the hand-built heads regrouped into
    ``num_heads``."""
    from transformer_tutorial.multihead import pattern_features, pattern_heads, regroup_heads

    _, weights = regroup_heads(pattern_heads(), num_heads)(pattern_features(list(tokens)))
    return weights[0].detach().numpy()


def draw_heads(sentence: str, num_heads: int, job: str) -> Figure:
    """The head that holds ``job`` (one of the four hand-built jobs,
    :data:`~transformer_tutorial.multihead.HEAD_PATTERNS`) when the same weights are split
    into ``num_heads`` heads, on ``sentence``."""
    from transformer_tutorial.multihead import HEAD_PATTERNS
    from transformer_tutorial.plots import attention_heatmap
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
    return attention_heatmap(
        weights[head], tokens, tokens, annotate=False,
        title=f"{num_heads} head{'s' if num_heads > 1 else ''}: head {head} = {jobs}",
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
        draw_heads,
        caption="The same W^Q, W^K, W^V, W^O every time, split into 4, 2 or 1 heads. With 4 "
        "heads each does one job. With fewer, a head adds up the scores of the jobs it holds "
        "and one softmax must share its attention among them: the patterns blur together.",
    )


# -- Chapter 5: positional encoding ------------------------------------------------------

POSITION_COUNT = 48
POSITION_D_MODEL = 32
POSITION_CHOICES = tuple(range(0, POSITION_COUNT, 4))  # 12 positions
POSITION_KINDS = ("sinusoidal", "learned (untrained)", "RoPE")


@functools.lru_cache(maxsize=8)
def _position_tables(kind: str, seed: int = 0) -> tuple[Any, Any]:
    """``(vectors (positions, d), dot products (positions, positions))`` tensors for one
    kind."""
    import torch

    from transformer_tutorial.positional import (
        LearnedPositionalEmbedding,
        apply_rotary,
        position_dot_products,
        rotary_scores,
        sinusoidal_encoding,
    )

    if kind == "sinusoidal":
        table = sinusoidal_encoding(POSITION_COUNT, POSITION_D_MODEL)
        return table, position_dot_products(table)
    if kind == "learned (untrained)":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            table = LearnedPositionalEmbedding(POSITION_COUNT, POSITION_D_MODEL).embedding.weight
        return table.detach(), position_dot_products(table)
    if kind == "RoPE":
        generator = torch.Generator().manual_seed(seed)
        q, noise = torch.randn(2, POSITION_D_MODEL, generator=generator)
        k = q + 0.5 * noise  # a key close to the query: it matches best at offset 0
        rotated = apply_rotary(q.expand(POSITION_COUNT, -1))  # q at every position
        return rotated, rotary_scores(q, k, POSITION_COUNT)
    raise ValueError(f"kind must be one of {POSITION_KINDS}, got {kind!r}")


def draw_position(kind: str, position: int) -> Figure:
    """Position ``position``'s vector and its dot products with every position, for one
    ``kind`` of positional information (see :func:`position_explorer`)."""
    from transformer_tutorial.plots import position_profile
    from transformer_tutorial.positional import offset_reference, offset_spread

    vectors, dots = _position_tables(kind)
    low, high = float(dots.min()), float(dots.max())
    pad = 0.05 * (high - low)
    labels = {
        "sinusoidal": ("PE of the position (added to the token's embedding)",
                       "PE(position) · PE(n)"),
        "learned (untrained)": ("learned vector of the position (random before training)",
                                "E(position) · E(n)"),
        "RoPE": ("a query q rotated to the position", "RoPE(q, position) · RoPE(k, n)"),
    }[kind]
    return position_profile(
        vectors[position].numpy(), dots[position].numpy(), position,
        reference=offset_reference(dots, position).numpy(),
        title=f"{kind}, position {position}\nlargest gap to 'distance only', over all "
        f"positions: {offset_spread(dots):.2g}",
        vector_label=labels[0], similarity_label=labels[1], value_range=(low - pad, high + pad),
    )


def position_explorer() -> Explorer:
    """Chapter 5: one position's encoding and how it lines up with every other position."""
    return Explorer(
        "What a position looks like, and whom it resembles",
        (
            Control("kind", POSITION_KINDS, label="positional information"),
            Control("position", POSITION_CHOICES, label="position", default=20),
        ),
        draw_position,
        caption=f"Top: the vector of the chosen position (d = {POSITION_D_MODEL}). Bottom: its "
        "dot product with each of the other positions. The dashed curve is what the bottom "
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


def draw_layer_norm(token: str, stage: str) -> Figure:
    """One token's features at one stage of layer normalization (see
    :func:`layer_norm_explorer`); ``token`` is ``"word (position p)"``."""
    from transformer_tutorial.plots import feature_bars

    tokens, steps = layer_norm_example()
    names = layer_norm_token_labels(tokens)
    if token not in names:
        raise ValueError(f"token must be one of {names}, got {token!r}")
    if stage not in NORM_STAGES:
        raise ValueError(f"stage must be one of {NORM_STAGES}, got {stage!r}")
    key = ("input", "standardized", "output")[NORM_STAGES.index(stage)]
    bound = 1.1 * max(float(steps[k].abs().max()) for k in ("input", "standardized", "output"))
    return feature_bars(steps[key][names.index(token)].numpy(), title=f'"{token}": {stage}',
                        value_range=(-bound, bound))


def layer_norm_token_labels(tokens: list[str]) -> list[str]:
    """``"word (position p)"`` for each token: the labels of the token dropdown."""
    return [f"{token} (position {p})" for p, token in enumerate(tokens)]


def layer_norm_explorer() -> Explorer:
    """Chapter 6: layer norm on one token, before, during and after."""
    from transformer_tutorial.tokens import tokenize

    labels = tuple(layer_norm_token_labels(tokenize(NORM_SENTENCE)))
    return Explorer(
        "Layer norm, one token at a time",
        (
            Control("token", labels, label="token", default=labels[1]),
            Control("stage", NORM_STAGES, label="stage"),
        ),
        draw_layer_norm,
        caption="The 16 features of one token inside the first Add & Norm of a seeded encoder "
        "block. Standardizing moves each token's mean to 0 and its spread to 1 using only that "
        "token's own features; the learned gamma and beta then rescale and shift each feature.",
    )


# -- Chapter 7: stacking layers (the real MiniLM) ----------------------------------------

MINILM_SENTENCES = (
    "The cat sat on the mat because it was tired.",
    "The animal didn't cross the street because it was too tired.",
)
MINILM_LAYERS = (0, 1, 2, 3, 4, 5)
MINILM_MAX_GRID_TOKENS = 24  # beyond this the 12 small heatmaps are unreadable


@functools.lru_cache(maxsize=32)
def _minilm_record(sentence: str) -> Any:
    from transformer_tutorial.pretrained import load_minilm

    return load_minilm().attention(sentence)


def draw_minilm_layer(sentence: str, layer: int) -> Figure:
    """All 12 heads of one layer of the real MiniLM on ``sentence`` (at most
    :data:`MINILM_MAX_GRID_TOKENS` tokens)."""
    from transformer_tutorial.probing import layer_heads

    if layer not in MINILM_LAYERS:
        raise ValueError(f"layer must be one of {MINILM_LAYERS}, got {layer!r}")
    record = _minilm_record(sentence)
    if record.q_len > MINILM_MAX_GRID_TOKENS:
        raise ValueError(
            f"the sentence has {record.q_len} tokens; this view shows at most "
            f"{MINILM_MAX_GRID_TOKENS}: type a shorter sentence"
        )
    return layer_heads(record, layer, ncols=4, title=f"MiniLM, layer {layer}: the 12 heads")


def minilm_layers_explorer() -> Explorer:
    """Chapter 7: every head of a chosen layer of MiniLM, on a sentence the reader types."""
    return Explorer(
        "What each layer of a trained encoder attends to",
        (
            Control("sentence", MINILM_SENTENCES, label="sentence", free_text=True),
            Control("layer", MINILM_LAYERS, label="layer"),
        ),
        draw_minilm_layer,
        caption="all-MiniLM-L6-v2 run by the book's own encoder. Each panel is one head: row "
        "= the token that attends, column = the token attended to. Early layers look at "
        "neighbours and at [CLS]/[SEP]; later ones link words that belong together.",
    )


# -- Chapter 9: generating text (the real SmolLM2) ----------------------------------------

NEXT_TOKEN_PROMPT = "Thanks for lunch, I had a"
NEXT_TOKEN_TEMPERATURES = (0.3, 0.7, 1.0, 1.5, 2.0)
NEXT_TOKEN_TOP_K = ("all", 50, 10, 3)


@functools.lru_cache(maxsize=4)
def _next_token_logits(prompt: str) -> Any:
    from transformer_tutorial.pretrained import load_smollm2

    return load_smollm2().next_token_logits(prompt)


def draw_next_token(temperature: float, top_k: int | str) -> Figure:
    """SmolLM2's distribution over the token after :data:`NEXT_TOKEN_PROMPT`, with
    ``temperature`` and ``top_k`` (``"all"``: no top-k filter)."""
    import numpy as np

    from transformer_tutorial.pretrained import load_smollm2
    from transformer_tutorial.probing import distribution_chart
    from transformer_tutorial.sampling import next_token_distribution

    if top_k not in NEXT_TOKEN_TOP_K:
        raise ValueError(f"top_k must be one of {NEXT_TOKEN_TOP_K}, got {top_k!r}")
    probs = next_token_distribution(
        _next_token_logits(NEXT_TOKEN_PROMPT), temperature, None if top_k == "all" else top_k
    )
    kept = int((probs > 0).sum())
    shown = min(kept, 12)
    mass = float(np.sort(probs)[::-1][:shown].sum())
    return distribution_chart(
        probs, load_smollm2().token_strings, top=shown,
        title=f"temperature {temperature:g}, top-k = {top_k}\n{kept} possible next tokens; "
        f"the {shown} shown hold {mass:.0%} of the probability",
    )  # fmt: skip


def next_token_explorer() -> Explorer:
    """Chapter 9: the next-token distribution under temperature and top-k."""
    return Explorer(
        f'The next token after "{NEXT_TOKEN_PROMPT}"',
        (
            Control("temperature", NEXT_TOKEN_TEMPERATURES, label="temperature", default=1.0),
            Control("top_k", NEXT_TOKEN_TOP_K, label="top-k"),
        ),
        draw_next_token,
        caption="SmolLM2-135M-Instruct (4-bit weights) run by the book's own decoder. Low "
        "temperature piles the probability on the favourite; high temperature spreads it over "
        "many tokens. Top-k then removes all but the k most likely and renormalizes.",
    )


# -- Chapter 8: the encoder–decoder ---------------------------------------------------


def cross_attention_training(run) -> Explorer:
    """Chapter 8: the reversal model's cross-attention on one fixed example, at each snapshot
    step of ``run`` (a :class:`~transformer_tutorial.training.TrainingRun`). Slider: training
    step; dropdown: decoder layer. One panel per head."""
    from transformer_tutorial.plots import head_grid

    snapshots = run.snapshots
    if not snapshots:
        raise ValueError("run has no snapshots: train with snapshot_steps, e.g. (0, 100, 300)")
    steps = tuple(sorted(snapshots))
    layers = tuple(range(snapshots[steps[0]].num_layers))

    def draw(step: int, layer: int) -> Figure:
        record = snapshots[step]
        figure = Figure(figsize=(2.7 * record.num_heads + 0.5, 3.4), layout="constrained")
        head_grid(record, layer=layer, figure=figure)
        figure.suptitle(f"decoder layer {layer}, after {step} training steps")
        return figure

    return Explorer(
        "Cross-attention while the model learns to reverse",
        (
            Control("step", steps, label="training step"),
            Control("layer", layers, label="decoder layer", default=layers[-1]),
        ),
        draw,
        caption="Rows: the decoder's position (it has read <bos> and the letters written so "
        "far); columns: the source letters. Reversing a..h, the decoder must look at h first, "
        "then g, ...: a trained model's attention runs along the anti-diagonal.",
    )
