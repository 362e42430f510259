"""Diagrams of the architecture, drawn from the modules the chapters run.

A diagram here is data computed from a module: each function takes one of the book's modules
(or the functions a chapter calls) and an example input, runs it once — with forward hooks, or
through the package's own step-by-step trace — and returns a :class:`Diagram`. Its boxes are
operations, named as the book names them and linked to the chapter that teaches them (or to
their API entry); its arrows are tensors, labelled with the shapes measured in that run. Change
the module (another ``d_model``, more heads) and the labels change with it: nothing is typed by
hand.

A :class:`Diagram` is laid out in Python (simple layered rows and columns) and drawn as an SVG
string with a ``viewBox`` at most :data:`MAX_WIDTH` units wide, text at least
:data:`MIN_FONT` units high, boxes as ``<a>`` links, every text escaped. It shows itself in
Jupyter (``_repr_html_``) and carries a text description generated from the same data, used
as the SVG's ``<title>``/``<desc>`` and as the figure's caption. Colours come from
:mod:`transformer_tutorial.palette`: queries, keys and values keep one colour each.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from transformer_tutorial import checks, palette
from transformer_tutorial import multihead as mh
from transformer_tutorial.attention import (
    context_vectors,
    relevance_scores,
    scaled_dot_product_attention,
    softmax,
)
from transformer_tutorial.bert import BertEncoder
from transformer_tutorial.generation import greedy_choice
from transformer_tutorial.layers import EncoderBlock
from transformer_tutorial.llama import LlamaDecoder
from transformer_tutorial.models import EncoderDecoder
from transformer_tutorial.multihead import (
    GroupedQueryAttention,
    MultiHeadAttention,
    multihead_steps,
)
from transformer_tutorial.positional import SinusoidalPositionalEncoding
from transformer_tutorial.projections import QKVProjection

__all__ = [
    "MAX_WIDTH",
    "MIN_FONT",
    "Box",
    "Arrow",
    "Frame",
    "Note",
    "Diagram",
    "chapter_link",
    "api_link",
    "weighted_average",
    "attention_head",
    "multi_head",
    "positional_encoding",
    "norm_placement",
    "encoder_stack",
    "encoder_decoder",
    "transformer",
    "generation_loop",
    "attention_cost",
]

MAX_WIDTH = 690  # the book's text column, in CSS px: a viewBox no wider keeps text >= 11 px
MIN_FONT = 12.0  # every text of a diagram, in viewBox units
_MIN_SCALE = 11.0 / MIN_FONT  # the narrowest rendering keeps every text at 11 CSS px
LABEL_FONT = 13.0  # box labels
SMALL_FONT = MIN_FONT  # details, arrow labels, notes
LINE = 15.0  # height of one line of small text
_CHAR = {False: 0.6, True: 0.61}  # width of a character per unit of font size (sans, mono)
_FONT_FAMILY = {False: "DejaVu Sans, Verdana, sans-serif", True: "DejaVu Sans Mono, monospace"}
_MARGIN = 8.0
_PAD = 10.0  # text padding inside a box

# The chapters, as their pages are named in the built book (the links assume a page that sits
# in `notebooks/` or `book/`, so `../notebooks/...` reaches every chapter from both).
_CHAPTERS = {
    1: "01_tokens_and_embeddings",
    2: "02_attention_as_weighted_average",
    3: "03_queries_keys_values",
    4: "04_multi_head_attention",
    5: "05_positional_encoding",
    6: "06_add_norm_and_feed_forward",
    7: "07_stacking_layers",
    8: "08_encoder_decoder",
    9: "09_generating_text",
    10: "10_cost_of_attention",
}


def chapter_link(chapter: int) -> str:
    """The link from any page of the book to chapter ``chapter`` (1 to 10)."""
    chapter = checks.integer(chapter, "chapter")
    if chapter not in _CHAPTERS:
        raise ValueError(f"chapter must be one of {sorted(_CHAPTERS)}, got {chapter!r}")
    return f"../notebooks/{_CHAPTERS[chapter]}.html"


def api_link(obj: object) -> str:
    """The link to the API entry of a class or function of the package (from any page)."""
    module, name = getattr(obj, "__module__", ""), getattr(obj, "__qualname__", "")
    if not module.startswith("transformer_tutorial") or not name:
        raise ValueError(f"obj must be a class or function of transformer_tutorial, got {obj!r}")
    return f"../book/api.html#{module}.{name}"


def text_width(text: str, size: float, mono: bool = False) -> float:
    """An upper estimate of the width of ``text`` at font ``size`` (viewBox units)."""
    return len(text) * size * _CHAR[mono]


def _shape(value: object) -> str:
    """``(1, 12, 64)`` for a tensor or array (or a shape)."""
    shape = tuple(value.shape) if hasattr(value, "shape") else tuple(value)
    return "(" + ", ".join(str(int(s)) for s in shape) + (",)" if len(shape) == 1 else ")")


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _h(layer: int) -> str:
    """``h⁽³⁾``: the book's name of the residual stream after ``layer`` blocks."""
    return f"h⁽{str(layer).translate(_SUPERSCRIPTS)}⁾"


# -- the data: boxes, arrows, frames, notes ------------------------------------------------


@dataclass(frozen=True)
class Box:
    """One operation: centre ``(x, y)``, size, the book's name (``label``), an optional second
    line (``detail``), a link and a colour. ``shape``: ``"rect"``, ``"circle"`` (a sum) or
    ``"stack"`` (several heads side by side, drawn as offset copies)."""

    key: str
    label: str
    x: float
    y: float
    width: float
    height: float
    detail: str = ""
    href: str = ""
    colour: str = palette.TENSOR
    shape: str = "rect"
    detail_colour: str = palette.INK

    @property
    def rect(self) -> tuple[float, float, float, float]:
        """``(left, top, right, bottom)``, copies of a stack included."""
        extra = 8.0 if self.shape == "stack" else 0.0
        return (
            self.x - self.width / 2, self.y - self.height / 2,
            self.x + self.width / 2 + extra, self.y + self.height / 2 + extra,
        )  # fmt: skip


@dataclass(frozen=True)
class Arrow:
    """One tensor going from box ``source`` to box ``target`` along ``points``, with its
    ``label`` lines (its name and measured shape) in a rectangle ``label_rect``."""

    source: str
    target: str
    label: tuple[str, ...]
    points: tuple[tuple[float, float], ...]
    label_rect: tuple[float, float, float, float] | None
    colour: str = palette.TENSOR
    dashed: bool = False


@dataclass(frozen=True)
class Frame:
    """A dashed rectangle around a group of boxes (a block, a stack), with its ``label``."""

    label: str
    rect: tuple[float, float, float, float]
    label_rect: tuple[float, float, float, float]
    colour: str = palette.MUTED


@dataclass(frozen=True)
class Note:
    """Free text, e.g. what a panel shows; ``rect`` is where its lines are drawn."""

    lines: tuple[str, ...]
    rect: tuple[float, float, float, float]
    colour: str = palette.INK


@dataclass(frozen=True)
class Diagram:
    """A diagram computed from a module: boxes, arrows, frames and notes in viewBox units.

    ``title`` says what it shows, ``caption`` how it was measured; :meth:`description` is
    the text alternative generated from the same boxes and arrows.
    """

    title: str
    caption: str
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    frames: tuple[Frame, ...]
    notes: tuple[Note, ...]
    width: float
    height: float

    def box(self, key: str) -> Box:
        """The box named ``key``."""
        for box in self.boxes:
            if box.key == key:
                return box
        raise KeyError(f"no box {key!r}; boxes: {[b.key for b in self.boxes]}")

    def arrow_labels(self) -> list[str]:
        """Every arrow's label, its lines joined by a space."""
        return [" ".join(a.label) for a in self.arrows if a.label]

    def text_rects(self) -> list[tuple[str, tuple[float, float, float, float]]]:
        """Every text of the diagram with the rectangle it occupies: box labels (their box),
        arrow labels, frame labels and notes. Used to check bounds and overlaps."""
        rects = [(f"box {b.key}", b.rect) for b in self.boxes]
        rects += [(f"arrow {' '.join(a.label)}", a.label_rect) for a in self.arrows if a.label_rect]
        rects += [(f"frame {f.label}", f.label_rect) for f in self.frames]
        rects += [(f"note {' '.join(n.lines)}", n.rect) for n in self.notes]
        return rects

    def description(self) -> list[str]:
        """The diagram in words, one sentence per box and per arrow, from the same data."""
        names = {b.key: b.label for b in self.boxes}
        sentences = [f"{self.title}."]
        for b in self.boxes:
            detail = f" ({b.detail})" if b.detail else ""
            sentences.append(f"Box: {b.label}{detail}.")
        for a in self.arrows:
            what = ", ".join(a.label) if a.label else "the same tensor"
            sentences.append(f"Arrow from {names[a.source]} to {names[a.target]}: {what}.")
        for n in self.notes:
            sentences.append(" ".join(n.lines) + ".")
        return sentences

    def _id(self) -> str:
        digest = hashlib.sha1("\n".join(self.description()).encode()).hexdigest()[:10]
        return f"tt-diagram-{digest}"

    def to_svg(self) -> str:
        """The diagram as one ``<svg>`` element (``viewBox``, ``width: 100%``, ``role="img"``)."""
        ident = self._id()
        esc = _escape
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'class="tt-diagram-svg" role="img" '
            f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" width="100%" '
            f'style="width: 100%; max-width: {self.width:.0f}px; height: auto; display: block" '
            f'aria-labelledby="{ident}-title {ident}-desc" '
            f'font-family="{_FONT_FAMILY[False]}">',
            f'<title id="{ident}-title">{esc(self.title)}</title>',
            f'<desc id="{ident}-desc">{esc(" ".join(self.description()[1:]))}</desc>',
            f"<style>{_LINK_STYLE}</style>",
        ]
        for f in self.frames:
            left, top, right, bottom = f.rect
            out.append(
                f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" '
                f'height="{bottom - top:.1f}" rx="8" fill="none" stroke="{f.colour}" '
                f'stroke-dasharray="5 4"/>'
            )
            out.append(_text_lines((f.label,), f.label_rect, f.colour, SMALL_FONT, "start"))
        for a in self.arrows:
            out.append(_arrow_svg(a))
        for b in self.boxes:
            out.append(_box_svg(b))
        for a in self.arrows:
            if a.label_rect:
                out.append(_label_svg(a))
        for n in self.notes:
            out.append(_text_lines(n.lines, n.rect, n.colour, SMALL_FONT, "start"))
        out.append("</svg>")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        """The SVG in a ``<figure>``, its caption, and the text description (with the
        boxes' links) in a ``<details>`` element."""
        links = {b.key: b.href for b in self.boxes if b.href}
        items = []
        for b in self.boxes:
            detail = f" — {_escape(b.detail)}" if b.detail else ""
            name = _escape(b.label)
            if b.key in links:
                name = f'<a href="{_escape(links[b.key])}">{name}</a>'
            items.append(f"<li>{name}{detail}</li>")
        for a in self.arrows:
            what = _escape(", ".join(a.label) if a.label else "the same tensor")
            source, target = _escape(self.box(a.source).label), _escape(self.box(a.target).label)
            items.append(f"<li>{source} → {target}: {what}</li>")
        # On a screen narrower than the diagram it scrolls sideways instead of shrinking its
        # text below MIN_FONT * _MIN_SCALE CSS px.
        svg = self.to_svg().replace(
            "display: block", f"display: block; min-width: {self.width * _MIN_SCALE:.0f}px", 1
        )
        return (
            f'<figure class="tt-diagram" style="margin: 1em 0">\n'
            f'<div style="overflow-x: auto">{svg}</div>\n'
            f'<figcaption style="font-size: 0.9em">{_escape(self.caption)}</figcaption>\n'
            f'<details class="tt-diagram-description"><summary>Text description</summary>'
            f"<ul>{''.join(items)}</ul></details>\n</figure>"
        )

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        return {"text/html": self._repr_html_(), "text/plain": repr(self)}

    def __repr__(self) -> str:
        return f"<Diagram: {self.title} ({len(self.boxes)} boxes, {len(self.arrows)} arrows)>"


# Links: no underline (the theme underlines every link), a thicker outline on hover and focus.
_LINK_STYLE = (
    ".tt-diagram-link, .tt-diagram-link text { text-decoration: none; } "
    ".tt-diagram-link:hover rect, .tt-diagram-link:hover circle, "
    ".tt-diagram-link:focus rect, .tt-diagram-link:focus circle { stroke-width: 3; }"
)


def _escape(text: str) -> str:
    return html.escape(str(text), quote=True)


def _text_lines(
    lines: Sequence[str], rect: tuple[float, float, float, float], colour: str, size: float,
    anchor: str, mono: bool = False,
) -> str:  # fmt: skip
    left, top, right, _ = rect
    x = left if anchor == "start" else (right if anchor == "end" else (left + right) / 2)
    family = f' font-family="{_FONT_FAMILY[True]}"' if mono else ""
    spans = []
    for i, line in enumerate(lines):
        y = top + (i + 0.5) * LINE + size * 0.35
        spans.append(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" fill="{colour}" '
            f'text-anchor="{anchor}"{family}>{_escape(line)}</text>'
        )
    return "".join(spans)


def _box_svg(b: Box) -> str:
    left, top = b.x - b.width / 2, b.y - b.height / 2
    fill = palette.tint(b.colour, 0.86)
    parts = []
    if b.shape == "circle":
        parts.append(
            f'<circle cx="{b.x:.1f}" cy="{b.y:.1f}" r="{b.width / 2:.1f}" fill="{fill}" '
            f'stroke="{b.colour}" stroke-width="1.5"/>'
        )
    else:
        copies = 2 if b.shape == "stack" else 0
        for c in range(copies, -1, -1):
            parts.append(
                f'<rect x="{left + 4 * c:.1f}" y="{top + 4 * c:.1f}" width="{b.width:.1f}" '
                f'height="{b.height:.1f}" rx="6" fill="{fill}" stroke="{b.colour}" '
                f'stroke-width="1.5"/>'
            )
    lines = [b.label] + ([b.detail] if b.detail else [])
    first_y = b.y - (len(lines) - 1) * LINE / 2
    for i, line in enumerate(lines):
        size = LABEL_FONT if i == 0 else SMALL_FONT
        colour = palette.INK if i == 0 else b.detail_colour
        parts.append(
            f'<text x="{b.x:.1f}" y="{first_y + i * LINE + size * 0.35:.1f}" '
            f'font-size="{size:g}" fill="{colour}" text-anchor="middle">{_escape(line)}</text>'
        )
    body = "".join(parts)
    if b.href:
        # xlink:href, not href: JupyterLab rewrites every relative `href` of an <a> by setting
        # `anchor.href`, which an SVG <a> does not allow (a "Javascript Error" in the output).
        return f'<a xlink:href="{_escape(b.href)}" class="tt-diagram-link">{body}</a>'
    return f"<g>{body}</g>"


def _arrow_svg(a: Arrow) -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in a.points)
    dash = ' stroke-dasharray="5 3"' if a.dashed else ""
    (x0, y0), (x1, y1) = a.points[-2], a.points[-1]
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    head = [
        (x1, y1),
        (x1 - 8 * ux - 4 * uy, y1 - 8 * uy + 4 * ux),
        (x1 - 8 * ux + 4 * uy, y1 - 8 * uy - 4 * ux),
    ]
    head_points = " ".join(f"{x:.1f},{y:.1f}" for x, y in head)
    return (
        f'<polyline points="{points}" fill="none" stroke="{a.colour}" stroke-width="1.6"{dash}/>'
        f'<polygon points="{head_points}" fill="{a.colour}"/>'
    )


def _label_svg(a: Arrow) -> str:
    left, top, right, bottom = a.label_rect
    background = (
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" '
        f'height="{bottom - top:.1f}" fill="white" fill-opacity="0.9"/>'
    )
    colour = palette.INK if a.colour == palette.TENSOR else a.colour
    parts = [background]
    for i, line in enumerate(a.label):
        rect = (left + 2, top + i * LINE, right, bottom)
        shape = _is_shape(line)
        parts.append(_text_lines(
            (line,), rect, palette.INK if shape else colour, SMALL_FONT, "start", mono=shape
        ))  # fmt: skip
    return "".join(parts)


def _is_shape(line: str) -> bool:
    """Shape lines, ``(1, 12, 64)`` or ``(1, 512, 64) → (1, 1024, 64)``, are set in monospace."""
    return line.startswith("(")


# -- layout ------------------------------------------------------------------------------


@dataclass
class _Canvas:
    """Collects boxes and arrows at computed positions, then freezes them into a Diagram."""

    boxes: dict[str, Box] = field(default_factory=dict)
    arrows: list[Arrow] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def box(
        self, key: str, label: str, x: float, y: float, detail: str = "", href: str = "",
        colour: str = palette.TENSOR, shape: str = "rect", detail_colour: str = palette.INK,
        min_width: float = 0.0,
    ) -> Box:  # fmt: skip
        if key in self.boxes:
            raise ValueError(f"box {key!r} placed twice")
        if shape == "circle":
            width = height = 26.0
        else:
            width = max(
                text_width(label, LABEL_FONT), text_width(detail, SMALL_FONT), min_width
            ) + 2 * _PAD
            height = 34.0 if not detail else 34.0 + LINE
        box = Box(key, label, x, y, width, height, detail, href, colour, shape, detail_colour)
        self.boxes[key] = box
        return box

    def arrow(
        self, source: str, target: str, label: Sequence[str] = (), colour: str = palette.TENSOR,
        via: Sequence[tuple[float, float]] = (), side: str = "right", dashed: bool = False,
        segment: int | None = None, along: float = 0.5,
        start: tuple[float, float] | None = None, end: tuple[float, float] | None = None,
    ) -> Arrow:  # fmt: skip
        """An arrow from box ``source`` to ``target`` through the ``via`` points; its label
        goes beside the middle of the longest straight piece (or piece ``segment``), on
        ``side`` (``"right"``, ``"left"``, ``"above"``, ``"below"``). ``start`` and ``end``
        override where the arrow leaves ``source`` and reaches ``target``."""
        a, b = self.boxes[source], self.boxes[target]
        inner = list(via)
        start = start or _edge_point(a, inner[0] if inner else (b.x, b.y))
        end = end or _edge_point(b, inner[-1] if inner else (a.x, a.y))
        points = (start, *inner, end)
        label = tuple(label)
        label_rect = _label_rect(points, label, side, segment, along) if label else None
        arrow = Arrow(source, target, label, points, label_rect, colour, dashed)
        self.arrows.append(arrow)
        return arrow

    def frame(self, label: str, keys: Sequence[str], pad: float = 10.0,
              colour: str = palette.MUTED) -> Frame:
        """A dashed frame around boxes ``keys``, its label on the frame's top left edge."""
        rects = [self.boxes[k].rect for k in keys]
        left = min(r[0] for r in rects) - pad
        top = min(r[1] for r in rects) - pad - LINE
        right = max(r[2] for r in rects) + pad
        bottom = max(r[3] for r in rects) + pad
        label_rect = (left + 6, top + 1, left + 6 + text_width(label, SMALL_FONT), top + 1 + LINE)
        frame = Frame(label, (left, top, right, bottom), label_rect, colour)
        self.frames.append(frame)
        return frame

    def note(self, lines: Sequence[str], x: float, y: float, colour: str = palette.INK) -> Note:
        """Text lines whose top left corner is ``(x, y)``."""
        lines = tuple(lines)
        width = max(text_width(line, SMALL_FONT) for line in lines)
        note = Note(lines, (x, y, x + width, y + LINE * len(lines)), colour)
        self.notes.append(note)
        return note

    def diagram(self, title: str, caption: str) -> Diagram:
        rects = [r for _, r in _all_rects(self)]
        rects += [f.rect for f in self.frames]
        for a in self.arrows:
            rects += [(x, y, x, y) for x, y in a.points]
        right = max(r[2] for r in rects) + _MARGIN
        bottom = max(r[3] for r in rects) + _MARGIN
        left = min(r[0] for r in rects)
        top = min(r[1] for r in rects)
        if left < 0 or top < 0:
            raise ValueError(f"diagram content starts outside the viewBox at ({left}, {top})")
        return Diagram(
            title, caption, tuple(self.boxes.values()), tuple(self.arrows), tuple(self.frames),
            tuple(self.notes), math.ceil(right), math.ceil(bottom),
        )  # fmt: skip


def _all_rects(canvas: _Canvas) -> list[tuple[str, tuple[float, float, float, float]]]:
    rects = [(k, b.rect) for k, b in canvas.boxes.items()]
    rects += [(" ".join(a.label), a.label_rect) for a in canvas.arrows if a.label_rect]
    rects += [(f.label, f.label_rect) for f in canvas.frames]
    rects += [(" ".join(n.lines), n.rect) for n in canvas.notes]
    return rects


def _edge_point(box: Box, toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from ``box``'s centre toward ``toward`` leaves the box."""
    dx, dy = toward[0] - box.x, toward[1] - box.y
    if dx == 0 and dy == 0:
        return box.x, box.y
    if box.shape == "circle":
        r = box.width / 2
        d = math.hypot(dx, dy)
        return box.x + r * dx / d, box.y + r * dy / d
    half_w, half_h = box.width / 2, box.height / 2
    scale = min(half_w / abs(dx) if dx else math.inf, half_h / abs(dy) if dy else math.inf)
    return box.x + dx * scale, box.y + dy * scale


def _label_rect(
    points: Sequence[tuple[float, float]], label: Sequence[str], side: str,
    segment: int | None, along: float,
) -> tuple[float, float, float, float]:  # fmt: skip
    pieces = list(zip(points[:-1], points[1:], strict=True))
    if segment is None:
        segment = max(range(len(pieces)), key=lambda i: math.dist(*pieces[i]))
    (x0, y0), (x1, y1) = pieces[segment]
    mx, my = x0 + (x1 - x0) * along, y0 + (y1 - y0) * along
    width = max(
        text_width(line, SMALL_FONT, mono=_is_shape(line)) for line in label
    ) + 4
    height = LINE * len(label)
    if side == "right":
        return (mx + 5, my - height / 2, mx + 5 + width, my + height / 2)
    if side == "left":
        return (mx - 5 - width, my - height / 2, mx - 5, my + height / 2)
    if side == "above":
        return (mx - width / 2, my - 3 - height, mx + width / 2, my - 3)
    if side == "below":
        return (mx - width / 2, my + 3, mx + width / 2, my + 3 + height)
    raise ValueError(f"side must be right, left, above or below, got {side!r}")


# -- tracing: what the module computed, measured -------------------------------------------


@dataclass
class _Call:
    inputs: tuple
    kwargs: dict
    output: object


@contextlib.contextmanager
def _hooks(modules: dict[str, nn.Module]) -> Iterator[dict[str, list[_Call]]]:
    """Record every call of each module (inputs, keyword arguments, output) while inside."""
    calls: dict[str, list[_Call]] = {name: [] for name in modules}
    handles = []
    seen: dict[int, str] = {}
    for name, module in modules.items():
        if id(module) in seen:  # a shared module (tied embeddings) is recorded once
            calls[name] = calls[seen[id(module)]]
            continue
        seen[id(module)] = name

        def hook(module, args, kwargs, output, name=name):
            calls[name].append(_Call(args, dict(kwargs), output))

        handles.append(module.register_forward_hook(hook, with_kwargs=True))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _recording(owner: object, attribute: str) -> Iterator[list[tuple[tuple, object]]]:
    """Wrap ``owner.attribute`` (a function of a module, or a method of an object) to record
    ``(args, result)`` of each call while inside; the original is put back afterwards."""
    original = getattr(owner, attribute)
    own = attribute in vars(owner)
    records: list[tuple[tuple, object]] = []

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        records.append((args, result))
        return result

    setattr(owner, attribute, wrapper)
    try:
        yield records
    finally:
        if own:
            setattr(owner, attribute, original)
        else:
            delattr(owner, attribute)


def _first(output: object) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def _check_module(module: object, cls: type | tuple[type, ...], name: str) -> None:
    if not isinstance(module, cls):
        names = " or ".join(c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,)))
        raise TypeError(f"{name} must be a {names}, got {type(module).__name__}")


def _tensor(x: object, name: str, ndim: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != ndim:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"{name} must be a torch tensor with {ndim} dimensions, got {shape}")
    return x


def _ids(ids: object, name: str) -> torch.Tensor:
    ids = torch.as_tensor(ids)
    if ids.ndim == 1:
        ids = ids[None]
    if ids.ndim != 2 or ids.is_floating_point() or 0 in ids.shape:
        raise ValueError(f"{name} must be token ids of shape (batch, seq), got {tuple(ids.shape)}")
    return ids


# -- chapter 2: attention as a weighted average ---------------------------------------------

_ROW = 80.0  # distance between rows of boxes with two-line arrow labels between them


def weighted_average(x: np.ndarray) -> Diagram:
    """Chapter 2's attention without projections, run on ``x`` ``(seq, d_model)``:
    :math:`S = XX^\\top`, :math:`A = \\mathrm{softmax}(S)` row by row, :math:`C = AX`."""
    x = np.asarray(x)
    if x.ndim != 2 or x.dtype.kind not in "fi" or 0 in x.shape:
        raise ValueError(f"x must be a numeric array of shape (seq, d_model), got {x.shape}")
    scores = relevance_scores(x, x)
    weights = softmax(scores)
    context = context_vectors(weights, x)
    c = _Canvas()
    cx = 200.0
    c.box("x", "X: one vector per token", cx, 25, href=chapter_link(1), colour=palette.RESIDUAL)
    c.box("scores", "relevance scores S = X Xᵀ", cx, 25 + _ROW, href=api_link(relevance_scores))
    c.box("softmax", "softmax, row by row", cx, 25 + 2 * _ROW, href=api_link(softmax))
    c.box("sum", "weighted sum C = A X", cx, 25 + 3 * _ROW, href=api_link(context_vectors))
    c.box("c", "C: one context vector per token", cx, 25 + 4 * _ROW, colour=palette.RESIDUAL)
    c.arrow("x", "scores", ["X, compared with itself", _shape(x)])
    c.arrow("scores", "softmax", ["scores S", _shape(scores)])
    c.arrow("softmax", "sum", ["weights A", _shape(weights)])
    side = c.boxes["scores"].rect[2] + 40
    c.arrow("x", "sum", ["X, averaged", _shape(x)], via=[(side, 25), (side, 25 + 3 * _ROW)],
            colour=palette.RESIDUAL, segment=1)
    c.arrow("sum", "c", ["context vectors C", _shape(context)])
    seq, d = x.shape
    return c.diagram(
        "Attention as a weighted average: scores, softmax, weighted sum",
        f"Chapter 2's attention on {seq} tokens of {d} features; every shape was measured by "
        "running relevance_scores, softmax and context_vectors on X. X plays all three parts: "
        "it is compared with itself and averaged.",
    )


# -- chapter 3: one attention head -----------------------------------------------------------


def attention_head(projection: QKVProjection, x: np.ndarray, mask: object = None) -> Diagram:
    """One attention head as chapter 3 runs it: ``projection`` (:math:`W^Q, W^K, W^V`) on
    ``x`` ``(seq, d_model)``, then
    :func:`~transformer_tutorial.attention.scaled_dot_product_attention` (with ``mask``)."""
    _check_module(projection, QKVProjection, "projection")
    q, k, v = projection(x)
    scores = relevance_scores(q, k, scale=True)
    context, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    x = np.asarray(x)
    c = _Canvas()
    y = [25 + i * _ROW for i in range(6)]
    mid, left, right = 300.0, 130.0, 470.0
    link = api_link(QKVProjection)
    c.box("x", "X: token vectors", mid, y[0], href=chapter_link(1), colour=palette.RESIDUAL)
    c.box("wq", "queries: × W^Q", left, y[1], href=link, colour=palette.QUERY)
    c.box("wk", "keys: × W^K", mid, y[1], href=link, colour=palette.KEY)
    c.box("wv", "values: × W^V", right, y[1], href=link, colour=palette.VALUE)
    masked = "mask, then softmax" if mask is not None else "softmax, row by row"
    c.box("scores", "scores Q Kᵀ / √d_k", (left + mid) / 2, y[2], href=api_link(relevance_scores))
    c.box("softmax", masked, (left + mid) / 2, y[3], href=api_link(softmax),
          colour=palette.HIGHLIGHT if mask is not None else palette.TENSOR)
    c.box("sum", "weighted sum A V", mid, y[4], href=api_link(context_vectors))
    c.box("out", "context vectors: one per token", mid, y[5], colour=palette.RESIDUAL)
    c.arrow("x", "wq", colour=palette.RESIDUAL)
    c.arrow("x", "wk", ["X", _shape(x)], colour=palette.RESIDUAL)
    c.arrow("x", "wv", colour=palette.RESIDUAL)
    c.arrow("wq", "scores", ["Q", _shape(q)], colour=palette.QUERY, side="left")
    c.arrow("wk", "scores", ["K", _shape(k)], colour=palette.KEY)
    c.arrow("scores", "softmax", ["scaled scores", _shape(scores)])
    c.arrow("softmax", "sum", ["weights A", _shape(weights)], side="left")
    c.arrow("wv", "sum", ["V", _shape(v)], colour=palette.VALUE, via=[(right, y[4])])
    c.arrow("sum", "out", ["C", _shape(context)])
    return c.diagram(
        "One attention head: X to queries, keys and values, scores, softmax, weighted sum",
        f"Scaled dot-product attention as chapter 3 runs it: QKVProjection with d_model = "
        f"{projection.d_model}, d_k = {projection.d_k}, d_v = {projection.d_v} on "
        f"{x.shape[-2]} tokens; every shape was measured in that run.",
    )


# -- chapter 4: multi-head attention ---------------------------------------------------------


def multi_head(mha: MultiHeadAttention, x: torch.Tensor) -> Diagram:
    """Multi-head attention as chapter 4 runs it: ``mha`` on ``x`` ``(batch, seq, d_model)``
    — project, split into heads, attend in parallel, concatenate, :math:`W^O`."""
    _check_module(mha, MultiHeadAttention, "mha")
    s = multihead_steps(mha, _tensor(x, "x", 3))  # a trace of mha's own forward pass
    heads = s["Q_i"].shape[1]
    c = _Canvas()
    y = [25 + i * _ROW for i in range(8)]
    mid, left, right = 300.0, 110.0, 490.0
    link = api_link(MultiHeadAttention)
    split = api_link(MultiHeadAttention.split_heads)
    c.box("x", "X: token vectors", mid, y[0], colour=palette.RESIDUAL, href=chapter_link(1))
    for key, col, colour, name in (
        ("q", left, palette.QUERY, "Q"), ("k", mid, palette.KEY, "K"),
        ("v", right, palette.VALUE, "V"),
    ):  # fmt: skip
        c.box(f"w{key}", f"× W^{name}", col, y[1], href=link, colour=colour)
        c.box(f"split_{key}", f"split into {heads} heads", col, y[2], href=split, colour=colour)
        c.arrow(f"w{key}", f"split_{key}", [name, _shape(s[f"{name} = X W^{name}"])],
                colour=colour, side="left" if key == "q" else "right")  # fmt: skip
    c.arrow("x", "wq", colour=palette.RESIDUAL)
    c.arrow("x", "wk", ["X", _shape(s["X"])], colour=palette.RESIDUAL)
    c.arrow("x", "wv", colour=palette.RESIDUAL)
    c.box("heads", f"{heads} heads in parallel: softmax(Q_i K_iᵀ / √d_head) V_i", mid, y[3] + 10,
          href=chapter_link(3), shape="stack")
    c.arrow("split_q", "heads", ["Q_i", _shape(s["Q_i"])], colour=palette.QUERY, side="left")
    c.arrow("split_k", "heads", ["K_i", _shape(s["K_i"])], colour=palette.KEY, along=0.4)
    c.arrow("split_v", "heads", ["V_i", _shape(s["V_i"])], colour=palette.VALUE, along=0.35)
    side = c.boxes["heads"].rect[2] + 25
    c.box("weights", "attention weights", side, y[5], href=api_link(MultiHeadAttention),
          colour=palette.SKY)
    c.arrow("heads", "weights", ["weights", _shape(s["weights"])], via=[(side, y[3] + 10)],
            colour=palette.SKY, side="left", segment=1, along=0.45)
    c.box("concat", "Concat(head_1, …, head_h)", mid, y[5],
          href=api_link(MultiHeadAttention.merge_heads))
    c.arrow("heads", "concat", ["head_i", _shape(s["head_i"])], side="left")
    c.box("wo", "× W^O: mix the heads", mid, y[6], href=link)
    c.arrow("concat", "wo", ["Concat", _shape(s["Concat"])], side="left")
    c.box("out", "output: one vector per token", mid, y[7], colour=palette.RESIDUAL)
    c.arrow("wo", "out", ["output", _shape(s["output"])], side="left")
    return c.diagram(
        "Multi-head attention: split into heads, attend in parallel, concatenate, W^O",
        f"MultiHeadAttention(d_model={mha.d_model}, num_heads={mha.num_heads}) run on an input "
        f"of shape {_shape(x)}; every shape was measured in that run (d_head = "
        f"{mha.d_head}).",
    )


# -- chapter 5: positions --------------------------------------------------------------------


def positional_encoding(
    x: torch.Tensor,
    add_positions: SinusoidalPositionalEncoding,
    rope_attention: GroupedQueryAttention,
) -> Diagram:
    """Where position information enters, measured on the token vectors ``x`` ``(batch, seq,
    d_model)``: added to the input by ``add_positions`` (sinusoidal, the 2017 Transformer),
    or applied to queries and keys inside attention by RoPE (``rope_attention``, as in LLaMA
    and SmolLM2)."""
    _check_module(add_positions, SinusoidalPositionalEncoding, "add_positions")
    _check_module(rope_attention, GroupedQueryAttention, "rope_attention")
    x = _tensor(x, "x", 3)
    with torch.no_grad():
        with_positions = add_positions(x)
        with _recording(mh, "apply_rotary") as rotations, _hooks(
            {"w_q": rope_attention.w_q, "w_k": rope_attention.w_k}
        ) as calls:  # fmt: skip
            output, weights, _ = rope_attention(x)
    q_rot, k_rot = rotations[0][1], rotations[1][1]
    c = _Canvas()
    y = [40 + i * _ROW for i in range(6)]
    a, b1, b2 = 130.0, 420.0, 585.0
    bm = (b1 + b2) / 2
    c.note(["2017 Transformer: add to the input"], 12, 2, palette.MUTED)
    c.note(["RoPE (LLaMA, SmolLM2): rotate Q and K"], 330, 2, palette.MUTED)
    c.box("x1", "token embeddings", a, y[0], href=chapter_link(1), colour=palette.RESIDUAL)
    c.box("pe", "+ positional encoding PE", a, y[1] + 20,
          href=api_link(SinusoidalPositionalEncoding), colour=palette.HIGHLIGHT)
    c.box("att1", "attention (chapters 2–4)", a, y[3], href=chapter_link(4))
    c.arrow("x1", "pe", ["x", _shape(x)], colour=palette.RESIDUAL)
    c.arrow("pe", "att1", ["x + PE", _shape(with_positions)], colour=palette.RESIDUAL)
    c.box("x2", "token embeddings, no PE", bm, y[0], href=chapter_link(1), colour=palette.RESIDUAL)
    link = api_link(GroupedQueryAttention)
    c.box("wq", "× W^Q", b1, y[1], href=link, colour=palette.QUERY)
    c.box("wk", "× W^K", b2, y[1], href=link, colour=palette.KEY)
    rope = api_link(mh.apply_rotary)
    c.box("rq", "RoPE: rotate", b1, y[2] + 15, href=rope, colour=palette.HIGHLIGHT)
    c.box("rk", "RoPE: rotate", b2, y[2] + 15, href=rope, colour=palette.HIGHLIGHT)
    c.box("att2", "scores, softmax, · V", bm, y[3] + 30, href=link)
    c.arrow("x2", "wq", colour=palette.RESIDUAL)
    c.arrow("x2", "wk", ["x", _shape(calls["w_k"][0].inputs[0])], colour=palette.RESIDUAL)
    c.arrow("wq", "rq", ["Q, per head", _shape(rotations[0][0][0])], colour=palette.QUERY,
            side="left")
    c.arrow("wk", "rk", ["K, per head", _shape(rotations[1][0][0])], colour=palette.KEY,
            side="left")
    c.arrow("rq", "att2", ["RoPE(Q)", _shape(q_rot)], colour=palette.QUERY, side="left")
    c.arrow("rk", "att2", ["RoPE(K)", _shape(k_rot)], colour=palette.KEY)
    c.box("out2", "output", bm, y[4] + 30, colour=palette.RESIDUAL)
    c.arrow("att2", "out2", ["output", _shape(output)], colour=palette.RESIDUAL)
    return c.diagram(
        "Where positions enter: added to the input (sinusoidal) or rotating queries and keys "
        "(RoPE)",
        f"Left: SinusoidalPositionalEncoding(d_model={add_positions.d_model}) on token vectors "
        f"of shape {_shape(x)}. Right: GroupedQueryAttention(d_model={rope_attention.d_model}, "
        f"num_heads={rope_attention.num_heads}) on the same vectors, which rotates each head's "
        "queries and keys by their positions (values are not rotated). Shapes measured in "
        "those runs.",
    )


# -- chapter 6: post-norm and pre-norm blocks -------------------------------------------------


def _block_column(
    c: _Canvas, block: EncoderBlock, x: torch.Tensor, cx: float, prefix: str
) -> None:
    """One encoder block's column (post- or pre-norm), shapes measured by hooks."""
    parts = {
        "attn": block.self_attn, "ffn": block.feed_forward,
        "an1": block.add_norm1, "an2": block.add_norm2,
        "ln1": block.add_norm1.norm, "ln2": block.add_norm2.norm,
    }  # fmt: skip
    with torch.no_grad(), _hooks(parts) as calls:
        out, _ = block(x)
    shape = {name: _shape(_first(calls[name][0].output)) for name in parts}
    ln_in = {name: _shape(calls[name][0].inputs[0]) for name in ("ln1", "ln2")}
    y = [40 + i * _ROW for i in range(8)]
    p = prefix
    norm_link, attn_link = api_link(type(block.add_norm1)), api_link(MultiHeadAttention)
    ffn_link = api_link(type(block.feed_forward))
    c.box(f"{p}x", "x: token vectors", cx, y[0], colour=palette.RESIDUAL, href=chapter_link(5))
    left, right = cx - 105, cx + 125
    if not block.norm_first:
        c.box(f"{p}attn", "multi-head attention", cx, y[1], href=attn_link)
        c.box(f"{p}add1", "+", cx, y[2], shape="circle", colour=palette.RESIDUAL, href=norm_link)
        c.box(f"{p}ln1", "layer norm", cx, y[3], href=norm_link, colour=palette.SKY)
        c.box(f"{p}ffn", "feed-forward", cx, y[4], href=ffn_link)
        c.box(f"{p}add2", "+", cx, y[5], shape="circle", colour=palette.RESIDUAL, href=norm_link)
        c.box(f"{p}ln2", "layer norm", cx, y[6], href=norm_link, colour=palette.SKY)
        c.box(f"{p}y", "y: block output", cx, y[7], colour=palette.RESIDUAL)
        c.arrow(f"{p}x", f"{p}attn", ["x", _shape(x)], colour=palette.RESIDUAL)
        c.arrow(f"{p}attn", f"{p}add1", ["attention", shape["attn"]])
        c.arrow(f"{p}add1", f"{p}ln1", ["x + attention", ln_in["ln1"]], colour=palette.RESIDUAL)
        c.arrow(f"{p}ln1", f"{p}ffn", ["h", shape["an1"]], colour=palette.RESIDUAL)
        c.arrow(f"{p}ffn", f"{p}add2", ["FFN(h)", shape["ffn"]])
        c.arrow(f"{p}add2", f"{p}ln2", ["h + FFN(h)", ln_in["ln2"]], colour=palette.RESIDUAL)
        c.arrow(f"{p}ln2", f"{p}y", ["y", _shape(out)], colour=palette.RESIDUAL)
        c.arrow(f"{p}x", f"{p}add1", ["x"], colour=palette.RESIDUAL, side="left",
                via=[(left, y[0]), (left, y[2])], segment=1)
        c.arrow(f"{p}ln1", f"{p}add2", ["h"], colour=palette.RESIDUAL, side="right",
                via=[(right, y[3]), (right, y[5])], segment=1)
    else:
        c.box(f"{p}ln1", "layer norm", cx, y[1], href=norm_link, colour=palette.SKY)
        c.box(f"{p}attn", "multi-head attention", cx, y[2], href=attn_link)
        c.box(f"{p}add1", "+", cx, y[3], shape="circle", colour=palette.RESIDUAL, href=norm_link)
        c.box(f"{p}ln2", "layer norm", cx, y[4], href=norm_link, colour=palette.SKY)
        c.box(f"{p}ffn", "feed-forward", cx, y[5], href=ffn_link)
        c.box(f"{p}add2", "+", cx, y[6], shape="circle", colour=palette.RESIDUAL, href=norm_link)
        c.box(f"{p}y", "y: block output", cx, y[7], colour=palette.RESIDUAL)
        c.arrow(f"{p}x", f"{p}ln1", ["x", _shape(x)], colour=palette.RESIDUAL)
        c.arrow(f"{p}ln1", f"{p}attn", ["LN(x)", shape["ln1"]])
        c.arrow(f"{p}attn", f"{p}add1", ["attention", shape["attn"]])
        c.arrow(f"{p}add1", f"{p}ln2", ["h", shape["an1"]], colour=palette.RESIDUAL)
        c.arrow(f"{p}ln2", f"{p}ffn", ["LN(h)", shape["ln2"]])
        c.arrow(f"{p}ffn", f"{p}add2", ["FFN(LN(h))", shape["ffn"]])
        c.arrow(f"{p}add2", f"{p}y", ["y", _shape(out)], colour=palette.RESIDUAL)
        c.arrow(f"{p}x", f"{p}add1", ["x"], colour=palette.RESIDUAL, side="left",
                via=[(left, y[0]), (left, y[3])], segment=1)
        c.arrow(f"{p}add1", f"{p}add2", ["h"], colour=palette.RESIDUAL, side="right",
                via=[(right, y[3]), (right, y[6])], segment=1)


def norm_placement(post_block: EncoderBlock, pre_block: EncoderBlock, x: torch.Tensor) -> Diagram:
    """A post-norm block (``post_block``, the 2017 paper) and a pre-norm block
    (``pre_block``, GPT-2 and most models since) side by side, each run on ``x``
    ``(batch, seq, d_model)``: where add & norm sits around each sublayer."""
    _check_module(post_block, EncoderBlock, "post_block")
    _check_module(pre_block, EncoderBlock, "pre_block")
    if post_block.norm_first or not pre_block.norm_first:
        raise ValueError("post_block must have norm_first=False and pre_block norm_first=True")
    x = _tensor(x, "x", 3)
    c = _Canvas()
    c.note(["post-norm (2017): LN(x + sublayer(x))"], 10, 2, palette.MUTED)
    c.note(["pre-norm (GPT-2 on): x + sublayer(LN(x))"], 355, 2, palette.MUTED)
    _block_column(c, post_block, x, 150.0, "post_")
    _block_column(c, pre_block, x, 490.0, "pre_")
    return c.diagram(
        "Post-norm and pre-norm encoder blocks side by side",
        f"Two EncoderBlocks (d_model = {post_block.d_model}, "
        f"{post_block.self_attn.num_heads} heads, d_ff = {post_block.feed_forward.d_ff}), "
        f"norm_first=False on the left and True on the right, run on an input of shape "
        f"{_shape(x)}; shapes measured with forward hooks. Purple: the residual stream.",
    )


# -- chapter 7: a stack of blocks ---------------------------------------------------------------


def _shown_layers(count: int, most: int = 6) -> list[int | None]:
    """Which layers to draw: all if ``count <= most``, else the first few, a gap, the last."""
    if count <= most:
        return list(range(count))
    return [0, 1, None, count - 1]


def encoder_stack(model: BertEncoder, token_ids: object) -> Diagram:
    """The stack of chapter 7: ``model``'s embeddings and its N blocks, run on
    ``token_ids`` ``(batch, seq)``; the residual stream :math:`h^{(0)} \\dots h^{(N)}`."""
    _check_module(model, BertEncoder, "model")
    ids = _ids(token_ids, "token_ids")
    modules = {"embeddings": model.embeddings}
    modules |= {f"block{i}": block for i, block in enumerate(model.blocks)}
    with torch.no_grad(), _hooks(modules) as calls:
        model(ids)
    config = model.config
    c = _Canvas()
    cx = 260.0
    c.box("ids", "token ids", cx, 25, href=chapter_link(1))
    c.box("emb", "embeddings: word + position + type, layer norm", cx, 25 + _ROW,
          href=api_link(type(model.embeddings)), colour=palette.RESIDUAL)
    c.arrow("ids", "emb", ["ids", _shape(ids)])
    previous, row = "emb", 2
    block = model.blocks[0]
    detail = (
        f"{block.self_attn.num_heads} heads × d_head {block.self_attn.d_head}, "
        f"d_ff {block.feed_forward.d_ff}, {'pre' if block.norm_first else 'post'}-norm"
    )
    for layer in _shown_layers(len(model.blocks)):
        if layer is None:
            skipped = len(model.blocks) - 3
            c.box("gap", f"… {skipped} more blocks …", cx, 25 + row * _ROW, colour=palette.MUTED)
            c.arrow(previous, "gap", colour=palette.RESIDUAL)
            previous, row = "gap", row + 1
            continue
        key = f"block{layer}"
        c.box(key, f"encoder block {layer}", cx, 25 + row * _ROW, detail=detail,
              href=chapter_link(6))
        h_in = calls[key][0].inputs[0]
        label = [f"{_h(layer)}", _shape(h_in)] if previous != "gap" else []
        c.arrow(previous, key, label, colour=palette.RESIDUAL)
        previous, row = key, row + 1
    last = len(model.blocks)
    c.box("out", "contextual vectors", cx, 25 + row * _ROW, colour=palette.RESIDUAL,
          href=chapter_link(7))
    c.arrow(previous, "out", [_h(last), _shape(_first(calls[f"block{last - 1}"][0].output))],
            colour=palette.RESIDUAL)
    c.frame(f"N = {last} blocks",
            [f"block{i}" for i in range(last) if f"block{i}" in c.boxes])
    return c.diagram(
        f"A stack of {last} encoder blocks: the residual stream {_h(0)} to {_h(last)}",
        f"BertEncoder with d_model = {config.d_model}, {config.num_layers} layers, "
        f"{config.num_heads} heads, d_ff = {config.d_ff}, run on {ids.shape[1]} tokens; shapes "
        "measured with forward hooks on the embeddings and on every block.",
    )


# -- chapter 8 and the introduction: the encoder-decoder --------------------------------------


def _mask_words(call: _Call, keys: str = "") -> str:
    """What an attention call was masked with, read from the keyword arguments it got;
    ``keys`` names whose padding a padding mask hides (e.g. ``"source"``)."""
    kinds = []
    if call.kwargs.get("causal"):
        kinds.append("causal")
    if call.kwargs.get("mask") is not None:
        kinds.append("mask")
    if call.kwargs.get("key_padding_mask") is not None:
        kinds.append(f"{keys} padding".strip())
    return " + ".join(kinds) if kinds else "none"


def _trace_seq2seq(model: EncoderDecoder, src: torch.Tensor, tgt: torch.Tensor):
    modules: dict[str, nn.Module] = {
        "src_embed": model.src_embed, "tgt_embed": model.tgt_embed,
        "positions": model.positions, "encoder": model.encoder, "generator": model.generator,
    }  # fmt: skip
    for i, layer in enumerate(model.encoder.layers):
        modules |= {f"enc{i}": layer, f"enc{i}.attn": layer.self_attn,
                    f"enc{i}.an1": layer.add_norm1, f"enc{i}.ffn": layer.feed_forward}
    for i, layer in enumerate(model.decoder.layers):
        modules |= {
            f"dec{i}": layer, f"dec{i}.self": layer.self_attn, f"dec{i}.cross": layer.cross_attn,
            f"dec{i}.ffn": layer.feed_forward, f"dec{i}.an1": layer.add_norm1,
            f"dec{i}.an2": layer.add_norm2, f"dec{i}.an3": layer.add_norm3,
        }  # fmt: skip
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _hooks(modules) as calls:
            out = model(src, tgt)
    finally:
        model.train(was_training)
    return calls, out


def encoder_decoder(model: EncoderDecoder, src_ids: object, tgt_ids: object) -> Diagram:
    """Chapter 8's encoder–decoder, every layer drawn: ``model`` run on ``src_ids`` and
    ``tgt_ids`` ``(batch, len)``; the encoder output (memory) feeds the cross-attention of
    every decoder layer, and each attention is marked with the mask it was called with."""
    _check_module(model, EncoderDecoder, "model")
    src, tgt = _ids(src_ids, "src_ids"), _ids(tgt_ids, "tgt_ids")
    calls, out = _trace_seq2seq(model, src, tgt)
    n_enc, n_dec = len(model.encoder.layers), len(model.decoder.layers)
    memory = _first(calls["encoder"][0].output)
    c = _Canvas()
    ex, dx, bus = 120.0, 480.0, 300.0
    mark = palette.HIGHLIGHT
    y = 25.0
    c.box("src", "source ids", ex, y, href=chapter_link(1))
    c.box("tgt", "target ids, shifted right", dx, y, href=chapter_link(8))
    embed_link = api_link(type(model.src_embed))
    y += _ROW
    for key, x in (("src_emb", ex), ("tgt_emb", dx)):
        c.box(key, "embedding × √d + PE", x, y, href=embed_link, colour=palette.RESIDUAL)
    c.arrow("src", "src_emb", ["ids", _shape(src)])
    c.arrow("tgt", "tgt_emb", ["ids", _shape(tgt)])
    enc_link, dec_link = api_link(EncoderBlock), api_link(type(model.decoder.layers[0]))
    previous = "src_emb"
    label = ["x", _shape(calls["positions"][0].output)]
    enc_y = y + _ROW + 10
    for i in range(n_enc):
        key = f"enc{i}"
        c.box(key, f"encoder block {i}", ex, enc_y, detail=(
            f"self-attention mask: {_mask_words(calls[f'{key}.attn'][0])}"
        ), detail_colour=mark, href=enc_link)  # fmt: skip
        c.arrow(previous, key, label, colour=palette.RESIDUAL)
        label = ["h", _shape(_first(calls[key][0].output))]
        previous, enc_y = key, enc_y + _ROW
    c.frame("encoder", [f"enc{i}" for i in range(n_enc)], pad=8)
    mem_y = enc_y + 10
    c.box("memory", "memory: encoder output", ex, mem_y, href=chapter_link(8),
          colour=palette.KEY)
    c.arrow(previous, "memory", ["memory", _shape(memory)], colour=palette.RESIDUAL)
    previous = "tgt_emb"
    label = ["y", _shape(calls["positions"][1].output)]
    y += _ROW + 10
    for i in range(n_dec):
        parts = [
            ("self", "masked self-attention", f"dec{i}.self", f"dec{i}.an1", ""),
            ("cross", "cross-attention", f"dec{i}.cross", f"dec{i}.an2", "source"),
            ("ffn", "feed-forward", f"dec{i}.ffn", f"dec{i}.an3", ""),
        ]
        keys = []
        for part, name, module_key, add_norm, padded in parts:
            key = f"dec{i}_{part}"
            detail = "" if part == "ffn" else f"mask: {_mask_words(calls[module_key][0], padded)}"
            c.box(key, name, dx, y, detail=detail, detail_colour=mark, href=dec_link,
                  colour=palette.KEY if part == "cross" else palette.TENSOR)
            c.arrow(previous, key, label, colour=palette.RESIDUAL)
            label = [f"add & norm {i}.{len(keys) + 1}", _shape(_first(calls[add_norm][0].output))]
            keys.append(key)
            previous = key
            y += _ROW + (20 if part == "ffn" else 0)
        c.frame(f"block {i}", keys, pad=8)
        cross = c.boxes[f"dec{i}_cross"]
        c.arrow("memory", f"dec{i}_cross", ["memory", _shape(memory)] if i == 0 else [],
                colour=palette.KEY, via=[(bus, mem_y), (bus, cross.y)],
                side="right", segment=1)  # fmt: skip
    c.box("gen", "linear: one logit per token", dx, y, href=chapter_link(9))
    c.arrow(previous, "gen", label, colour=palette.RESIDUAL)
    c.box("logits", "logits", dx, y + _ROW, href=chapter_link(9))
    c.arrow("gen", "logits", ["logits", _shape(out.logits)])
    return c.diagram(
        "The encoder–decoder: the encoder output feeds every decoder layer's cross-attention",
        f"EncoderDecoder(d_model={model.d_model}, {n_enc} encoder and {n_dec} decoder blocks) run "
        f"on a source of shape {_shape(src)} and a target of shape {_shape(tgt)}; shapes and "
        "masks (in red) recorded with forward hooks. Orange: the memory and the cross-attention "
        "that reads it (its keys and values). Each decoder sublayer sits inside add & norm.",
    )


def transformer(model: EncoderDecoder, src_ids: object, tgt_ids: object) -> Diagram:
    """The whole Transformer as in the paper's Figure 1 — the book's map: ``model`` run on
    ``src_ids`` and ``tgt_ids``; each box links to the chapter that teaches it."""
    _check_module(model, EncoderDecoder, "model")
    src, tgt = _ids(src_ids, "src_ids"), _ids(tgt_ids, "tgt_ids")
    calls, out = _trace_seq2seq(model, src, tgt)
    n_enc, n_dec = len(model.encoder.layers), len(model.decoder.layers)
    s = {name: _shape(_first(cs[0].output)) for name, cs in calls.items() if cs}
    c = _Canvas()
    ex, dx, step = 130.0, 500.0, 62.0
    add = palette.SKY
    rows = {
        "enc": ["src", "src_emb", "src_pe", "e_attn", "e_an1", "e_ffn", "e_an2"],
        "dec": ["tgt", "tgt_emb", "tgt_pe", "d_self", "d_an1", "d_cross", "d_an2", "d_ffn",
                "d_an3", "linear", "softmax"],
    }  # fmt: skip
    labels = {
        "src": ("inputs: source token ids", 1, palette.TENSOR),
        "src_emb": ("input embedding", 1, palette.RESIDUAL),
        "src_pe": ("+ positional encoding", 5, palette.HIGHLIGHT),
        "e_attn": ("multi-head attention", 4, palette.TENSOR),
        "e_an1": ("add & norm", 6, add),
        "e_ffn": ("feed-forward", 6, palette.TENSOR),
        "e_an2": ("add & norm", 6, add),
        "tgt": ("outputs, shifted right", 8, palette.TENSOR),
        "tgt_emb": ("output embedding", 1, palette.RESIDUAL),
        "tgt_pe": ("+ positional encoding", 5, palette.HIGHLIGHT),
        "d_self": ("masked multi-head attention", 8, palette.TENSOR),
        "d_an1": ("add & norm", 6, add),
        "d_cross": ("cross-attention over the encoder", 8, palette.KEY),
        "d_an2": ("add & norm", 6, add),
        "d_ffn": ("feed-forward", 6, palette.TENSOR),
        "d_an3": ("add & norm", 6, add),
        "linear": ("linear", 9, palette.TENSOR),
        "softmax": ("softmax: next-token probabilities", 9, palette.TENSOR),
    }
    for column, x in (("enc", ex), ("dec", dx)):
        for i, key in enumerate(rows[column]):
            name, chapter, colour = labels[key]
            c.box(key, name, x, 25 + i * step, href=chapter_link(chapter), colour=colour)
    arrow_shapes = {
        ("src", "src_emb"): ["ids", _shape(src)],
        ("src_emb", "src_pe"): ["", s["src_embed"]],
        ("src_pe", "e_attn"): ["", _shape(calls["positions"][0].output)],
        ("e_attn", "e_an1"): ["", s["enc0.attn"]],
        ("e_an1", "e_ffn"): ["", s["enc0.an1"]],
        ("e_ffn", "e_an2"): ["", s["enc0.ffn"]],
        ("tgt", "tgt_emb"): ["ids", _shape(tgt)],
        ("tgt_emb", "tgt_pe"): ["", _shape(calls["tgt_embed"][-1].output)],
        ("tgt_pe", "d_self"): ["", _shape(calls["positions"][1].output)],
        ("d_self", "d_an1"): ["", s["dec0.self"]],
        ("d_an1", "d_cross"): ["", s["dec0.an1"]],
        ("d_cross", "d_an2"): ["", s["dec0.cross"]],
        ("d_an2", "d_ffn"): ["", s["dec0.an2"]],
        ("d_ffn", "d_an3"): ["", s["dec0.ffn"]],
        ("d_an3", "linear"): ["", s[f"dec{n_dec - 1}.an3"]],
        ("linear", "softmax"): ["logits", s["generator"]],
    }
    for (a, b), (name, shape) in arrow_shapes.items():
        colour = palette.RESIDUAL if a.endswith(("emb", "pe", "an1", "an2", "an3")) else (
            palette.TENSOR)  # fmt: skip
        c.arrow(a, b, [f"{name} {shape}".strip()], colour=colour)
    enc_frame = c.frame(f"N = {n_enc}", ["e_attn", "e_an1", "e_ffn", "e_an2"])
    c.frame(f"N = {n_dec}", ["d_self", "d_an1", "d_cross", "d_an2", "d_ffn", "d_an3"])
    bus = 320.0
    memory = _first(calls["encoder"][0].output)
    bottom = enc_frame.rect[3] + 25
    c.box("memory", "memory: encoder output", ex, bottom + 10, href=chapter_link(8),
          colour=palette.KEY)
    c.arrow("e_an2", "memory", [f"× {n_enc} blocks: {_shape(memory)}"], colour=palette.RESIDUAL)
    c.arrow("memory", "d_cross", ["K, V"], colour=palette.KEY,
            via=[(bus, bottom + 10), (bus, c.boxes["d_cross"].y)], segment=0, side="above")
    return c.diagram(
        "The Transformer: encoder and decoder, as in the paper's Figure 1 — each box links to "
        "its chapter",
        f"Drawn from an EncoderDecoder (d_model = {model.d_model}, "
        f"{model.decoder.layers[0].self_attn.num_heads} heads, d_ff = "
        f"{model.decoder.layers[0].feed_forward.d_ff}, {n_enc} + {n_dec} blocks, a vocabulary "
        f"of {model.tgt_vocab_size} tokens) run on a "
        f"source of {src.shape[1]} and a target of {tgt.shape[1]} token ids; shapes measured "
        "with forward hooks. Click a box to open its chapter.",
    )


# -- chapter 9: the generation loop and the KV cache -----------------------------------------


def generation_loop(model: LlamaDecoder, prompt_ids: object) -> Diagram:
    """Chapter 9's generation loop and KV cache for ``model``: it is run on ``prompt_ids``
    ``(batch, n)`` (no cache), then on the greedily chosen next token with the cache — the
    shapes of the second step are the ones every later step has."""
    _check_module(model, LlamaDecoder, "model")
    ids = _ids(prompt_ids, "prompt_ids")
    attn = model.blocks[0].attn
    with torch.no_grad():
        first = model(ids)
        next_id = greedy_choice(first.logits[:, -1])[:, None]
        with _hooks({"attn": attn, "model": model}) as calls:
            second = model(next_id, first.cache)
    config = model.config
    past_k = calls["attn"][0].inputs[1][0]
    new_k, _ = second.cache.layers[0]
    c = _Canvas()
    cx, kx = 170.0, 585.0
    y = [25 + i * _ROW for i in range(6)]
    c.box("prompt", f"prompt: {ids.shape[1]} token ids", cx, y[0], href=chapter_link(1))
    c.box("model", f"decoder: {config.num_layers} blocks", cx, y[1] + 10,
          detail=f"{config.num_heads} query heads, {config.num_kv_heads} key/value heads",
          href=api_link(LlamaDecoder), colour=palette.RESIDUAL)
    c.box("last", "last row → softmax", cx, y[2] + 20, href=chapter_link(9))
    c.box("choose", "choose: greedy, or sample", cx, y[3] + 20, href=chapter_link(9))
    c.box("stop", "end-of-sequence or max length?", cx, y[4] + 20, href=chapter_link(9),
          colour=palette.HIGHLIGHT)
    c.box("done", "stop", cx, y[5] + 10, colour=palette.HIGHLIGHT)
    c.arrow("prompt", "model", ["step 1: ids", _shape(ids)])
    c.arrow("model", "last", ["logits", _shape(second.logits)], side="right")
    c.arrow("last", "choose", ["probabilities", _shape(second.logits[0, -1])])
    c.arrow("choose", "stop", ["next token", _shape(next_id)])
    c.arrow("stop", "done", ["yes"])
    loop_x = 22.0
    c.arrow("stop", "model", ["no: append,", "read it next"], colour=palette.HIGHLIGHT,
            via=[(loop_x, y[4] + 20), (loop_x, y[1] + 10)], segment=1, side="right",
            along=0.5)  # fmt: skip
    c.box("cache", "KV cache", kx, y[1] + 10, href=api_link(type(first.cache)),
          detail=f"{config.num_layers} layers × (K, V)", colour=palette.VALUE)
    right, cache_left = c.boxes["model"].rect[2], c.boxes["cache"].rect[0]
    top, bottom = c.boxes["model"].y - 10, c.boxes["model"].y + 10
    c.arrow("model", "cache", ["new K, V per layer", _shape(new_k)], colour=palette.KEY,
            start=(right, top), end=(cache_left, top), side="above")
    c.arrow("cache", "model", ["past K, V per layer", _shape(past_k)], colour=palette.VALUE,
            start=(cache_left, bottom), end=(right, bottom), side="below")
    kib = second.cache.nbytes / 1024
    per_token = second.cache.nbytes / second.cache.length
    c.note(
        [
            f"Step 2 reads 1 token, {_shape(next_id)},",
            f"and {second.cache.length - 1} cached positions:",
            f"K per layer {_shape(past_k)}",
            f"→ {_shape(new_k)} after it.",
            f"{config.num_heads // config.num_kv_heads} query heads share each K/V head.",
            f"Cache now: {kib:,.0f} KiB,",
            f"{per_token / 1024:,.1f} KiB per token.",
        ],
        kx - 150, y[2] + 30, palette.INK,
    )  # fmt: skip
    return c.diagram(
        "Generating text: predict, choose, append, repeat until end of sequence, with a KV cache",
        f"LlamaDecoder with {config.num_layers} layers, {config.num_heads} query heads and "
        f"{config.num_kv_heads} key/value heads (d_model = {config.d_model}), run on a "
        f"{ids.shape[1]}-token prompt and then on the next token with the cache; shapes "
        "measured with forward hooks in the second step.",
    )


# -- chapter 10: where the n² lives -----------------------------------------------------------


def attention_cost(mha: MultiHeadAttention, lengths: Sequence[int] = (512, 1024)) -> Diagram:
    """Chapter 10's cost picture: ``mha`` run on ``lengths[0]`` and ``lengths[1]`` tokens;
    each tensor's shape at both lengths and how many times it grew, the ones that grow with
    :math:`n^2` (scores, weights) marked."""
    _check_module(mha, MultiHeadAttention, "mha")
    if len(lengths) != 2 or not all(isinstance(n, int) and n > 0 for n in lengths):
        raise ValueError(f"lengths must be two positive integers, got {lengths!r}")
    if lengths[1] <= lengths[0]:
        raise ValueError(f"lengths must increase, got {lengths!r}")
    generator = torch.Generator().manual_seed(0)
    runs = [
        multihead_steps(mha, torch.randn(1, n, mha.d_model, generator=generator))
        for n in lengths
    ]
    growth = lengths[1] / lengths[0]

    def label(name: str, step: str) -> list[str]:
        small, large = runs[0][step], runs[1][step]
        ratio = large.numel() / small.numel()
        power = "n²" if math.isclose(ratio, growth**2) else "n"
        return [f"{name}: grows like {power} (×{ratio:g})", f"{_shape(small)} → {_shape(large)}"]

    def colour(step: str) -> str:
        ratio = runs[1][step].numel() / runs[0][step].numel()
        return palette.HIGHLIGHT if math.isclose(ratio, growth**2) else palette.TENSOR

    c = _Canvas()
    cx = 120.0
    y = [25 + i * _ROW for i in range(7)]
    link = api_link(MultiHeadAttention)
    c.box("x", "X: n token vectors", cx, y[0], colour=palette.RESIDUAL)
    c.box("proj", "× W^Q, W^K, W^V, split", cx, y[1], href=link)
    c.box("scores", "scores Q_i K_iᵀ / √d", cx, y[2], href=chapter_link(10),
          colour=palette.HIGHLIGHT)
    c.box("softmax", "softmax", cx, y[3], href=chapter_link(3), colour=palette.HIGHLIGHT)
    c.box("sum", "weights · V_i", cx, y[4], href=link)
    c.box("concat", "Concat, × W^O", cx, y[5], href=link)
    c.box("out", "output", cx, y[6], colour=palette.RESIDUAL)
    c.arrow("x", "proj", label("X", "X"), colour=colour("X"))
    c.arrow("proj", "scores", label("Q_i (K_i alike)", "Q_i"), colour=colour("Q_i"))
    c.arrow("scores", "softmax", label("scores", "scores"), colour=colour("scores"))
    c.arrow("softmax", "sum", label("weights", "weights"), colour=colour("weights"))
    c.arrow("sum", "concat", label("head_i", "head_i"), colour=colour("head_i"))
    c.arrow("concat", "out", label("output", "output"), colour=colour("output"))
    big = runs[1]["weights"]
    c.note(
        [
            f"At n = {lengths[1]} the weights alone:",
            f"{big.numel():,} numbers, {big.numel() * big.element_size() / 2**20:,.0f} MiB",
            "(float32, one layer, one sentence)",
        ],
        415, y[3] - 22, palette.HIGHLIGHT,
    )  # fmt: skip
    return c.diagram(
        "Where the n² lives: the score and weight matrices, next to the parts that grow with n",
        f"MultiHeadAttention(d_model={mha.d_model}, num_heads={mha.num_heads}) run on "
        f"{lengths[0]} and on {lengths[1]} tokens; each arrow gives the measured shape at both "
        "lengths and how many times more numbers it holds. Red: the n × n matrices.",
    )
