"""Benchmark 6: the weight of each built chapter page.

For every chapter page of a built book (default: the one ``bench_build.py`` made), the HTML
itself (explorers embed their data in it) plus the images it references from ``_images/``.
The theme's CSS/JS and vendored libraries are shared by all pages and cached by the browser
after the first page; they are reported once. Goals: <= 1.5 MB per chapter, and the
explorers' renderer (inlined in the pages that show explorers) <= 20 KB gzipped.

    .venv/bin/python benchmarks/bench_page_weight.py [--html /tmp/tt-bench-build/_build/html]
"""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path

from results_md import machine, table, write_section

from transformer_tutorial.widgets import renderer_source

HEADING = "## Page weight per chapter"
MB = 1e6
GOAL = 1.5 * MB


def page_weight(page: Path) -> tuple[int, int]:
    """(bytes of the HTML, bytes of the local images it references)."""
    html = page.read_text(errors="replace")
    images = set(re.findall(r'src="([^"]+\.(?:png|svg|jpg|jpeg|gif))"', html))
    size = 0
    for src in images:
        path = (page.parent / src).resolve()
        if path.is_file():
            size += path.stat().st_size
    return page.stat().st_size, size


def shared_assets(html_root: Path) -> int:
    total = 0
    for folder in ("_static", "_vendor"):
        if (html_root / folder).is_dir():
            total += sum(p.stat().st_size for p in (html_root / folder).rglob("*") if p.is_file())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=Path("/tmp/tt-bench-build/_build/html"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    pages = sorted((args.html / "notebooks").glob("*.html"))
    if not pages:
        raise SystemExit(f"no chapter pages under {args.html}/notebooks: build the book first")
    rows = []
    for page in pages:
        html_bytes, image_bytes = page_weight(page)
        total = html_bytes + image_bytes
        rows.append([f"`{page.stem}`", f"{html_bytes / MB:.2f}", f"{image_bytes / MB:.2f}",
                     f"{total / MB:.2f}", "yes" if total <= GOAL else "**no**"])
    lines = table(["chapter", "HTML (MB)", "images (MB)", "total (MB)", "<= 1.5 MB"], rows,
                  align="lrrrl")
    shared = shared_assets(args.html)
    lines += ["", f"Shared by every page and cached after the first: `_static/` and `_vendor/`, "
              f"{shared / MB:.1f} MB in all (the theme loads only part of it)."]
    renderer = renderer_source().encode()
    lines += ["", f"The explorers' renderer `assets/explorer.js`: {len(renderer) / 1e3:.1f} KB, "
              f"{len(gzip.compress(renderer, 9)) / 1e3:.1f} KB gzipped (goal <= 20 KB)."]
    print(*lines[-3:], sep="\n")
    if not args.no_write:
        write_section(HEADING, [
            f"`benchmarks/bench_page_weight.py`, {machine()}, on `{args.html}`. Weight of "
            "each chapter page: its HTML (explorer data is embedded in it) plus the images "
            "it references.",
            "", *lines,
        ])


if __name__ == "__main__":
    main()
