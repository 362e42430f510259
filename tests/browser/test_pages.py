"""Every page of the table of contents in a real browser (Chromium), with the network cut off.

Each page is served from ``_build/html`` on 127.0.0.1; every other request is blocked and
recorded. The page must then load with no console or page error, show its math through KaTeX
(fonts included), load every image (with alt text), let every explorer control change the
figure, draw every bertviz view, and leave a full-page screenshot in ``_build/screenshots/``.
The same pages opened from disk (``file://``, browser offline) must load without errors too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pytest
from book_site import HTML, chapter_pages, toc_pages

# Errors that cannot be removed at their cause, each with that cause. Empty: the causes seen
# (sphinx-thebe's duplicate `const THEBE_JS_URL`, the widget manager's MathJax 2 call, CDN
# assets) were removed from the build instead (see _config.yml and book/_ext/book_ext.py).
ALLOWED_ERRORS: list[tuple[str, str]] = []

# Visible text must hold no TeX: code, rendered math and scripts are left out of the check.
_VISIBLE_TEXT = """() => {
  const main = document.querySelector("main") || document.body;
  const clone = main.cloneNode(true);
  clone.querySelectorAll("pre, code, script, style, .katex, .cell_input").forEach(e => e.remove());
  return clone.textContent;
}"""
_RAW_TEX = ("$$", "\\(", "\\[", "\\begin{", "\\frac")

_IMAGES = """async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done); img.addEventListener("error", done);
  })));
  return images.map(img => ({src: img.src.slice(0, 80), alt: img.alt, width: img.naturalWidth}));
}"""

_KATEX_FONTS = """async () => {
  await document.fonts.ready;
  return [...document.fonts].filter(f => f.family.replace(/"/g, "").startsWith("KaTeX"))
    .map(f => ({family: f.family, status: f.status}));
}"""

# The explorer's current frame as drawn, checked against its own data: the key of the
# controls' positions, and whether the status line, the title and every drawn cell and bar
# are what the frame's data says.
_DRAWN = """root => {
  const spec = JSON.parse(root.querySelector("script.tt-explorer-data").textContent);
  const key = root.dataset.key, frame = spec.frames[key];
  const status = root.querySelector(".tt-explorer-status").textContent;
  const cells = [...root.querySelectorAll("rect.tt-cell")].map(r => +r.dataset.value);
  const bars = [...root.querySelectorAll("rect.tt-bar")].map(r => +r.dataset.value);
  if (frame === undefined) return {key, problem: "no frame for this key"};
  if (frame.error !== undefined) {
    return {key, problem: status === frame.error && cells.length + bars.length === 0 ? "" :
            "an error frame must show its message and no figure", figure: "error"};
  }
  const heat = [], grids = [], wanted = [];
  for (const p of frame.panels) {
    if (p.kind === "heatmap") heat.push(...p.values.flat());
    if (p.kind === "grid") p.items.forEach(i => grids.push(...i.values.flat()));
    if (p.kind === "bars") wanted.push(...p.values);
    if (p.kind === "histogram") wanted.push(...p.counts);
  }
  const sorted = a => [...a].sort((x, y) => x - y).join(",");
  let problem = "";
  if (status !== frame.description) problem = "the status line is not the description";
  else if (root.querySelector(".tt-explorer-frame-title").textContent !== frame.title)
    problem = "the title is not the frame's";
  else if (bars.join(",") !== wanted.join(",")) problem = "the bars are not the data";
  else if (!grids.length && sorted(cells) !== sorted(heat)) problem = "cells are not the data";
  else if (grids.length && (!cells.length || cells.some(v => !grids.includes(v))))
    problem = "the grid's cells are not the data";
  return {key, problem, figure: cells.join(",") + "|" + bars.join(",") + "|" + status};
}"""

# Effective size in CSS pixels of every text drawn in an explorer's or diagram's SVG: its font
# size in SVG units scaled by the SVG's rendered width over its viewBox width.
_TEXT_PX = """root => [...root.querySelectorAll("svg")].flatMap(svg => {
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  return [...svg.querySelectorAll("text")].filter(t => t.textContent.trim())
    .map(t => ({text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * scale}));
})"""


@dataclass
class Visit:
    """One page loaded in a fresh browser context, with what it tried and what it said."""

    url: str
    page: object = None
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    docname: str = ""

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(re.search(p, e) for p, _ in ALLOWED_ERRORS)]


def _open(
    browser, url: str, allowed_prefix: str | None, offline: bool = False, body: str = ""
) -> Visit:
    """Load ``url`` (served as ``body`` if given); only ``allowed_prefix`` may be fetched."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=offline)
    visit = Visit(url)

    def route(route):
        request_url = route.request.url
        if body and request_url == url:
            route.fulfill(body=body, content_type="text/html")
        elif allowed_prefix is not None and request_url.startswith(allowed_prefix):
            route.continue_()
        else:
            visit.blocked.append(request_url)
            route.abort()

    context.route(re.compile(r"^https?://"), route)
    page = context.new_page()
    page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.errors.append(f"page error: {e}"))

    def dialog(d):
        visit.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.goto(url, wait_until="networkidle")
    visit.page = page
    return visit


def _screenshot_name(docname: str) -> str:
    return docname.replace("/", "__") + ".png"


@pytest.fixture(scope="module", params=toc_pages())
def visit(request, browser, site_url, screenshots):
    visit = _open(browser, site_url + request.param + ".html", allowed_prefix=site_url)
    visit.page.evaluate(_IMAGES)  # every image in, lazy ones included, before the screenshot
    visit.page.screenshot(path=screenshots / _screenshot_name(request.param), full_page=True)
    visit.docname = request.param
    yield visit
    visit.page.context.close()


def test_no_request_leaves_the_site(visit):
    assert visit.blocked == []


def test_no_console_or_page_errors(visit):
    assert visit.unexpected_errors() == []
    assert visit.dialogs == []


def test_math_is_rendered_by_katex(visit):
    text = visit.page.evaluate(_VISIBLE_TEXT)
    raw = [d for d in _RAW_TEX if d in text]
    assert raw == [], f"unrendered TeX in the text: {raw}"
    katex = visit.page.locator(".katex").count()
    if visit.docname in chapter_pages():
        assert katex > 0, "a chapter without KaTeX-rendered math"
    if katex:
        fonts = visit.page.evaluate(_KATEX_FONTS)
        assert fonts, "KaTeX's CSS (and its @font-face rules) did not load"
        assert [f for f in fonts if f["status"] == "error"] == []
        assert any(f["status"] == "loaded" for f in fonts)


def test_every_image_loaded_and_has_alt_text(visit):
    images = visit.page.evaluate(_IMAGES)
    assert [i for i in images if i["width"] == 0] == [], "images that did not load"
    assert [i for i in images if not i["alt"].strip()] == [], "images without alt text"


def _check_drawn(root, where: str) -> dict:
    drawn = root.evaluate(_DRAWN)
    assert drawn["problem"] == "", f"{where}, frame {drawn['key']}: {drawn['problem']}"
    return drawn


def test_every_explorer_draws_its_data_for_every_control_position(visit):
    """Each control of each explorer, moved through every position (sliders with the arrow
    keys), shows exactly the frame its data holds for the new positions."""
    page = visit.page
    explorers = page.locator(".tt-explorer[data-tt-mounted]")
    assert explorers.count() == page.locator("script.tt-explorer-data").count()
    for e in range(explorers.count()):
        root = explorers.nth(e)
        root.scroll_into_view_if_needed()
        start = _check_drawn(root, f"explorer {e}")
        controls = root.locator(".tt-explorer-controls input[type=range], "
                                ".tt-explorer-controls select")  # fmt: skip
        assert controls.count() > 0
        for c in range(controls.count()):
            control, where = controls.nth(c), f"explorer {e}, control {c}"
            keys = []
            if control.evaluate("el => el.tagName") == "SELECT":
                for i in range(control.locator("option").count()):
                    control.select_option(index=i)
                    keys.append(_check_drawn(root, where)["key"])
                control.select_option(index=int(start["key"].split(",")[c]))
            else:
                control.focus()
                control.press("Home")
                keys.append(_check_drawn(root, where)["key"])
                for _ in range(int(control.get_attribute("max"))):
                    control.press("ArrowRight")
                    keys.append(_check_drawn(root, where)["key"])
                for _ in range(int(control.get_attribute("max")) - int(start["key"].split(",")[c])):
                    control.press("ArrowLeft")
            assert len(set(keys)) == len(keys), f"{where}: positions that showed the same frame"
            assert _check_drawn(root, where) == start, f"{where}: back at the start, not the start"
    assert visit.unexpected_errors() == []


def test_explorer_hover_shows_the_exact_value(visit):
    explorers = visit.page.locator(".tt-explorer[data-tt-mounted]")
    for e in range(explorers.count()):
        root = explorers.nth(e)
        marks = root.locator("rect.tt-cell, rect.tt-bar")
        if marks.count() == 0:
            continue  # a line chart: its hover is tested on the renderer's own page
        values = [abs(float(v)) for v in marks.evaluate_all("m => m.map(r => r.dataset.value)")]
        mark = marks.nth(int(np.argmax(values)))  # the largest: wide enough to point at
        mark.scroll_into_view_if_needed()
        mark.hover(force=True)
        value = float(mark.get_attribute("data-value"))
        readout = root.locator(".tt-explorer-readout").text_content()
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", readout)]
        assert any(abs(n - value) <= 0.006 + 0.001 * abs(value) for n in numbers), (e, readout)


def test_explorer_text_is_readable_at_the_column_width(visit):
    explorers = visit.page.locator(".tt-explorer[data-tt-mounted]")
    for e in range(explorers.count()):
        texts = explorers.nth(e).evaluate(_TEXT_PX)
        assert texts, f"explorer {e} drew no text"
        small = [t for t in texts if t["px"] < 10.9]
        assert small == [], f"explorer {e}: text under 11 px: {small[:5]}"


def test_every_bertviz_view_draws(visit):
    views = visit.page.locator('[id^="bertviz-"]')
    for v in range(views.count()):
        view = views.nth(v)
        view.scroll_into_view_if_needed()
        view.locator("svg line").first.wait_for(state="attached", timeout=15_000)
        assert view.locator("svg line").count() > 0


@pytest.mark.parametrize("docname", toc_pages())
def test_page_works_opened_from_disk_offline(browser, docname):
    url = (HTML / f"{docname}.html").as_uri()
    visit = _open(browser, url, allowed_prefix=None, offline=True)
    try:
        images = visit.page.evaluate(_IMAGES)
        assert [i for i in images if i["width"] == 0] == []
        if visit.page.locator(".katex").count():
            fonts = visit.page.evaluate(_KATEX_FONTS)
            assert any(f["status"] == "loaded" for f in fonts)
            assert [f for f in fonts if f["status"] == "error"] == []
        views = visit.page.locator('[id^="bertviz-"]')
        for v in range(views.count()):
            views.nth(v).locator("svg line").first.wait_for(state="attached", timeout=15_000)
        assert visit.blocked == []
        assert visit.unexpected_errors() == []
    finally:
        visit.page.context.close()


def test_explorer_text_is_escaped(browser, site_url):
    """Tokens, titles and captions that look like HTML or TeX show as text, never as markup."""
    import numpy as np

    from transformer_tutorial.widgets import Control, Explorer, frame, heatmap

    evil, tex = "<img src=x onerror=alert(1)>", "$$x$$"

    def data(token: str) -> dict:
        return frame(heatmap(np.eye(2), [token, tex], [token, tex], title=f"title {evil}"),
                     description=f"about {token}")  # fmt: skip

    explorer = Explorer(f"Title {evil}", (Control("token", (evil, "cat"), label=f"token {evil}"),),
                        data, caption=f"caption {evil}")  # fmt: skip
    page_url = site_url + "__explorer_escaping.html"
    body = f"<!DOCTYPE html><html><body>{explorer.static_html()}</body></html>"
    visit = _open(browser, page_url, allowed_prefix=site_url, body=body)
    try:
        page = visit.page
        page.locator(".tt-explorer[data-tt-mounted] svg").first.wait_for()
        assert page.locator("img").count() == 0
        assert page.locator("select option").first.text_content() == evil
        assert evil in page.locator(".tt-explorer-title").text_content()
        drawn = page.locator("svg text").all_text_contents()
        assert any(evil in t for t in drawn) and tex in drawn
        page.locator("select").select_option(index=1)
        page.locator("select").select_option(index=0)
        assert page.locator("img").count() == 0
        assert visit.dialogs == []
        assert visit.blocked == []
        assert visit.unexpected_errors() == []
    finally:
        visit.page.context.close()


@pytest.mark.parametrize("static", [False, True], ids=["live-inline", "book-vendor"])
def test_bertviz_views_draw_offline(browser, site_url, static, monkeypatch):
    """Both forms of :mod:`transformer_tutorial.bertviz_views` draw with the network cut off:
    the live one with its inlined libraries, the book one from the site's ``_vendor/``."""
    import numpy as np

    from transformer_tutorial import bertviz_views
    from transformer_tutorial.record import AttentionRecord
    from transformer_tutorial.widgets import STATIC_ENV_VAR

    if static:
        monkeypatch.setenv(STATIC_ENV_VAR, "1")
    else:
        monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    weights = np.random.default_rng(0).random((2, 2, 3, 3))
    tokens = ["a", "<b>", "c"]
    record = AttentionRecord(weights / weights.sum(-1, keepdims=True), tokens, tokens)
    html = bertviz_views.head_view(record).data + bertviz_views.model_view(record).data
    html = html.replace(bertviz_views.VENDOR_URL_MARKER, site_url + "_vendor/")
    body = f"<!DOCTYPE html><html><body>{html}</body></html>"
    visit = _open(browser, site_url + "__bertviz.html", allowed_prefix=site_url, body=body)
    try:
        views = visit.page.locator('[id^="bertviz-"]')
        assert views.count() == 2
        for v in range(2):
            views.nth(v).locator("svg line").first.wait_for(state="attached", timeout=15_000)
        assert visit.blocked == []
        assert visit.unexpected_errors() == []
    finally:
        visit.page.context.close()


def test_widget_manager_renders_offline(browser, site_url):
    """Pages holding ipywidgets state (none today: explorers are static in the book) get
    require.js and the widget manager from ``_vendor/`` (myst-nb's ``nb_ipywidgets_js``,
    set by the book's extension); that pair renders a widget with the network cut off."""
    import json

    import ipywidgets
    from book_ext import VENDOR_FILES
    from ipywidgets.embed import embed_data

    assert {"requirejs/require.js", "html-manager"} <= set(VENDOR_FILES)
    data = embed_data(views=[ipywidgets.IntSlider(value=3, description="n")])
    view = json.dumps(data["view_specs"][0])
    body = (
        '<!DOCTYPE html><html><head><script src="_vendor/requirejs/require.js"></script>'
        '<script src="_vendor/html-manager/embed-amd.js"></script></head><body>'
        '<script type="application/vnd.jupyter.widget-state+json">'
        f"{json.dumps(data['manager_state'])}</script>"
        f'<script type="application/vnd.jupyter.widget-view+json">{view}</script></body></html>'
    )
    visit = _open(browser, site_url + "__widgets.html", allowed_prefix=site_url, body=body)
    try:
        visit.page.locator(".widget-slider").first.wait_for(timeout=15_000)
        assert visit.blocked == []
        assert visit.unexpected_errors() == []
    finally:
        visit.page.context.close()


def test_chapter_7_runs_minilm_in_the_page_on_a_typed_sentence(browser, site_url):
    """The static book's chapter 7: a sentence typed into the explorer runs MiniLM in the
    reader's browser; every drawn head equals the notebook's Python model within 2e-3."""
    from transformer_tutorial.chapters.ch07_stacking import minilm_layer_data

    page_url = site_url + "notebooks/07_stacking_layers.html"
    visit = _open(browser, page_url, allowed_prefix=site_url)
    try:
        root = visit.page.locator(".tt-explorer[data-tt-mounted]").filter(
            has=visit.page.locator("input[type=text]")).first  # fmt: skip
        box, status = root.locator("input[type=text]"), root.locator(".tt-explorer-status")
        sentence = "A bee landed on the flower because it wanted nectar."
        box.fill(sentence)
        box.press("Enter")
        visit.page.wait_for_function(
            "([el, text]) => [...el.querySelectorAll('option')].some(o => o.text === text)"
            " && el.querySelector('.tt-explorer-status').textContent.startsWith('Layer')",
            arg=[root.element_handle(), sentence], timeout=120_000,
        )  # fmt: skip
        layer = root.locator("input[type=range]")
        for position in (0, 5):
            layer.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }",
                           str(position))  # fmt: skip
            expected = minilm_layer_data(sentence, position)
            assert status.text_content() == expected["description"]
            drawn = root.evaluate(
                "el => [...el.querySelectorAll('rect.tt-cell')].map(r => +r.dataset.value)"
            )
            heads = expected["panels"][0]["items"][:4]  # the first page: heads 0-3
            want = np.concatenate([np.ravel(h["values"]) for h in heads])
            assert len(drawn) == want.size
            np.testing.assert_allclose(np.sort(drawn), np.sort(want), atol=2e-3)
        box.fill("word " * 130)  # over the page model's 128 tokens: said, not cut
        box.press("Enter")
        visit.page.wait_for_function(
            "el => el.querySelector('.tt-explorer-status').textContent.includes('at most 128')",
            arg=root.element_handle(), timeout=60_000,
        )  # fmt: skip
        box.fill("a cat 🐈 sat")
        box.press("Enter")
        visit.page.wait_for_function(
            "el => el.querySelector('.tt-explorer-status').textContent.includes('[UNK]')",
            arg=root.element_handle(), timeout=60_000,
        )  # fmt: skip
        assert visit.blocked == []
        assert visit.unexpected_errors() == []
    finally:
        visit.page.context.close()


def test_chapter_7_opened_from_disk_explains_how_to_serve_the_book(browser):
    from transformer_tutorial.browser_model import FILE_PROTOCOL_MESSAGE

    url = (HTML / "notebooks/07_stacking_layers.html").as_uri()
    visit = _open(browser, url, allowed_prefix=None, offline=True)
    try:
        root = visit.page.locator(".tt-explorer[data-tt-mounted]").filter(
            has=visit.page.locator("input[type=text]")).first  # fmt: skip
        root.locator("input[type=text]").fill("the prepared sentences still work")
        root.locator("input[type=text]").press("Enter")
        status = root.locator(".tt-explorer-status")
        visit.page.wait_for_function(
            "([el, m]) => el.querySelector('.tt-explorer-status').textContent === m",
            arg=[root.element_handle(), FILE_PROTOCOL_MESSAGE], timeout=30_000,
        )  # fmt: skip
        assert "make serve" in status.text_content()
        root.locator("select").first.select_option(index=1)  # a prepared sentence still shows
        assert root.locator("rect.tt-cell").count() > 0
    finally:
        visit.page.context.close()
