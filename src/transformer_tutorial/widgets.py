"""Explorers: figures that depend on a few controls, declared once, drawn in the browser.

An :class:`Explorer` is a title, a few :class:`Control` s (each with a finite set of values)
and a pure function ``frame(**values) -> dict`` returning the *data* of the figure for those
values: panels built with :func:`heatmap`, :func:`head_grid`, :func:`bars`, :func:`lines` and
:func:`histogram`, gathered by :func:`frame`. One small ES module, ``assets/explorer.js``,
draws that data as SVG (the contract is ``assets/EXPLORER_DATA.md``). Displaying an explorer
shows

* in a live kernel (JupyterLab, VS Code, Colab): an anywidget holding the frames of the whole
  control grid, so moving a slider redraws in the browser without a trip to the kernel; a
  sentence the reader types goes to the kernel, which sends back its frames;
* in the built book (no kernel): the same module inlined in the page next to the same data.

The book build selects the second form by setting :data:`STATIC_ENV_VAR` (the book's Sphinx
extension does), so notebook authors never pass a flag.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from numbers import Real
from typing import Any

import anywidget
import numpy as np
import traitlets

from transformer_tutorial import checks

__all__ = [
    "STATIC_ENV_VAR",
    "Control",
    "Explorer",
    "ExplorerWidget",
    "bars",
    "frame",
    "head_grid",
    "heatmap",
    "histogram",
    "lines",
    "renderer_source",
    "strongest_link",
]

STATIC_ENV_VAR = "TRANSFORMER_TUTORIAL_STATIC"
ATTENTION_HOVER = "'{row}' → '{col}': {value}"
# The most decimals a panel shows (JavaScript's toFixed takes up to 100; more is noise), and
# the most bins of a histogram.
MAX_DIGITS = 10
MAX_BINS = 1000


@cache
def renderer_source() -> str:
    """The ES module that draws every explorer (``assets/explorer.js``)."""
    source = resources.files("transformer_tutorial").joinpath("assets/explorer.js").read_text(
        encoding="utf-8"
    )
    if "</script" in source.lower():
        raise RuntimeError("explorer.js must not contain '</script': it is inlined in pages")
    return source


# -- figure data ---------------------------------------------------------------------------


def _numbers(values: Any, name: str, ndim: int) -> list:
    """``values`` as nested lists of floats rounded to 4 significant digits (finite only)."""
    expected = {1: "(n,)", 2: "(rows, cols)", 3: "(heads, rows, cols)"}[ndim]
    array = np.asarray(checks.float_array(values, name, expected, ndim=ndim), dtype=float)
    magnitude = np.floor(np.log10(np.abs(array), out=np.zeros_like(array), where=array != 0))
    decimals = 3 - magnitude
    # Multiplying by 10**d (exact for d >= 0) and dividing back gives the shortest JSON text.
    # Below about 1e-305 the scale overflows: such values are kept as they are.
    with np.errstate(over="ignore", invalid="ignore"):
        scale = 10.0 ** np.abs(decimals)
        rounded = np.where(decimals >= 0, np.round(array * scale) / scale,
                           np.round(array / scale) * scale)  # fmt: skip
    return np.where(np.isfinite(rounded), rounded, array).tolist()


def _texts(**texts: Any) -> dict[str, str]:
    """Each keyword argument checked to be a string (titles, hover templates)."""
    return {name: checks.text(value, name, allow_empty=True) for name, value in texts.items()}


def _bound(value: Any, name: str) -> float | None:
    """An optional axis bound: ``None`` or a finite number (as a ``float``)."""
    return None if value is None else checks.finite_number(value, name)


def _digits(digits: Any) -> int:
    return checks.int_in_range(digits, "digits", 0, MAX_DIGITS)


def _heatmap_panel(
    numbers: list, rows: list[str], cols: list[str], *, title: str = "",
    vmin: float = 0.0, vmax: float = 1.0, colormap: str = "attention",
    row_title: str = "query: the token that attends", col_title: str = "key: the token attended to",
    digits: int = 2, hover: str = ATTENTION_HOVER, annotate: bool | None = None,
) -> dict[str, Any]:
    """The heatmap panel of already checked and rounded ``numbers`` (see :func:`heatmap`)."""
    return {
        "kind": "heatmap", "title": title, "rows": rows, "cols": cols, "values": numbers,
        "vmin": vmin, "vmax": vmax, "colormap": colormap, "row_title": row_title,
        "col_title": col_title, "digits": digits, "hover": hover,
        "annotate": max(len(rows), len(cols)) <= 10 if annotate is None else bool(annotate),
    }


def heatmap(
    values: Any,
    rows: Sequence[Any],
    cols: Sequence[Any],
    *,
    title: str = "",
    vmin: float | None = None,
    vmax: float | None = None,
    colormap: str = "attention",
    row_title: str = "query: the token that attends",
    col_title: str = "key: the token attended to",
    annotate: bool | None = None,
    digits: int = 2,
    hover: str = ATTENTION_HOVER,
    mask: Any = None,
) -> dict[str, Any]:
    """A heatmap panel of ``values`` ``(len(rows), len(cols))``. ``colormap`` is
    ``"attention"`` (sequential, default range 0–1) or ``"diverging"`` (centred on 0).
    ``mask`` ``(rows, cols)``: True where a cell is masked out. Values are written in the
    cells when ``annotate`` (default: both sides at most 10)."""
    checks.one_of(colormap, "colormap", ("attention", "diverging"))
    texts = _texts(title=title, row_title=row_title, col_title=col_title, hover=hover)
    title, row_title, col_title, hover = texts.values()
    vmin, vmax, digits = _bound(vmin, "vmin"), _bound(vmax, "vmax"), _digits(digits)
    if annotate is not None:
        checks.instance_of(annotate, "annotate", (bool, np.bool_))
    array = np.asarray(checks.float_array(values, "values", "(rows, cols)", ndim=2), dtype=float)
    numbers = _numbers(array, "values", 2)
    rows = checks.labels(rows, "rows", array.shape[0])
    cols = checks.labels(cols, "cols", array.shape[1])
    if colormap == "attention":
        low, high = 0.0 if vmin is None else vmin, 1.0 if vmax is None else vmax
    else:
        bound = float(np.abs(array).max()) if array.size else 1.0
        low, high = -bound if vmin is None else vmin, bound if vmax is None else vmax
    panel = _heatmap_panel(numbers, rows, cols, title=title, vmin=low, vmax=high,
                           colormap=colormap, row_title=row_title, col_title=col_title,
                           digits=digits, hover=hover, annotate=annotate)  # fmt: skip
    if mask is not None:
        mask = checks.bool_array(mask, "mask", "of booleans (True: masked out)")
        if mask.shape != array.shape:
            raise ValueError(f"mask must have the shape of values {array.shape}, got {mask.shape}")
        panel["mask"] = mask.tolist()
    return panel


def head_grid(
    weights: Any,
    tokens: Sequence[Any],
    key_tokens: Sequence[Any] | None = None,
    *,
    title: str = "",
    head_names: Sequence[str] | None = None,
    columns: int = 2,
    per_page: int | None = 4,
    page_label: str = "heads",
) -> dict[str, Any]:
    """A grid panel: one attention heatmap per head of ``weights`` ``(heads, q_len, k_len)``,
    ``per_page`` at a time (a selector picks which), ``columns`` side by side."""
    weights = checks.float_array(weights, "weights", "(heads, q_len, k_len)", ndim=3)
    weights = np.asarray(weights, dtype=float)
    title, page_label = _texts(title=title, page_label=page_label).values()
    columns = checks.positive_int(columns, "columns")
    per_page = None if per_page is None else checks.positive_int(per_page, "per_page")
    tokens = checks.labels(tokens, "tokens", weights.shape[1])
    keys = checks.labels(
        tokens if key_tokens is None else key_tokens,
        "tokens" if key_tokens is None else "key_tokens",
        weights.shape[2],
    )
    names = [f"head {h}" for h in range(len(weights))] if head_names is None else head_names
    names = checks.labels(names, "head_names", len(weights))
    # All heads rounded in one pass (a typed sentence in chapter 7 builds 72 of these).
    numbers = _numbers(weights, "weights", 3)
    items = [
        _heatmap_panel(values, tokens, keys, title=name, annotate=False)
        for values, name in zip(numbers, names, strict=True)
    ]
    if per_page is not None and per_page >= len(items):
        per_page = None
    return {"kind": "grid", "title": str(title), "items": items, "columns": columns,
            "per_page": per_page, "page_label": page_label}  # fmt: skip


def bars(
    values: Any,
    labels: Sequence[Any],
    *,
    title: str = "",
    vmin: float | None = None,
    vmax: float | None = None,
    orientation: str = "horizontal",
    value_title: str = "",
    label_title: str = "",
    colors: str = "single",
    highlight: Sequence[int] = (),
    digits: int = 2,
    hover: str = "'{label}': {value}",
) -> dict[str, Any]:
    """A bar chart panel: one bar per label. ``orientation`` ``"horizontal"`` (rankings) or
    ``"vertical"`` (feature vectors); ``colors`` ``"single"`` or ``"sign"``."""
    checks.one_of(orientation, "orientation", ("horizontal", "vertical"))
    checks.one_of(colors, "colors", ("single", "sign"))
    texts = _texts(title=title, value_title=value_title, label_title=label_title, hover=hover)
    title, value_title, label_title, hover = texts.values()
    vmin, vmax, digits = _bound(vmin, "vmin"), _bound(vmax, "vmax"), _digits(digits)
    numbers = _numbers(values, "values", 1)
    labels = checks.labels(labels, "labels", len(numbers))
    highlight = [
        checks.int_in_range(i, "highlight", 0, len(numbers) - 1)
        for i in checks.int_sequence(highlight, "highlight")
    ]
    low = min([0.0, *numbers]) if vmin is None else vmin
    high = max([0.0, *numbers]) if vmax is None else vmax
    return {
        "kind": "bars", "title": str(title), "labels": labels, "values": numbers,
        "vmin": low, "vmax": high, "orientation": orientation, "value_title": value_title,
        "label_title": label_title, "colors": colors, "highlight": highlight,
        "digits": digits, "hover": hover,
    }  # fmt: skip


def lines(
    x: Any,
    series: dict[str, Any],
    *,
    title: str = "",
    x_title: str = "",
    y_title: str = "",
    ymin: float | None = None,
    ymax: float | None = None,
    styles: dict[str, str] | None = None,
    xmarker: float | None = None,
    digits: int = 3,
) -> dict[str, Any]:
    """A line chart panel: ``series`` maps a name to its ``y`` values (same length as ``x``);
    ``styles`` maps a name to ``"solid"`` (default), ``"dashed"`` or ``"points"``."""
    xs = _numbers(x, "x", 1)
    title, x_title, y_title = _texts(title=title, x_title=x_title, y_title=y_title).values()
    ymin, ymax, digits = _bound(ymin, "ymin"), _bound(ymax, "ymax"), _digits(digits)
    xmarker = _bound(xmarker, "xmarker")
    checks.instance_of(series, "series", Mapping)
    if not series:
        raise ValueError("series must map at least one name to its y values")
    styles = {} if styles is None else checks.instance_of(styles, "styles", Mapping)
    drawn = []
    for name, y in series.items():
        ys = _numbers(y, f"series {name!r}", 1)
        if len(ys) != len(xs):
            raise ValueError(f"series {name!r} has {len(ys)} values for {len(xs)} x values")
        style = styles.get(name, "solid")
        if style not in ("solid", "dashed", "points"):
            raise ValueError(f"style of {name!r} must be solid, dashed or points, got {style!r}")
        drawn.append({"name": str(name), "y": ys, "style": style})
    every = [v for s in drawn for v in s["y"]]
    panel = {
        "kind": "lines", "title": str(title), "x": xs, "series": drawn, "x_title": x_title,
        "y_title": y_title, "ymin": min(every) if ymin is None else ymin,
        "ymax": max(every) if ymax is None else ymax, "digits": digits,
    }  # fmt: skip
    if xmarker is not None:
        panel["xmarker"] = float(xmarker)
    return panel


def histogram(
    samples: Any,
    *,
    bins: int,
    value_range: tuple[float, float],
    title: str = "",
    x_title: str = "",
    y_title: str = "count",
) -> dict[str, Any]:
    """A histogram panel of ``samples`` in ``bins`` equal bins over ``value_range``
    (samples outside it are counted in the first or last bin)."""
    samples = checks.float_array(samples, "samples", "(...)", min_ndim=1)
    bins = checks.int_in_range(bins, "bins", 1, MAX_BINS)
    if (
        isinstance(value_range, str | bytes)
        or not isinstance(value_range, Sequence | np.ndarray)
        or len(value_range) != 2
    ):
        raise ValueError(f"value_range must be a pair (low, high), got {value_range!r}")
    low, high = (checks.finite_number(v, "value_range") for v in value_range)
    if not low < high or not math.isfinite(high - low):
        raise ValueError(f"value_range must have low < high, a finite width apart: {value_range}")
    title, x_title, y_title = _texts(title=title, x_title=x_title, y_title=y_title).values()
    samples = np.clip(np.asarray(samples, dtype=float).ravel(), *value_range)
    counts, edges = np.histogram(samples, bins=bins, range=value_range)
    return {"kind": "histogram", "title": str(title), "edges": _numbers(edges, "edges", 1),
            "counts": counts.tolist(), "x_title": x_title, "y_title": y_title,
            "xmin": float(value_range[0]), "xmax": float(value_range[1])}  # fmt: skip


def frame(
    *panels: dict[str, Any],
    title: str = "",
    description: str,
    widths: Sequence[float] | None = None,
) -> dict[str, Any]:
    """One state of an explorer: ``panels`` side by side, a ``title`` line and a one-sentence
    ``description`` computed from the data (read to screen-reader users when it changes)."""
    if not panels:
        raise ValueError("a frame needs at least one panel: frame(panel, ..., description=...)")
    for i, panel in enumerate(panels):
        if not isinstance(panel, dict) or "kind" not in panel:
            raise ValueError(f"panel {i} of the frame must be a panel dict (from heatmap, bars, "
                             f"...), got {type(panel).__name__}; pass title= and description= "
                             "by keyword")  # fmt: skip
    title, description = _texts(title=title, description=description).values()
    result = {"title": title, "description": description, "panels": list(panels)}
    if widths is not None:
        if isinstance(widths, str | bytes) or not isinstance(widths, Sequence | np.ndarray):
            raise ValueError(f"widths must be a sequence of numbers, got {type(widths).__name__}")
        if len(widths) != len(panels):
            raise ValueError(f"widths needs {len(panels)} numbers, got {len(widths)}")
        result["widths"] = [checks.positive_number(w, "widths") for w in widths]
    return result


def strongest_link(weights: np.ndarray, rows: list[str], cols: list[str]) -> str:
    """``'it' → 'cat' (0.71)``: the largest entry of ``weights`` ``(rows, cols)``."""
    try:
        weights = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("weights must be an array (rows, cols) of numbers") from None
    if weights.ndim != 2 or 0 in weights.shape or not np.isfinite(weights).all():
        raise ValueError(f"weights must be a finite array (rows, cols), got shape {weights.shape}")
    for labels, name, size in ((rows, "rows", weights.shape[0]), (cols, "cols", weights.shape[1])):
        if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) != size:
            raise ValueError(f"{name} must be a list of {size} labels, got {labels!r}")
    q, k = np.unravel_index(int(np.argmax(weights)), weights.shape)
    return f"'{rows[q]}' → '{cols[k]}' ({weights[q, k]:.2f})"


# -- declaration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Control:
    """One control: the keyword ``name`` passed to the frame function and its ``values``.

    Numeric values show as a slider, anything else as a dropdown. With ``free_text=True`` a
    live kernel also offers a text box (the reader types any sentence); ``values`` are the
    examples offered, which are all the static book can show.
    """

    name: str
    values: tuple[Any, ...]
    label: str = ""
    default: Any = None
    free_text: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"control name must be a Python identifier, got {self.name!r}")
        values = tuple(checks.instances(self.values, f"values of control {self.name!r}",
                                        (str, Real)))  # fmt: skip
        if not values:
            raise ValueError(f"control {self.name!r} needs at least one value")
        if any(isinstance(v, Real) and not math.isfinite(v) for v in values):
            raise ValueError(f"values of control {self.name!r} must be finite, got {values}")
        if len(set(values)) != len(values):
            raise ValueError(f"control {self.name!r} has repeated values")
        checks.text(self.label, "label", allow_empty=True)
        checks.instance_of(self.free_text, "free_text", bool)
        default = values[0] if self.default is None else self.default
        if not isinstance(default, str | Real) or default not in values:
            raise ValueError(f"default of {self.name!r} must be one of {values}, got {default!r}")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "label", self.label or self.name)

    @property
    def kind(self) -> str:
        """``"text"``, ``"slider"`` (all values numeric) or ``"select"``."""
        if self.free_text:
            return "text"
        numeric = all(isinstance(v, Real) and not isinstance(v, bool) for v in self.values)
        return "slider" if numeric else "select"

    def format(self, value: Any) -> str:
        """How a value is shown next to the control."""
        return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Explorer:
    """A figure that depends on a few controls, declared once (see the module docstring).

    ``frame`` must be pure: the same control values give the same data. It may raise
    ``ValueError`` for values it cannot show (e.g. an empty sentence); the reader then sees
    the message instead of the figure, never a traceback. ``browser_model`` names a model that
    ``explorer.js`` runs in the built book's page to answer sentences typed into a ``text``
    control there (``{"name": ..., "site_root": ..., "file_message": ...}``).
    """

    title: str
    controls: tuple[Control, ...]
    frame: Callable[..., dict[str, Any]]
    caption: str = ""
    browser_model: dict[str, str] | None = None

    def __post_init__(self) -> None:
        checks.text(self.title, "title", allow_empty=True)
        checks.text(self.caption, "caption", allow_empty=True)
        checks.function(self.frame, "frame")
        if self.browser_model is not None:
            checks.instance_of(self.browser_model, "browser_model", Mapping)
            checks.strings(list(self.browser_model.values()), "browser_model's values")
        controls = tuple(checks.instances(self.controls, "controls", Control))
        if not controls:
            raise ValueError("an explorer needs at least one control")
        names = [c.name for c in controls]
        if len(set(names)) != len(names):
            raise ValueError(f"control names must be unique, got {names}")
        object.__setattr__(self, "controls", controls)

    @property
    def size(self) -> int:
        """How many frames the control grid holds."""
        return math.prod(len(c.values) for c in self.controls)

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
            if control.free_text:
                if not isinstance(value, str):
                    raise TypeError(f"{control.name} must be a string, got {value!r}")
            elif value not in control.values:
                raise ValueError(
                    f"{control.name} must be one of {list(control.values)}, got {value!r}"
                )
            values[control.name] = value
        return values

    def data(self, **values: Any) -> dict[str, Any]:
        """The frame (figure data) for these control values (defaults for the others)."""
        return self.frame(**self.values(**values))

    def _frame_or_error(self, values: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.frame(**values)
        except ValueError as err:
            return {"error": str(err)}

    def frames(
        self, fixed: dict[int, tuple[int, Any]] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Every frame of the control grid, keyed by the value indices joined by ``","``.
        ``fixed`` maps a control's position to ``(index, value)``: only frames with that
        value there (how a typed sentence gets its frames)."""
        fixed = fixed or {}
        choices = [
            [fixed[i]] if i in fixed else list(enumerate(c.values))
            for i, c in enumerate(self.controls)
        ]
        result = {}
        for combo in itertools.product(*choices):
            key = ",".join(str(index) for index, _ in combo)
            values = {c.name: v for c, (_, v) in zip(self.controls, combo, strict=True)}
            result[key] = self._frame_or_error(values)
        return result

    def spec(self) -> dict[str, Any]:
        """The explorer as data for ``explorer.js`` (``assets/EXPLORER_DATA.md``)."""
        controls = [
            {"name": c.name, "label": c.label, "kind": c.kind,
             "labels": [c.format(v) for v in c.values], "index": c.values.index(c.default)}
            for c in self.controls
        ]  # fmt: skip
        spec = {"title": self.title, "caption": self.caption, "controls": controls,
                "frames": self.frames()}  # fmt: skip
        if self.browser_model and os.environ.get(STATIC_ENV_VAR):  # only the book has the model
            spec["browser_model"] = dict(self.browser_model)
        return spec

    def describe(self, **values: Any) -> str:
        """Plain text: the title and the current frame's description (or its error)."""
        shown = self._frame_or_error(self.values(**values))
        return f"{self.title}: {shown.get('description') or shown.get('error', '')}"

    def static_html(self) -> str:
        """The explorer for a page without a kernel: its data and the inlined renderer."""
        data = _json_for_script(self.spec())
        return (
            '<div class="tt-explorer">'
            f'<script type="application/json" class="tt-explorer-data">{data}</script>'
            f"<noscript><p>{html.escape(self.describe())}</p></noscript>"
            f'<script type="module">{renderer_source()}\nmountStatic();</script></div>'
        )

    def widget(self) -> ExplorerWidget:
        """The live form: an anywidget that holds the whole grid's frames."""
        return ExplorerWidget(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> Any:
        """The static page in the book build; elsewhere the live widget, with the static page
        as the ``text/html`` fallback for viewers that cannot run widgets."""
        static = {"text/html": self.static_html(), "text/plain": self.describe()}
        if os.environ.get(STATIC_ENV_VAR):
            return static
        bundle, metadata = self.widget()._repr_mimebundle_()
        return {**bundle, **static}, metadata


def _json_for_script(obj: object) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no HTML)."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class ExplorerWidget(anywidget.AnyWidget):
    """An explorer in a live kernel: ``spec`` holds the frames of the whole control grid; a
    sentence typed into a ``text`` control arrives as a message and is answered with its
    frames (``assets/EXPLORER_DATA.md``)."""

    spec = traitlets.Dict().tag(sync=True)

    def __init__(self, explorer: Explorer) -> None:
        checks.instance_of(explorer, "explorer", Explorer)
        super().__init__(_esm=renderer_source(), spec=explorer.spec())
        self.explorer = explorer
        self._values = [list(c.values) for c in explorer.controls]
        self.on_msg(self._on_message)

    def answer(self, control: int | str, text: str) -> dict[str, Any]:
        """The reply to a sentence typed into a ``text`` control (its name or position)."""
        controls = self.explorer.controls
        names = [c.name for c in controls]
        position = names.index(control) if control in names else control
        if not (isinstance(position, int) and 0 <= position < len(controls)) or not (
            controls[position].free_text
        ):
            return {"type": "error", "control": control, "text": str(text),
                    "message": f"control {control!r} does not take text"}  # fmt: skip
        text = str(text).strip()
        values = self._values[position]
        if text not in values:
            values.append(text)
        index = values.index(text)
        frames = self.explorer.frames(fixed={position: (index, text)})
        errors = {f["error"] for f in frames.values() if "error" in f}
        if len(errors) == 1 and all("error" in f for f in frames.values()):
            return {"type": "error", "control": control, "text": text, "message": errors.pop()}
        return {"type": "frames", "control": control, "text": text, "index": index,
                "frames": frames}  # fmt: skip

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "text":
            reply = self.answer(content.get("control"), content.get("text", ""))
            self.send(json.loads(json.dumps(reply, allow_nan=False)))
