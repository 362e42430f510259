"""The architecture diagrams in the built book, in Chromium: on the intro page and on every
chapter page from 2 to 10, each found, described in text, readable (every text at least 11 CSS
px as rendered at the book's column) and linked to pages and anchors that exist."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from book_site import HTML, chapter_pages, toc_pages

MIN_PX = 11.0
PAGES = [toc_pages()[0]] + [p for p in chapter_pages() if not p.startswith("notebooks/01_")]

_DIAGRAMS = """() => [...document.querySelectorAll("svg.tt-diagram-svg")].map(svg => {
  svg.scrollIntoView();
  const ids = (svg.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean);
  const description = ids.map(id => {
    const node = document.getElementById(id);
    return node ? node.textContent : "";
  }).join(" ");
  const texts = [...svg.querySelectorAll("text")];
  const sizes = texts.map(t => {
    const m = t.getScreenCTM();
    return parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
  });
  const figure = svg.closest("figure");
  const caption = figure ? (figure.querySelector("figcaption") || {}).textContent || "" : "";
  const details = figure ? (figure.querySelector("details") || {}).textContent || "" : "";
  return {
    role: svg.getAttribute("role"),
    description, caption, details,
    width: svg.getBoundingClientRect().width,
    texts: texts.length,
    smallest: Math.min(...sizes),
    links: [...svg.querySelectorAll("a")]
      .map(a => new URL(a.href.baseVal, document.baseURI).href),
  };
})"""


def _target_exists(url: str, site_url: str) -> bool:
    """Whether ``url`` (on the local server) names a built file and, if any, an id in it."""
    parts = urlsplit(url)
    path = HTML / parts.path.removeprefix(urlsplit(site_url).path)
    if not path.is_file():
        return False
    return not parts.fragment or f'id="{parts.fragment}"' in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("docname", PAGES)
def test_diagrams_are_described_readable_and_linked(browser, site_url, docname):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{site_url}{docname}.html", wait_until="load")
        found = page.evaluate(_DIAGRAMS)
    finally:
        context.close()
    assert found, f"{docname}: no architecture diagram on the page"
    for i, diagram in enumerate(found):
        where = f"{docname}, diagram {i}"
        assert diagram["role"] == "img", where
        assert len(diagram["description"]) > 100, f"{where}: no text description"
        assert diagram["caption"].strip() and "Text description" in diagram["details"], where
        assert diagram["width"] > 300, f"{where}: drawn {diagram['width']:.0f} px wide"
        assert diagram["texts"] > 5, where
        assert diagram["smallest"] >= MIN_PX, (
            f"{where}: text rendered at {diagram['smallest']:.1f} px (< {MIN_PX})"
        )
        missing = [url for url in diagram["links"] if not _target_exists(url, site_url)]
        assert diagram["links"] and not missing, f"{where}: links to nothing: {missing}"
