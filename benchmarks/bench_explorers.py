"""Benchmark 2: from a control change to the redrawn explorer, in Chromium.

* Built book: every explorer of every chapter page (served from ``_build/html`` on
  127.0.0.1), ``--changes`` control changes each to random (seeded) new positions. A change is
  timed in the page from the input event to the renderer's last DOM write (the renderer draws
  synchronously in its event handler).
* Live JupyterLab (a notebook showing three explorers, run by Playwright): browser-side
  control changes timed the same way, and sentences typed into the free-text controls, timed
  from the submit to the redrawn figure (a round trip through the kernel): the toy model of
  chapter 4 and the real MiniLM of chapter 7.

Goals: p95 <= 16 ms (one frame at 60 Hz) for a control change, <= 100 ms through the kernel.

    .venv/bin/python benchmarks/bench_explorers.py [--changes 50] [--no-write]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
from results_md import machine, table, write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "browser"), str(ROOT / "tests")]
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from lab_session import EXPLORER, jupyterlab, open_and_run, write_notebook  # noqa: E402

HEADING = "## Explorer latency in the browser"
FRAME_MS, KERNEL_MS = 16.0, 100.0

# Move one control to a new position and return how long the redraw took (ms).
_CHANGE = """([root, c, v]) => {
  const controls = root.querySelectorAll(
    ".tt-explorer-controls input[type=range], .tt-explorer-controls select");
  const el = controls[c];
  const t = performance.now();
  el.value = String(v);
  el.dispatchEvent(new Event(el.tagName === "SELECT" ? "change" : "input", {bubbles: true}));
  return performance.now() - t;
}"""
_POSITIONS = """root => [...root.querySelectorAll(
  ".tt-explorer-controls input[type=range], .tt-explorer-controls select")].map(el =>
  el.tagName === "SELECT" ? el.options.length : Number(el.max) + 1)"""
# Submit a sentence and wait for the frame the kernel sends back (ms).
_TYPE = """([root, text]) => new Promise(done => {
  const before = root.dataset.key;
  const observer = new MutationObserver(() => {
    if (root.dataset.key !== before) { observer.disconnect(); done(performance.now() - t); }
  });
  observer.observe(root, {attributes: true, attributeFilter: ["data-key"]});
  const input = root.querySelector("input[type=text]");
  input.value = text;
  const t = performance.now();
  input.form.requestSubmit();
})"""


def control_changes(page, root, changes: int, seed: int = 0) -> list[float]:
    """``changes`` redraw times (ms) of one explorer, each after one control moved."""
    rng = np.random.default_rng(seed)
    handle = root.element_handle()
    sizes = page.evaluate(_POSITIONS, handle)
    current = [int(i) for i in root.get_attribute("data-key").split(",")]
    times = []
    for _ in range(changes):
        movable = [c for c, n in enumerate(sizes) if n > 1]
        c = int(rng.choice(movable))
        v = int(rng.choice([p for p in range(sizes[c]) if p != current[c]]))
        current[c] = v
        times.append(page.evaluate(_CHANGE, [handle, c, v]))
    return times


def _row(where: str, name: str, times: list[float], goal: float) -> list[str]:
    p95 = float(np.percentile(times, 95))
    return [where, name, str(len(times)), f"{np.percentile(times, 50):.1f}", f"{p95:.1f}",
            "yes" if p95 <= goal else "**no**"]  # fmt: skip


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def book_rows(browser, html: Path, changes: int) -> list[list[str]]:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rows = []
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for chapter in sorted((html / "notebooks").glob("*.html")):
            url = f"http://127.0.0.1:{server.server_address[1]}/notebooks/{chapter.name}"
            page.goto(url, wait_until="load")
            roots = page.locator(".tt-explorer[data-tt-mounted]")
            for e in range(roots.count()):
                root = roots.nth(e)
                title = root.locator(".tt-explorer-title").text_content()
                times = control_changes(page, root, changes)
                rows.append(_row(f"book, `{chapter.stem}`", title, times, FRAME_MS))
        page.close()
    finally:
        server.shutdown()
    return rows


LAB_CELLS = [
    "from transformer_tutorial.chapters import ch02_attention, ch04_multihead, ch07_stacking",
    "ch02_attention.softmax_temperature()",
    "ch04_multihead.heads_explorer()",
    "ch07_stacking.minilm_layers_explorer()",
]
WORDS = ("the", "cat", "dog", "sat", "ran", "on", "a", "mat", "it", "was", "tired", "happy",
         "because", "and", "saw", "big", "small", "red", "ball", "park")  # fmt: skip


def sentences(count: int, seed: int = 0) -> list[str]:
    """Distinct seeded sentences of 4-10 known words (each one new to the kernel's caches)."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    while len(out) < count:
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(4, 11))))
        if text not in out:
            out.append(text)
    return out


def lab_rows(browser, changes: int, typed: int) -> list[list[str]]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        write_notebook(Path(folder) / "explorers.ipynb", LAB_CELLS)
        with jupyterlab(Path(folder)) as (base, token):
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            open_and_run(page, base, token, "explorers.ipynb", explorers=3, timeout=300_000)
            roots = page.locator(EXPLORER)
            for e in range(roots.count()):
                root = roots.nth(e)
                root.scroll_into_view_if_needed()
                title = root.locator(".tt-explorer-title").text_content()
                rows.append(_row("JupyterLab, in the browser", title,
                                 control_changes(page, root, changes), FRAME_MS))  # fmt: skip
                if root.locator("input[type=text]").count():
                    handle = root.element_handle()
                    page.evaluate(_TYPE, [handle, "warm up the kernel"])
                    times = [page.evaluate(_TYPE, [handle, s]) for s in sentences(typed, e)]
                    rows.append(_row("JupyterLab, typed through the kernel", title, times,
                                     KERNEL_MS))  # fmt: skip
            page.close()
    return rows


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--typed", type=int, default=20)
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not (args.html / "index.html").is_file():
        raise SystemExit(f"no built book in {args.html}: run `make book` first")
    header_line = machine()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        rows = book_rows(browser, args.html, args.changes)
        rows += lab_rows(browser, args.changes, args.typed)
        browser.close()
    header = ["where", "explorer", "changes", "p50 (ms)", "p95 (ms)", "p95 within goal"]
    lines = table(header, rows, align="llrrrl")
    if not args.no_write:
        write_section(HEADING, [
            f"`benchmarks/bench_explorers.py`, {header_line}. Chromium (headless), the time "
            "from a control's input event to the renderer's last DOM write; typed sentences "
            "from the submit to the redrawn figure, through the kernel. Goals: p95 <= "
            f"{FRAME_MS:g} ms for a control, <= {KERNEL_MS:g} ms through the kernel.",
            "", *lines,
        ])  # fmt: skip


if __name__ == "__main__":
    main()
