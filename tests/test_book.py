"""The built book (``make book``): every page there, math rendered by KaTeX, figures, no CDN,
each chapter light enough, the reader's aids (run-live line, API page, glossary, references).

These tests read ``_build/html``; without a build they fail (never skip): run ``make book``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from book_ext import VENDOR_FILES, public_modules
from book_site import HTML, NODE_MODULES, NOT_BUILT, ROOT, built_page, chapter_pages, toc_pages

import transformer_tutorial
from transformer_tutorial import bertviz_views

MAX_CHAPTER_BYTES = 3_000_000


class _Tags(HTMLParser):
    """Every start tag with its attributes; text outside code and rendered math."""

    SKIP = {"script", "style", "pre", "code"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self._skip: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        classes = attributes.get("class", "").split()
        if (self._skip or tag in self.SKIP or "katex" in classes) and tag not in _VOID:
            self._skip.append(tag)

    def handle_endtag(self, tag):
        if self._skip and self._skip[-1] == tag:
            self._skip.pop()

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


_VOID = {"img", "br", "hr", "input", "meta", "link", "source", "area", "base", "col", "wbr"}


def _parse(path: Path) -> _Tags:
    parser = _Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _classes(attrs: dict[str, str]) -> list[str]:
    return attrs.get("class", "").split()


def _remote(url: str) -> bool:
    return url.startswith(("http:", "https:", "//"))


@pytest.mark.parametrize("page", toc_pages())
def test_page_was_built_without_remote_assets(page):
    tags = _parse(built_page(page)).tags
    remote = [
        (tag, attrs.get("src") or attrs.get("href"))
        for tag, attrs in tags
        if (tag in ("script", "img", "iframe", "source") and _remote(attrs.get("src", "")))
        or (tag == "link" and _remote(attrs.get("href", "")) and attrs.get("rel") != "canonical")
    ]
    assert remote == [], "assets must be served from the site itself"
    html = built_page(page).read_text(encoding="utf-8")
    assert bertviz_views.VENDOR_URL_MARKER not in html, "the _vendor/ marker was not resolved"
    assert "THEBE_JS_URL" not in html


@pytest.mark.parametrize("page", toc_pages())
def test_no_raw_tex_left_in_the_text(page):
    text = " ".join(_parse(built_page(page)).text)
    for delimiter in ("$$", "\\(", "\\[", "\\begin{", "\\frac"):
        assert delimiter not in text, f"unrendered math ({delimiter!r}) in {page}"


@pytest.mark.parametrize("page", chapter_pages())
def test_chapter_has_katex_math_and_a_figure(page):
    tags = _parse(built_page(page)).tags
    assert sum("katex" in _classes(a) for _, a in tags) > 0, "no KaTeX-rendered math"
    images = [a for t, a in tags if t == "img"]
    figures = [a for a in images if a.get("src", "").startswith(("../_images/", "data:image/"))]
    assert figures, f"{page} shows no figure (a heatmap is expected in every chapter)"
    assert all(a.get("alt", "").strip() for a in images), "every image needs alt text"
    assert not [a for a in images if a.get("alt", "").startswith(("../", "_images"))], (
        "alt text must describe the figure, not repeat its file name"
    )


@pytest.mark.parametrize("page", chapter_pages())
def test_chapter_page_weighs_at_most_3_mb(page):
    path = built_page(page)
    size = path.stat().st_size
    for tag, attrs in _parse(path).tags:
        src = attrs.get("src", "")
        if tag == "img" and src and not src.startswith("data:"):
            size += (path.parent / src).resolve().stat().st_size
    assert size <= MAX_CHAPTER_BYTES, f"{page}: {size / 1e6:.2f} MB (HTML + its images)"


@pytest.mark.parametrize("page", chapter_pages())
def test_chapter_offers_its_notebook_and_says_how_to_run_it(page):
    path = built_page(page)
    tags = _parse(path).tags
    html = path.read_text(encoding="utf-8")
    note = re.search(r'<div class="tt-run-live[^"]*">(.*?)</div>', html, re.DOTALL)
    assert note, "no line saying how to run the chapter live"
    assert "make lab" in " ".join(re.sub(r"<[^>]+>", "", note[1]).split())
    assert html.count("tt-run-live") == 1 and html.count("Run it yourself") == 1, "two notes"
    notebook = f"{Path(page).name}.ipynb"
    links = {a.get("href", "") for t, a in tags if t == "a"}
    downloads = [href for href in links if href.endswith(notebook)]
    assert downloads, f"no link to {notebook}"
    for href in downloads:
        assert (path.parent / href).resolve().is_file(), f"{href} does not exist in the site"


def test_api_modules_are_the_package_subpackages_included_and_not_the_build_extension():
    modules = public_modules()
    assert "transformer_tutorial.attention" in modules
    assert "transformer_tutorial.chapters.ch07_stacking" in modules
    assert not any("sphinx" in m or "book_ext" in m or "._" in m for m in modules)
    on_disk = {
        ".".join(path.relative_to(ROOT / "src").with_suffix("").parts)
        for path in Path(transformer_tutorial.__file__).parent.rglob("*.py")
        if not any(part.startswith("_") for part in path.parts[-2:])
    }
    assert on_disk <= set(modules)


def test_api_page_documents_every_public_module_with_source_links():
    html = built_page("book/api").read_text(encoding="utf-8")
    for module in public_modules():
        assert f'id="module-{module}"' in html, f"{module} is missing from the API page"
    assert "book_ext" not in html and "sphinx_ext" not in html
    assert html.count('class="viewcode-link"') >= len(public_modules())
    assert (HTML / "_modules" / "transformer_tutorial" / "attention.html").is_file()


def test_chapter_code_links_to_the_api_page():
    linked = [
        page
        for page in chapter_pages()
        if 'class="sphinx-codeautolink-a" href="../book/api.html#'
        in built_page(page).read_text(encoding="utf-8")
    ]
    assert linked == chapter_pages(), "every chapter's calls into the package link to the API"


def test_glossary_and_references_render_and_are_linked():
    glossary = built_page("book/glossary").read_text(encoding="utf-8")
    terms = set(re.findall(r'<dt id="(term-[^"]+)"', glossary))
    assert len(terms) >= 10
    references = built_page("book/references").read_text(encoding="utf-8")
    assert "Vaswani" in references and "Attention is all you need" in references.replace(
        "Attention Is All You Need", "Attention is all you need"
    )
    term_links, citations = set(), 0
    for page in chapter_pages():
        html = built_page(page).read_text(encoding="utf-8")
        term_links |= set(re.findall(r'href="\.\./book/glossary\.html#(term-[^"]+)"', html))
        citations += html.count('href="../book/references.html#')
    assert term_links, "no chapter links a term to the glossary"
    assert term_links <= terms, f"links to missing glossary terms: {term_links - terms}"
    assert citations > 0, "no chapter cites the references"


def test_vendored_assets_are_the_pinned_npm_files():
    if not NODE_MODULES.is_dir():
        pytest.fail(f"node_modules is missing: {NOT_BUILT}", pytrace=False)
    for dest, src in VENDOR_FILES.items():
        source, built = NODE_MODULES / src, HTML / "_vendor" / dest
        if source.is_file():
            assert built.read_bytes() == source.read_bytes(), dest
    assets = ROOT / "src" / "transformer_tutorial" / "assets"
    for shipped, npm in [
        ("require.js", "requirejs/require.js"),
        ("jquery.min.js", "jquery/dist/jquery.min.js"),
        ("d3.min.js", "d3/dist/d3.min.js"),
    ]:
        assert (assets / shipped).read_bytes() == (NODE_MODULES / npm).read_bytes(), shipped


def test_katex_fonts_are_served_next_to_its_css():
    css = (HTML / "_vendor" / "katex" / "katex.min.css").read_text(encoding="utf-8")
    fonts = set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css))
    assert fonts
    for font in fonts:
        assert (HTML / "_vendor" / "katex" / font).is_file(), font
