"""Where the built book is and which pages it has (shared by the book and browser tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
NODE_MODULES = ROOT / "node_modules"
NOT_BUILT = "the book is not built: run `make book` first (`make test` does)"


def _files(entries: list[dict]) -> list[str]:
    files = []
    for entry in entries:
        if "file" in entry:
            files.append(entry["file"])
        for key in ("sections", "chapters", "parts"):
            files += _files(entry.get(key, []))
    return files


def toc_pages() -> list[str]:
    """Every page of ``_toc.yml`` in reading order, as docnames (``notebooks/01_x``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [toc["root"], *_files(toc.get("parts", []) + toc.get("chapters", []))]


def chapter_pages() -> list[str]:
    return [page for page in toc_pages() if page.startswith("notebooks/")]


def built_page(docname: str) -> Path:
    """The page's HTML file; fails (never skips) when the book has not been built."""
    path = HTML / f"{docname}.html"
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: {NOT_BUILT}", pytrace=False)
    return path
