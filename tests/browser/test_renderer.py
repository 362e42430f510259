"""The explorer renderer (`assets/explorer.js`) in Chromium, on hand-made specs.

No book build needed: each test writes harness pages into a temporary folder served on
127.0.0.1, in the same static form the book uses (spec in a ``script.tt-explorer-data``, the
module inlined and followed by ``mountStatic();``), plus one live page where a fake widget model
answers ``send`` like the kernel would. Every other request is blocked and recorded.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import math
import random
import re
import threading
from pathlib import Path

import pytest

SOURCE = (
    Path(__file__).resolve().parents[2] / "src" / "transformer_tutorial" / "assets" / "explorer.js"
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


XSS = "<img src=x onerror=alert(1)>"
TEX = "$$x$$"
LONG = "extraordinarily-long-token"
TOKENS = ["the", XSS, TEX, LONG, "cat"]


# ---------- specs ----------


def _heatmap(rows, cols, values, title="", **extra) -> dict:
    return {
        "kind": "heatmap",
        "title": title,
        "rows": rows,
        "cols": cols,
        "values": values,
        "vmin": 0.0,
        "vmax": 1.0,
        "colormap": "attention",
        "row_title": "query",
        "col_title": "key",
        "annotate": False,
        "digits": 2,
        "hover": "'{row}' → '{col}': {value}",
        **extra,
    }


def _peaked(n: int, m: int, peak: tuple[int, int], seed: int) -> list[list[float]]:
    """An n × m matrix of small random values with its maximum 0.9 at ``peak``."""
    rng = random.Random(seed)
    values = [[round(rng.uniform(0.0, 0.5), 4) for _ in range(m)] for _ in range(n)]
    values[peak[0]][peak[1]] = 0.9
    return values


def heatmap_spec() -> dict:
    """Slider × select over a causal 5 × 5 map with annotations; one setting is an error."""
    n = len(TOKENS)
    mask = [[j > i for j in range(n)] for i in range(n)]
    frames = {}
    for layer in range(3):
        for head in range(2):
            peak = (layer + head + 1, layer)  # below the diagonal: never masked
            values = _peaked(n, n, peak, seed=10 * layer + head)
            values = [
                [0.0 if mask[i][j] else v for j, v in enumerate(row)]
                for i, row in enumerate(values)
            ]
            panel = _heatmap(
                TOKENS, TOKENS, values, f"layer {layer}, head {head}", annotate=True, mask=mask
            )
            frames[f"{layer},{head}"] = {
                "title": f"{XSS} frame",
                "description": f"strongest {peak}",
                "panels": [panel],
            }
    frames["2,1"] = {"error": f"too long: {XSS}"}
    return {
        "title": f"Attention {TEX}",
        "caption": f"caption {XSS}",
        "controls": [
            {
                "name": "layer",
                "label": "layer",
                "kind": "slider",
                "labels": ["0", "1", "2"],
                "index": 0,
            },
            {"name": "head", "label": "head", "kind": "select", "labels": ["h0", "h1"], "index": 0},
        ],
        "frames": frames,
    }


def grid_spec(n: int = 13, heads: int = 12) -> dict:
    """Two layers of a 12-head grid of n × n maps, four heads per page."""
    tokens = [f"tok{i}" for i in range(n)]
    frames = {}
    for layer in range(2):
        items = [
            _heatmap(
                tokens, tokens, _peaked(n, n, ((h + layer) % n, (2 * h) % n), seed=h), f"head {h}"
            )
            for h in range(heads)
        ]
        grid = {
            "kind": "grid",
            "title": f"layer {layer}",
            "items": items,
            "columns": 2,
            "per_page": 4,
            "page_label": "heads",
        }
        frames[str(layer)] = {"title": "", "description": f"layer {layer}", "panels": [grid]}
    return {
        "title": "All heads",
        "caption": "",
        "controls": [
            {"name": "layer", "label": "layer", "kind": "slider", "labels": ["0", "1"], "index": 0}
        ],
        "frames": frames,
    }


def bars_spec() -> dict:
    """A horizontal ranking and a vertical signed vector side by side."""
    frames = {}
    for k in range(3):
        ranking = [round(0.9 - 0.1 * i - (0.05 * k if i == 0 else 0.0), 4) for i in range(6)]
        ranking[k + 1] = 0.95  # the top bar moves with the slider
        vector = [round(math.sin(0.7 * i + k), 4) for i in range(8)]
        frames[str(k)] = {
            "title": "",
            "description": f"step {k}",
            "widths": [1, 1],
            "panels": [
                {
                    "kind": "bars",
                    "title": "next token",
                    "labels": [f"w{i}" for i in range(5)] + [XSS],
                    "values": ranking,
                    "vmin": 0,
                    "vmax": 1,
                    "orientation": "horizontal",
                    "value_title": "probability",
                    "label_title": "token",
                    "colors": "single",
                    "highlight": [k + 1],
                    "digits": 2,
                    "hover": "{label}: {value}",
                },
                {
                    "kind": "bars",
                    "title": "features",
                    "labels": [str(i) for i in range(8)],
                    "values": vector,
                    "vmin": -1,
                    "vmax": 1,
                    "orientation": "vertical",
                    "value_title": "value",
                    "label_title": "dimension",
                    "colors": "sign",
                    "highlight": [],
                    "digits": 3,
                    "hover": "dim {label} = {value}",
                },
            ],
        }
    return {
        "title": "Bars",
        "caption": "",
        "controls": [
            {
                "name": "step",
                "label": "step",
                "kind": "slider",
                "labels": ["a", "b", "c"],
                "index": 0,
            }
        ],
        "frames": frames,
    }


def lines_spec() -> dict:
    xs = [0, 1, 2, 3, 4, 5, 6, 7, 8]
    frames = {}
    for k in range(3):
        frames[str(k)] = {
            "title": "",
            "description": f"marker at {2 * k + 1}",
            "panels": [
                {
                    "kind": "lines",
                    "title": "loss",
                    "x": xs,
                    "x_title": "step",
                    "y_title": "loss",
                    "ymin": 0,
                    "ymax": 3,
                    "xmarker": 2 * k + 1,
                    "digits": 2,
                    "series": [
                        {
                            "name": "train",
                            "y": [round(3 / (1 + x), 4) for x in xs],
                            "style": "solid",
                        },
                        {
                            "name": "valid",
                            "y": [round(3 / (1 + x) + 0.2 * k, 4) for x in xs],
                            "style": "dashed",
                        },
                        {"name": "probe", "y": [1.5 for _ in xs], "style": "points"},
                    ],
                }
            ],
        }
    return {
        "title": "Lines",
        "caption": "",
        "controls": [
            {
                "name": "when",
                "label": "marker",
                "kind": "slider",
                "labels": ["1", "3", "5"],
                "index": 0,
            }
        ],
        "frames": frames,
    }


def histogram_spec() -> dict:
    frames = {}
    for k in range(2):
        counts = [3, 8, 15, 9, 2] if k == 0 else [1, 2, 4, 12, 20]
        frames[str(k)] = {
            "title": "",
            "description": f"set {k}",
            "panels": [
                {
                    "kind": "histogram",
                    "title": "scores",
                    "edges": [0, 0.2, 0.4, 0.6, 0.8, 1.0],
                    "counts": counts,
                    "x_title": "score",
                    "y_title": "count",
                    "xmin": 0,
                    "xmax": 1,
                }
            ],
        }
    return {
        "title": "Histogram",
        "caption": "",
        "controls": [
            {
                "name": "set",
                "label": "set",
                "kind": "select",
                "labels": ["before", "after"],
                "index": 0,
            }
        ],
        "frames": frames,
    }


def text_frame(sentence: str) -> dict:
    words = sentence.split()
    values = [[round(1.0 / len(words), 4)] * len(words) for _ in words]
    values[-1][0] = 0.99
    return {
        "title": sentence,
        "description": f"{len(words)} words",
        "panels": [_heatmap(words, words, values, "attention")],
    }


def text_spec() -> dict:
    examples = ["the cat sat", "a dog ran far"]
    return {
        "title": "Your sentence",
        "caption": "",
        "controls": [
            {
                "name": "sentence",
                "label": "sentence",
                "kind": "text",
                "labels": examples,
                "index": 0,
            }
        ],
        "frames": {str(i): text_frame(s) for i, s in enumerate(examples)},
    }


# ---------- harness pages ----------


def _json(spec: dict) -> str:
    text = json.dumps(spec, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def static_explorer(spec: dict) -> str:
    return (
        f'<div class="tt-explorer"><script type="application/json" class="tt-explorer-data">'
        f'{_json(spec)}</script><script type="module">{SOURCE.read_text(encoding="utf-8")}\n'
        "mountStatic();</script></div>"
    )


def page_html(body: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        '<title>harness</title></head><body><main style="width:690px;margin:0 auto">'
        f"{body}</main></body></html>"
    )


LIVE = """
<div id="live"></div>
<script type="application/json" id="spec">SPEC</script>
<script type="module">
import widget from "./explorer.js";
let spec = JSON.parse(document.getElementById("spec").textContent);
const handlers = [], specHandlers = [];
let next = spec.controls[0].labels.length;
window.__sent = [];
window.__ttRenderLog = [];
// The kernel replacing the whole spec (a trait change).
window.__setSpec = (s) => { spec = s; specHandlers.forEach((h) => h()); };
const model = {
  get: (k) => (k === "spec" ? spec : undefined),
  on: (event, cb) => (event === "msg:custom" ? handlers : specHandlers).push(cb),
  off() {},
  send(msg) {
    window.__sent.push(msg);
    // The "kernel" answers when the test calls window.__answer().
    window.__answer = () => {
      const answer = msg.text === "boom"
        ? {type: "error", control: msg.control, text: msg.text, message: "sentence too long"}
        : {type: "frames", control: msg.control, text: msg.text, index: next,
           frames: {[String(next++)]: window.textFrame(msg.text)}};
      handlers.forEach((h) => h(answer, []));
    };
  },
};
window.textFrame = (sentence) => {
  const words = sentence.split(/\\s+/), n = words.length;
  const values = words.map(() => words.map(() => Math.round(10000 / n) / 10000));
  values[n - 1][0] = 0.99;
  return {title: sentence, description: `${n} words`, panels: [{kind: "heatmap", title: "attention",
    rows: words, cols: words, values, vmin: 0, vmax: 1, colormap: "attention", row_title: "query",
    col_title: "key", annotate: false, digits: 2, hover: "'{row}' → '{col}': {value}"}]};
};
widget.render({model, el: document.getElementById("live")});
</script>
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """A temporary folder served on 127.0.0.1 holding the harness pages; yields its URL."""
    root = tmp_path_factory.mktemp("renderer")
    (root / "explorer.js").write_text(SOURCE.read_text(encoding="utf-8"), encoding="utf-8")
    pages = {
        "heatmap": [heatmap_spec()],
        "grid": [grid_spec()],
        "bars": [bars_spec()],
        "lines": [lines_spec()],
        "histogram": [histogram_spec()],
        "text": [text_spec()],
        "two": [heatmap_spec(), bars_spec()],
        "all": [
            heatmap_spec(),
            grid_spec(),
            bars_spec(),
            lines_spec(),
            histogram_spec(),
            text_spec(),
        ],
    }
    for name, specs in pages.items():
        (root / f"{name}.html").write_text(
            page_html("".join(map(static_explorer, specs))), encoding="utf-8"
        )
    (root / "live.html").write_text(
        page_html(LIVE.replace("SPEC", _json(text_spec()))), encoding="utf-8"
    )
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class Visit:
    """One harness page in a fresh context: its console errors, dialogs and blocked requests."""

    def __init__(self, browser, base: str, name: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.blocked: list[str] = []
        page = self.page = self.context.new_page()

        def route(r):
            if r.request.url.startswith(base):
                r.continue_()
            else:
                self.blocked.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.goto(base + name + ".html")
        page.wait_for_selector(".tt-explorer[data-key]")

    def clean(self) -> None:
        assert self.errors == []
        assert self.dialogs == []
        assert self.blocked == []


@pytest.fixture
def visit(browser, harness):
    opened = []

    def open_page(name: str) -> Visit:
        opened.append(Visit(browser, harness, name))
        return opened[-1]

    yield open_page
    for v in opened:
        v.clean()
        v.context.close()


CELLS = """root => [...root.querySelectorAll('rect.tt-cell')].map(r =>
  [+r.dataset.row, +r.dataset.col, +r.dataset.value, r.dataset.masked === 'true'])"""
BARS = """root => [...root.querySelectorAll('rect.tt-bar')].map(r =>
  [+r.dataset.index, +r.dataset.value])"""


def _matrix(cells) -> list[list[float]]:
    n, m = max(c[0] for c in cells) + 1, max(c[1] for c in cells) + 1
    out = [[math.nan] * m for _ in range(n)]
    for i, j, v, _ in cells:
        out[i][j] = v
    return out


def _argmax(cells) -> tuple[int, int]:
    best = max(cells, key=lambda c: -1 if c[3] else c[2])
    return best[0], best[1]


# ---------- tests ----------


def test_heatmap_follows_every_control(visit):
    v = visit("heatmap")
    spec, root = heatmap_spec(), v.page.locator(".tt-explorer")
    slider, select = root.locator("input[type=range]"), root.locator("select")
    for layer in range(3):
        slider.fill(str(layer))
        for head in range(2):
            select.select_option(str(head))
            key = f"{layer},{head}"
            assert root.get_attribute("data-key") == key
            frame = spec["frames"][key]
            status = root.locator(".tt-explorer-status").text_content()
            if "error" in frame:
                assert status == frame["error"]  # the message, literally
                assert root.locator(".tt-explorer-figure").is_hidden()
                continue
            assert status == frame["description"]
            assert root.locator("output").text_content() == str(layer)
            cells = root.evaluate(CELLS)
            expected = frame["panels"][0]
            assert _matrix(cells) == expected["values"]
            masked = {(i, j) for i, j, _, m in cells if m}
            assert masked == {(i, j) for i in range(5) for j in range(5) if expected["mask"][i][j]}
            assert _argmax(cells) == (layer + head + 1, layer)
            # Annotations: one per unmasked cell, with the value at 2 digits.
            notes = root.locator("svg text.tt-ann").all_text_contents()
            assert len(notes) == 15
            assert f"{0.9:.2f}" in notes


def test_heatmap_hover_keyboard_and_escaping(visit):
    v = visit("heatmap")
    root = v.page.locator(".tt-explorer")
    values = heatmap_spec()["frames"]["0,0"]["panels"][0]["values"]
    readout = root.locator(".tt-explorer-readout")
    root.locator('rect.tt-cell[data-row="3"][data-col="1"]').hover()
    assert readout.text_content() == f"'{LONG}' → '{XSS}': {values[3][1]:.2f}"
    root.locator('rect.tt-cell[data-row="1"][data-col="4"]').hover()
    assert readout.text_content() == f"'{XSS}' → 'cat': masked"
    # Keyboard: focus the heatmap, move the cursor two down and one right.
    heat = root.locator("g.tt-heatmap")
    heat.focus()
    assert readout.text_content() == f"'the' → 'the': {values[0][0]:.2f}"
    for key in ("ArrowDown", "ArrowDown", "ArrowRight", "ArrowUp", "ArrowDown"):
        v.page.keyboard.press(key)
    assert readout.text_content() == f"'{TEX}' → '{XSS}': {values[2][1]:.2f}"
    # The slider moves with the arrow keys and redraws.
    slider = root.locator("input[type=range]")
    slider.focus()
    v.page.keyboard.press("ArrowRight")
    assert slider.input_value() == "1"
    assert root.get_attribute("data-key") == "1,0"
    assert root.locator("output").text_content() == "1"
    v.page.keyboard.press("ArrowLeft")
    assert root.get_attribute("data-key") == "0,0"
    # Data stays text: the tokens, titles and caption show literally, no <img> was made.
    assert root.locator("img").count() == 0
    labels = root.locator("svg text").evaluate_all("ts => ts.map(t => t.firstChild.nodeValue)")
    assert TEX in labels
    assert any(t.startswith("<img src=x") for t in labels)
    assert any(t.startswith("extraordin") and t.endswith("…") for t in labels)
    assert root.locator(f"svg title:text-is('{LONG}')").count() >= 1
    root.locator("g.tt-labels text", has_text="extraordin").last.hover()
    assert readout.text_content() == LONG  # a truncated label, whole
    assert root.locator(".tt-explorer-title").text_content() == f"Attention {TEX}"
    assert root.locator(".tt-explorer-caption").text_content() == f"caption {XSS}"
    assert root.locator(".tt-explorer-frame-title").text_content() == f"{XSS} frame"
    # A colour bar for the single heatmap.
    assert root.locator("rect.tt-colourbar").count() == 1


def test_grid_pages_persist_across_frames(visit):
    v = visit("grid")
    spec, root = grid_spec(), v.page.locator(".tt-explorer")
    buttons = root.locator(".tt-explorer-pages button")
    assert root.locator(".tt-explorer-pages-label").text_content() == "heads"
    assert buttons.all_text_contents() == ["0–3", "4–7", "8–11"]

    def heads() -> list[str]:
        return root.locator("g.tt-heatmap").evaluate_all(
            "gs => gs.map(g => g.getAttribute('aria-label'))"
        )

    assert heads() == ["head 0", "head 1", "head 2", "head 3"]
    buttons.nth(1).click()
    assert heads() == ["head 4", "head 5", "head 6", "head 7"]
    assert root.locator(".tt-explorer-pages button[aria-pressed=true]").text_content() == "4–7"
    # Keyboard: tab to the next page button and press Enter.
    root.locator(".tt-explorer-pages button").nth(1).focus()
    v.page.keyboard.press("Tab")
    v.page.keyboard.press("Enter")
    assert heads() == ["head 8", "head 9", "head 10", "head 11"]
    root.locator("input[type=range]").fill("1")
    assert root.get_attribute("data-key") == "1"
    assert heads() == ["head 8", "head 9", "head 10", "head 11"]  # the page persists
    maps = root.locator("g.tt-heatmap")
    for k, head in enumerate(range(8, 12)):
        cells = maps.nth(k).evaluate(CELLS)
        expected = spec["frames"]["1"]["panels"][0]["items"][head]["values"]
        assert _matrix(cells) == expected
        assert _argmax(cells) == ((head + 1) % 13, (2 * head) % 13)
    assert root.locator("rect.tt-colourbar").count() == 1  # one shared scale
    # Two columns of items: the first two maps side by side, the third below.
    boxes = [maps.nth(k).bounding_box() for k in range(3)]
    assert boxes[0]["y"] == pytest.approx(boxes[1]["y"]) and boxes[1]["x"] > boxes[0]["x"]
    assert boxes[2]["y"] > boxes[0]["y"] + boxes[0]["height"] - 1


def test_bars_side_by_side(visit):
    v = visit("bars")
    spec, root = bars_spec(), v.page.locator(".tt-explorer")
    slider, readout = root.locator("input[type=range]"), root.locator(".tt-explorer-readout")
    panels = root.locator("g.tt-panel")
    assert panels.count() == 2
    left, right = panels.nth(0).bounding_box(), panels.nth(1).bounding_box()
    assert left["x"] + left["width"] <= right["x"]
    for k in range(3):
        slider.fill(str(k))
        frame = spec["frames"][str(k)]
        ranking = panels.nth(0).evaluate(BARS)
        assert [b[1] for b in ranking] == frame["panels"][0]["values"]
        top = max(ranking, key=lambda b: b[1])[0]
        assert top == k + 1
        fills = (
            panels.nth(0)
            .locator("rect.tt-bar")
            .evaluate_all("rs => rs.map(r => r.getAttribute('fill'))")
        )
        assert fills[k + 1] != fills[0]  # the highlighted bar has the accent colour
        vector = panels.nth(1).evaluate(BARS)
        assert [b[1] for b in vector] == frame["panels"][1]["values"]
        signs = (
            panels.nth(1)
            .locator("rect.tt-bar")
            .evaluate_all("rs => rs.map(r => r.getAttribute('fill'))")
        )
        negative = {f for f, x in zip(signs, vector, strict=True) if x[1] < 0}
        positive = {f for f, x in zip(signs, vector, strict=True) if x[1] > 0}
        assert len(negative) == 1 and len(positive) == 1 and negative != positive
    panels.nth(1).locator('rect.tt-bar[data-index="2"]').hover()
    assert readout.text_content() == f"dim 2 = {spec['frames']['2']['panels'][1]['values'][2]:.3f}"
    panels.nth(0).locator('rect.tt-bar[data-index="5"]').hover()
    assert readout.text_content() == f"{XSS}: {spec['frames']['2']['panels'][0]['values'][5]:.2f}"


def test_lines_marker_and_hover(visit):
    v = visit("lines")
    spec, root = lines_spec(), v.page.locator(".tt-explorer")
    slider = root.locator("input[type=range]")
    xs = []
    for k in range(3):
        slider.fill(str(k))
        assert (
            root.locator(".tt-explorer-status").text_content()
            == spec["frames"][str(k)]["description"]
        )
        xs.append(float(root.locator("line.tt-marker").get_attribute("x1")))
        assert root.locator("g.tt-lines path").count() == 2
        assert root.locator("g.tt-lines circle:not(.tt-cursor)").count() == 9
    # Marker at x = 1, 3, 5 on an axis 0..8: equally spaced, moving right.
    assert xs[0] < xs[1] < xs[2]
    assert xs[2] - xs[1] == pytest.approx(xs[1] - xs[0])
    assert root.locator("svg text").all_text_contents().count("valid") == 1  # legend
    # Hover the "probe" point at x = 4 (y = 1.5).
    box = root.locator("g.tt-lines circle:not(.tt-cursor)").nth(4).bounding_box()
    v.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    readout = root.locator(".tt-explorer-readout")
    assert readout.text_content() == "probe at 4: 1.50"
    # Keyboard: the cursor goes on from the hovered point, along x and across series.
    root.locator("g.tt-lines").focus()
    v.page.keyboard.press("ArrowRight")
    assert readout.text_content() == "probe at 5: 1.50"
    v.page.keyboard.press("ArrowUp")
    assert readout.text_content() == "valid at 5: 0.90"


def test_histogram(visit):
    v = visit("histogram")
    spec, root = histogram_spec(), v.page.locator(".tt-explorer")
    for k in (1, 0, 1):
        root.locator("select").select_option(str(k))
        counts = spec["frames"][str(k)]["panels"][0]["counts"]
        assert [b[1] for b in root.evaluate(BARS)] == counts
        heights = root.locator("rect.tt-bar").evaluate_all(
            "rs => rs.map(r => +r.getAttribute('height'))"
        )
        assert heights.index(max(heights)) == counts.index(max(counts))
    root.locator('rect.tt-bar[data-index="4"]').hover()
    assert root.locator(".tt-explorer-readout").text_content() == "0.8 to 1: 20"


def test_two_explorers_mount_once(visit):
    v = visit("two")
    roots = v.page.locator(".tt-explorer")
    assert roots.count() == 2
    assert v.page.locator(".tt-explorer-body").count() == 2
    assert v.page.locator("style#tt-explorer-css").count() == 1
    assert roots.nth(0).locator("input[type=range]").count() == 1
    # Each explorer's controls drive only its own figure.
    roots.nth(1).locator("input[type=range]").fill("2")
    assert roots.nth(1).get_attribute("data-key") == "2"
    assert roots.nth(0).get_attribute("data-key") == "0,0"
    # Calling mountStatic again (as another inlined copy would) mounts nothing new.
    v.page.evaluate("""async () => {
      const url = new URL('explorer.js', location.href).href;
      (await import(url)).mountStatic();
    }""")
    assert v.page.locator(".tt-explorer-body").count() == 2


def test_text_control_static_offers_examples_only(visit):
    v = visit("text")
    root = v.page.locator(".tt-explorer")
    assert root.locator("input[type=text]").count() == 0
    assert root.locator("select option").all_text_contents() == text_spec()["controls"][0]["labels"]
    root.locator("select").select_option("1")
    assert root.locator(".tt-explorer-status").text_content() == "4 words"
    assert _argmax(root.evaluate(CELLS)) == (3, 0)


def test_text_control_round_trip(visit):
    v = visit("live")
    page, root = v.page, v.page.locator("#live")
    box, go = root.locator("input[type=text]"), root.locator("form button")
    status = root.locator(".tt-explorer-status")
    box.fill(f"my {TEX} cat sat down")
    go.click()
    assert status.text_content() == "computing…"
    page.evaluate("window.__answer()")
    assert root.get_attribute("data-key") == "2"
    assert page.evaluate("window.__sent") == [
        {"type": "text", "control": "sentence", "text": f"my {TEX} cat sat down"}
    ]
    options = root.locator("select option").all_text_contents()
    assert options[-1] == f"my {TEX} cat sat down"
    assert root.locator("select").input_value() == "2"
    assert status.text_content() == "5 words"
    assert _argmax(root.evaluate(CELLS)) == (4, 0)
    assert page.evaluate("window.__ttRenderLog.length") >= 2
    # An error answer: its message in the status line, no figure.
    box.fill("boom")
    go.click()
    assert status.text_content() == "computing…"
    page.evaluate("window.__answer()")
    assert status.text_content() == "sentence too long"
    assert root.locator(".tt-explorer-figure").is_hidden()
    # Back to an example: the figure returns.
    root.locator("select").select_option("0")
    assert root.locator(".tt-explorer-figure").is_visible()
    assert status.text_content() == "3 words"


FONT_SIZES = """() => [...document.querySelectorAll('.tt-explorer svg.tt-svg')].flatMap(svg => {
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  return [...svg.querySelectorAll('text')].map(t =>
    [t.textContent, parseFloat(getComputedStyle(t).fontSize) * scale]);
})"""


def test_text_is_readable_at_column_width(visit):
    v = visit("all")
    widths = v.page.locator(".tt-explorer svg.tt-svg").evaluate_all(
        "svgs => svgs.map(s => s.getBoundingClientRect().width)"
    )
    assert len(widths) == 6
    assert all(w == pytest.approx(690, abs=1) for w in widths)
    sizes = v.page.evaluate(FONT_SIZES)
    assert len(sizes) > 200
    small = [(t, round(s, 2)) for t, s in sizes if s < 11]
    assert small == []
    # And after a grid page change and a frame change (state carried over).
    v.page.locator(".tt-explorer-pages button").nth(2).click()
    small = [(t, s) for t, s in v.page.evaluate(FONT_SIZES) if s < 11]
    assert small == []


def test_render_log_and_timing_hooks(visit):
    v = visit("grid")
    v.page.evaluate("window.__ttRenderLog = []")
    root = v.page.locator(".tt-explorer")
    root.locator("input[type=range]").fill("1")
    root.locator(".tt-explorer-pages button").nth(2).click()
    log = v.page.evaluate("window.__ttRenderLog")
    assert [entry["key"] for entry in log] == ["1", "1"]
    assert all(entry["ms"] >= 0 for entry in log)
    assert float(root.get_attribute("data-render-ms")) >= 0


DRAW = """async ([frames]) => {
  const {drawFigure} = await import(new URL('explorer.js', location.href).href);
  const host = document.createElement('div');
  host.className = 'tt-explorer';
  document.querySelector('main').appendChild(host);
  const readout = document.createElement('div');
  const state = {readout};
  const fills = () => [...host.querySelectorAll('rect.tt-cell')].map(r => r.getAttribute('fill'));
  const first = drawFigure(host, frames[0], state);
  const before = fills();
  [...host.querySelectorAll('rect.tt-cell')].pop()
    .dispatchEvent(new PointerEvent('pointerover', {bubbles: true}));
  const second = drawFigure(host, frames[1], state);
  return {before, after: fills(), same: first === second, hover: readout.textContent,
          values: [...host.querySelectorAll('rect.tt-cell')].map(r => +r.dataset.value)};
}"""


def test_draw_figure_colours_and_in_place_update(visit):
    """drawFigure alone: matplotlib's colours at both ends and the centre; in-place updates."""
    v = visit("heatmap")
    signed = _heatmap(["a"], ["x", "y", "z"], [[-1.0, 0.0, 1.0]], colormap="diverging", vmin=-1.0)
    flipped = {**signed, "values": [[1.0, 0.0, -1.0]]}
    frames = [{"title": "", "description": "", "panels": [p]} for p in (signed, flipped)]
    out = v.page.evaluate(DRAW, [frames])
    assert out["before"] == ["rgb(5,48,97)", "rgb(247,246,246)", "rgb(103,0,31)"]
    assert out["after"] == out["before"][::-1]
    assert out["same"]  # same layout: the SVG was recoloured, not rebuilt
    assert out["values"] == [1.0, 0.0, -1.0]
    assert out["hover"] == "'a' → 'z': 1.00"
    viridis = _heatmap(["a"], ["x", "y"], [[0.0, 1.0]])
    out = v.page.evaluate(DRAW, [[{"panels": [viridis]}, {"panels": [viridis]}]])
    assert out["before"] == ["rgb(68,1,84)", "rgb(253,231,37)"]


def test_source_can_be_inlined_and_is_small():
    """The book inlines the module in a <script type="module">: nothing in it may end that tag."""
    source = SOURCE.read_text(encoding="utf-8")
    assert "</script" not in source.lower() and "<!--" not in source
    assert not re.search(r"^\s*import\b", source, re.MULTILINE)  # no dependencies
    assert len(gzip.compress(source.encode("utf-8"))) <= 20_000


def test_live_view_follows_a_new_spec(visit):
    v = visit("live")
    root = v.page.locator("#live")
    v.page.evaluate("s => window.__setSpec(s)", histogram_spec())
    assert root.locator(".tt-explorer-body").count() == 1  # replaced, not added
    assert root.locator(".tt-explorer-title").text_content() == "Histogram"
    counts = histogram_spec()["frames"]["0"]["panels"][0]["counts"]
    assert [b[1] for b in root.evaluate(BARS)] == counts


REUSE = """async ([frames]) => {
  const {drawFigure} = await import(new URL('explorer.js', location.href).href);
  const host = () => {
    const d = document.createElement('div');
    d.className = 'tt-explorer';
    return document.querySelector('main').appendChild(d);
  };
  // The SVG as text: elements in order, attributes sorted, ids without their random part;
  // the hatch pattern is left out (made once, when a mask first needs it).
  const text = (svg) => {
    const out = [];
    const walk = (e, depth) => {
      if (e.tagName === 'pattern') return;
      const attrs = [...e.attributes].map(a => `${a.name}=${a.value}`).sort().join(' ');
      out.push(`${depth}${e.tagName} ${attrs} ${e.childElementCount ? '' : e.textContent}`);
      [...e.children].forEach(c => walk(c, depth + ' '));
    };
    walk(svg, '');
    return out.join('\\n').replace(/tt[a-z0-9]+-/g, 'ID-');
  };
  const reused = host(), state = {}, first = drawFigure(reused, frames[0], state), out = [];
  for (const frame of frames.slice(1)) {
    const svg = drawFigure(reused, frame, state);
    out.push({kept: svg === first, drawn: text(svg), fresh: text(drawFigure(host(), frame, {})),
              cells: svg.querySelectorAll('rect.tt-cell').length});
  }
  return out;
}"""


def _grid_frame(tokens: list[str], seed: int) -> dict:
    n = len(tokens)
    items = [
        _heatmap(tokens, tokens, _peaked(n, n, (h % n, (h + 1) % n), seed + h), f"head {h}")
        for h in range(4)
    ]
    grid = {"kind": "grid", "title": "layer", "items": items, "columns": 2, "per_page": 4,
            "page_label": "heads"}  # fmt: skip
    return {"title": "", "description": f"{n} tokens", "panels": [grid]}


def _mask_frame(tokens: list[str], causal: bool) -> dict:
    n = len(tokens)
    mask = [[causal and j > i for j in range(n)] for i in range(n)]
    panel = _heatmap(tokens, tokens, _peaked(n, n, (n - 1, 0), n), "attention", annotate=True,
                     mask=mask)  # fmt: skip
    return {"title": "", "description": "", "panels": [panel]}


def test_other_tokens_move_the_cells_and_draw_what_a_fresh_figure_draws(visit):
    """A frame with other tokens (another count, labels flat or rotated, a mask or not) reuses
    the SVG, adding, moving and removing cells and labels: the result is element for element
    what a fresh drawing of that frame gives."""
    v = visit("grid")
    words = ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "because", "it", "was", "tired",
             ".", "[SEP]"]  # fmt: skip
    grids = [_grid_frame(words, 0), _grid_frame(words[:4], 1),
             _grid_frame([LONG, *words[1:]], 2), _grid_frame([*words, "again", "and", "again"], 3),
             _grid_frame(words[:9], 4)]  # fmt: skip
    masks = [_mask_frame(TOKENS, True), _mask_frame(TOKENS[:3], False),
             _mask_frame(["a", "b", "c", "d", "e", "f"], True)]  # fmt: skip
    for frames, maps in ((grids, 4), (masks, 1)):
        for k, out in enumerate(v.page.evaluate(REUSE, [frames]), start=1):
            assert out["kept"], f"frame {k} rebuilt the SVG"
            assert out["drawn"] == out["fresh"], f"frame {k}"
            panel = frames[k]["panels"][0]
            n = len(panel["items"][0]["rows"] if maps > 1 else panel["rows"])
            assert out["cells"] == maps * n * n


def test_a_clicked_or_entered_cell_is_announced_as_a_pick(visit):
    """Clicking a cell, or Enter on the keyboard cursor, dispatches `tt-pick` (row, column and
    the panel's labels) for page components such as chapter 7's analyses."""
    v = visit("heatmap")
    root = v.page.locator(".tt-explorer")
    v.page.evaluate("""() => { window.__picks = [];
      document.querySelector('.tt-explorer').addEventListener('tt-pick',
        e => window.__picks.push(e.detail)); }""")
    root.locator('rect.tt-cell[data-row="3"][data-col="1"]').click()
    root.locator("g.tt-heatmap").focus()
    for key in ("ArrowDown", "ArrowRight", "ArrowRight", "Enter"):
        v.page.keyboard.press(key)
    picks = v.page.evaluate("window.__picks")
    assert [(p["row"], p["col"]) for p in picks] == [(3, 1), (1, 2)]
    assert picks[0]["rows"] == TOKENS and picks[0]["cols"] == TOKENS
