"""A chapter's explorer in a real JupyterLab (offline, on 127.0.0.1): the anywidget draws, a
slider is answered in the browser, and a typed sentence is answered by the kernel."""

from __future__ import annotations

import re

import pytest

from .lab_session import EXPLORER, jupyterlab, open_and_run, write_notebook

CELLS = [
    "from transformer_tutorial.chapters import ch04_multihead as chapter",
    "chapter.heads_explorer()",
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    write_notebook(root / "heads.ipynb", CELLS)
    with jupyterlab(root) as (base, token):
        yield base, token


def test_explorer_runs_live_in_jupyterlab(browser, lab):
    base, token = lab
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    outside, errors = [], []

    def route(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route(re.compile(r"^(https?|wss?)://"), route)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        open_and_run(page, base, token, "heads.ipynb", explorers=1)
        root = page.locator(EXPLORER).first
        key = root.get_attribute("data-key")
        status = root.locator(".tt-explorer-status").text_content()
        slider = root.locator("input[type=range]").first
        slider.focus()
        slider.press("ArrowLeft")  # 4 heads -> 2 heads, answered in the browser
        assert root.get_attribute("data-key") != key
        assert root.locator(".tt-explorer-status").text_content() != status
        assert "2 heads" in root.locator(".tt-explorer-status").text_content()

        root.locator("input[type=text]").fill("a dog barks at a cat")
        root.locator("input[type=text]").press("Enter")  # through the kernel and back
        page.wait_for_function(
            "el => [...el.querySelectorAll('svg text')].some(t => t.textContent === 'barks')",
            arg=root.element_handle(), timeout=60_000,
        )  # fmt: skip
        assert root.locator("select").first.input_value() == "3"  # the new sentence, chosen
        root.locator("input[type=text]").fill("   ")
        root.locator("input[type=text]").press("Enter")
        assert root.locator(".tt-explorer-status").text_content() == "Type a sentence first."
        root.locator("input[type=text]").fill("x " * 17)  # the toy heads hold 16 tokens
        root.locator("input[type=text]").press("Enter")
        page.wait_for_function(
            "el => el.querySelector('.tt-explorer-status').textContent.includes('16 tokens')",
            arg=root.element_handle(), timeout=60_000,
        )  # fmt: skip
        assert outside == []
        assert errors == []
    finally:
        context.close()
