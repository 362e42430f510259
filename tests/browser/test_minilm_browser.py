"""MiniLM in Chromium (onnxruntime-web, assets/minilm.js) against our Python model.

The site is a temporary folder filled by the same function the book build calls
(:func:`~transformer_tutorial.browser_model.write_site_files`), so no book build is needed;
the export is cached in ``_build/.model_cache`` (shared with ``make book``).
"""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from book_site import NODE_MODULES, ROOT

from transformer_tutorial.browser_model import (
    ATTENTION_TOLERANCE,
    DEMO_PAGE,
    FILE_PROTOCOL_MESSAGE,
    MODEL_DIR,
    serve_folder,
    write_site_files,
)
from transformer_tutorial.chapters.ch07_stacking import minilm_layer_data, similarity_to_anchors
from transformer_tutorial.pretrained import load_minilm
from transformer_tutorial.probing import strongest_heads

CAT = "The cat sat on the mat because it was tired."
SENTENCES = [
    CAT,
    "Crème brûlée, naïve café-goers & 3.14 π-lovers: (a) is just text here!",
    "東京 is big; Straße ist lang. " * 3,
    " ".join(["the quick brown fox jumps over the lazy dog"] * 14),  # 128 tokens
]
# Reads a result's Float32Array as base64 (a fraction of the JSON of the numbers).
READ_ARRAY = """([name]) => {
  const data = window.ttMiniLM.last[name];
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    write_site_files(folder, NODE_MODULES, ROOT / "_build" / ".model_cache")
    return folder


@pytest.fixture(scope="module")
def served(site):
    with serve_folder(site) as url:
        yield url


@pytest.fixture(scope="module")
def page(browser, served):
    """The demo page, with every request, console error and page error recorded."""
    context = browser.new_context()
    page = context.new_page()
    page.requests, page.problems = [], []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.goto(f"{served}{MODEL_DIR}/{DEMO_PAGE}")
    yield page
    context.close()


def type_and_run(page, text: str) -> dict:
    """Type ``text``, press the button, wait for the page's answer: its result or error."""
    page.fill("#tt-minilm-text", text)
    page.evaluate("window.ttMiniLM.last = null; window.ttMiniLM.error = null")
    page.click("#tt-minilm-run")
    page.wait_for_function("window.ttMiniLM.last || window.ttMiniLM.error", timeout=120_000)
    return page.evaluate(
        "({error: window.ttMiniLM.error, tokens: window.ttMiniLM.last?.tokens,"
        " n: window.ttMiniLM.last?.n, status: document.querySelector('#tt-minilm-status')"
        ".textContent, kind: document.querySelector('#tt-minilm-status').dataset.kind})"
    )


def read_array(page, name: str, shape: tuple[int, ...]) -> np.ndarray:
    raw = base64.b64decode(page.evaluate(READ_ARRAY, [name]))
    return np.frombuffer(raw, dtype="<f4").reshape(shape)


@pytest.mark.parametrize("text", SENTENCES)
def test_typed_sentence_gives_the_python_models_attention(page, text):
    answer = type_and_run(page, text)
    assert answer["error"] is None, answer
    run = load_minilm().encode(text)
    assert answer["tokens"] == list(run.text.tokens)
    n = answer["n"]
    attentions = read_array(page, "attentions", (6, 12, n, n))
    worst = np.abs(attentions - run.record.weights).max(axis=(2, 3))  # per layer and head
    assert worst.shape == (6, 12)
    layer, head = np.unravel_index(worst.argmax(), worst.shape)
    assert worst.max() <= ATTENTION_TOLERANCE, f"worst: layer {layer}, head {head}"
    hidden = read_array(page, "hidden", (7, n, 384))
    np.testing.assert_allclose(hidden, run.hidden_states, atol=1e-2)
    assert "tokens" in answer["status"] and answer["kind"] == "done"


def test_progress_counts_the_bytes_to_fetch(page):
    type_and_run(page, CAT)
    progress = page.evaluate("window.ttMiniLM.progress")
    loaded = [p[0] for p in progress]
    assert loaded == sorted(loaded) and len(progress) > 3
    assert progress[-1][0] == progress[-1][1] > 59e6  # model + vocabulary + runtime wasm


def test_over_128_tokens_is_refused_with_a_message(page):
    answer = type_and_run(page, "word " * 127)  # 129 tokens with [CLS] and [SEP]
    assert answer["error"]["kind"] == "too-long"
    assert answer["status"].startswith("the text has 129 tokens;")
    assert "at most 128" in answer["status"]


def test_unknown_characters_are_named_as_python_names_them(page):
    text = "I love 🤖 robots ☃"
    with pytest.raises(ValueError) as python_error:
        load_minilm().tokenize(text)
    answer = type_and_run(page, text)
    assert answer["error"]["kind"] == "unknown"
    assert answer["status"] == str(python_error.value)


def test_rejected_text_gets_the_python_message(page):
    text = "zero\u200bwidth"
    with pytest.raises(ValueError) as python_error:
        load_minilm().tokenize(text)
    answer = type_and_run(page, text)
    assert answer["error"]["kind"] == "text"
    assert answer["status"] == str(python_error.value)


def test_strongest_heads_equal_the_python_ranking(page):
    type_and_run(page, CAT)
    links = page.evaluate(
        "window.ttMiniLM.lib.strongestHeads(window.ttMiniLM.last, 'it', 'cat', 5)"
    )
    expected = strongest_heads(load_minilm().attention(CAT), "it", "cat", top=5)
    assert [(x["layer"], x["head"]) for x in links[:3]] == [(e.layer, e.head) for e in expected[:3]]
    weights = [x["weight"] for x in links]
    np.testing.assert_allclose(weights, [e.weight for e in expected], atol=ATTENTION_TOLERANCE)


def test_apple_experiment_equals_python(page):
    tech, companies = "apple released a new phone at its keynote", ["microsoft", "google"]
    got = page.evaluate(
        "([t, a]) => window.ttMiniLM.model.similarityByLayer(t, 'apple', a)", [tech, companies]
    )
    expected = similarity_to_anchors(load_minilm(), tech, "apple", companies)
    np.testing.assert_allclose(got, expected, atol=5e-3)


def test_frames_follow_the_explorer_data_format(page):
    type_and_run(page, CAT)
    frames = page.evaluate(
        """() => { const lib = window.ttMiniLM.lib, r = window.ttMiniLM.last;
        return [lib.layerHeadsFrame(r, 3), lib.strongestHeadsFrame(r, 'it', 'cat', 5),
                lib.similarityFrame({'a': [0.1, 0.5], 'b': [0.2, 0.3]}, 'apple')]; }"""
    )
    grid, bars, lines = frames
    for frame in frames:
        assert set(frame) >= {"title", "description", "panels"} and frame["description"]
    items = grid["panels"][0]["items"]
    assert grid["panels"][0]["kind"] == "grid" and len(items) == 12
    weights = load_minilm().attention(CAT).weights
    assert items[5]["rows"] == items[5]["cols"] and len(items[5]["rows"]) == 13
    np.testing.assert_allclose(items[5]["values"], weights[3, 5], atol=ATTENTION_TOLERANCE)
    # the frame the Python explorer computes, field for field (values within the tolerance)
    python = minilm_layer_data(CAT, 3)
    assert grid["description"] == python["description"] and grid["title"] == python["title"]
    ours, theirs = grid["panels"][0], python["panels"][0]
    assert {k: v for k, v in ours.items() if k != "items"} == {
        k: v for k, v in theirs.items() if k != "items"}
    for mine, reference in zip(ours["items"], theirs["items"], strict=True):
        assert {k: v for k, v in mine.items() if k != "values"} == {
            k: v for k, v in reference.items() if k != "values"}
        np.testing.assert_allclose(mine["values"], reference["values"], atol=ATTENTION_TOLERANCE)
    assert bars["panels"][0]["kind"] == "bars" and len(bars["panels"][0]["values"]) == 5
    assert lines["panels"][0]["kind"] == "lines" and lines["panels"][0]["x"] == [0, 1]


def test_nothing_leaves_the_local_server_and_no_console_errors(page, served):
    type_and_run(page, CAT)
    assert page.requests and all(url.startswith(served) for url in page.requests), {
        url for url in page.requests if not url.startswith(served)
    }
    assert page.problems == []


def test_opened_from_a_file_the_page_explains_make_serve(browser, site):
    context = browser.new_context()
    page = context.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto((site / MODEL_DIR / DEMO_PAGE).as_uri())
    status = page.locator("#tt-minilm-status")
    assert status.text_content() == FILE_PROTOCOL_MESSAGE
    assert "make serve" in FILE_PROTOCOL_MESSAGE
    assert page.locator("#tt-minilm-run").is_disabled()
    assert not any("model." in url for url in requests)
    context.close()


def test_the_head_grid_refuses_more_tokens_than_the_python_explorer(page):
    from transformer_tutorial.chapters.ch07_stacking import MINILM_MAX_GRID_TOKENS

    text = "the cat sat on the mat because it was tired " * 3
    type_and_run(page, text)
    frame = page.evaluate("window.ttMiniLM.lib.layerHeadsFrame(window.ttMiniLM.last, 0)")
    assert page.evaluate("window.ttMiniLM.lib.MAX_GRID_TOKENS") == MINILM_MAX_GRID_TOKENS
    with pytest.raises(ValueError) as python_error:
        minilm_layer_data(text, 0)
    assert frame == {"error": str(python_error.value)}


# -- Chapter 7 of the built book: the analyses of the reader's sentence ---------------------

TECH = "apple released a new phone at its keynote"
COMPANIES, FRUITS = ["microsoft", "google", "samsung", "intel"], ["banana", "orange", "pear"]
# The section under chapter 7's explorer, as the page holds it: the two frames it drew, and
# the values of the bars drawn.
_ANALYSES = """root => {
  const a = root.ttAnalyses;
  const bars = [...a.heads.box.querySelectorAll("rect.tt-bar")].map(r => +r.dataset.value);
  const status = [...a.section.querySelectorAll(".tt-analysis-status")].map(e => e.textContent);
  return {heads: a.heads.frame, words: a.words.frame, bars, status};
}"""


@pytest.fixture(scope="module")
def chapter_7(browser, site_url):
    """Chapter 7 of the built book with a typed sentence analysed in the page; every request
    and console or page error recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.requests, page.problems = [], []
    page.on("request", lambda request: page.requests.append(request.url))
    # The browser's own request for /favicon.ico (the book declares no icon) 404s: not the page's.
    page.on("console", lambda m: m.type == "error" and not m.location["url"].endswith(
        "/favicon.ico") and page.problems.append(m.text))  # fmt: skip
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.goto(site_url + "notebooks/07_stacking_layers.html")
    root = page.locator(".tt-explorer[data-tt-mounted]").filter(
        has=page.locator("input[type=text]")).first  # fmt: skip
    root.locator("input[type=text]").fill(TECH)
    root.locator("input[type=text]").press("Enter")
    page.wait_for_function(
        "el => el.ttAnalyses && el.ttAnalyses.words.frame", arg=root.element_handle(),
        timeout=120_000,
    )  # fmt: skip
    page.root = root
    yield page
    context.close()


def _analyses(page) -> dict:
    return page.root.evaluate(_ANALYSES)


def _ranking_equals_python(page, query: int, key: int) -> None:
    """The page's top 5 heads for query -> key are Python's, in Python's order (heads whose
    weights differ by less than the tolerance may swap: at each rank the page's head has
    Python's weight there), with the weights within the tolerance."""
    shown = _analyses(page)
    frame = shown["heads"]["panels"][0]
    record = load_minilm().attention(TECH)
    expected = strongest_heads(record, query, key, top=5)
    heads = [tuple(map(int, re.findall(r"\d+", label))) for label in frame["labels"]]
    assert len(heads) == len(expected) == 5
    for rank, ((layer, head), python) in enumerate(zip(heads, expected, strict=True)):
        weight = record.weights[layer, head, query, key]
        assert abs(weight - python.weight) <= ATTENTION_TOLERANCE, (rank, heads, expected)
    np.testing.assert_allclose(frame["values"], [e.weight for e in expected],
                               atol=ATTENTION_TOLERANCE)  # fmt: skip
    assert shown["bars"] == frame["values"]  # drawn as the frame says
    assert shown["status"][0] == shown["heads"]["description"]


def test_chapter_7_ranks_each_heads_strongest_word_as_python_does(chapter_7):
    """The default ranking: for the picked token, each head's strongest other word (not
    [CLS]/[SEP], not itself), the five strongest heads: Python's heads in Python's order (up to
    ties within the tolerance), each pointing to the word Python's head gives the most."""
    page = chapter_7
    record = load_minilm().attention(TECH)
    tokens, query = list(record.query_tokens), list(record.query_tokens).index("its")
    section = page.locator(".tt-explorer-analyses")
    section.locator("select").nth(0).select_option(label="its")
    assert section.locator("select").nth(1).input_value() == "any"
    frame = _analyses(page)["heads"]["panels"][0]
    keys = [j for j, t in enumerate(tokens) if j != query and t not in ("[CLS]", "[SEP]")]
    strongest = record.weights[:, :, query, keys].max(axis=-1)  # (layers, heads)
    expected = np.sort(strongest, axis=None)[::-1][:5]
    for rank, label in enumerate(frame["labels"]):
        layer, head, word = re.fullmatch(r"layer (\d+), head (\d+) → '(.+)'", label).groups()
        layer, head = int(layer), int(head)
        assert abs(strongest[layer, head] - expected[rank]) <= ATTENTION_TOLERANCE, (rank, label)
        to_word = record.weights[layer, head, query, [j for j in keys if tokens[j] == word]]
        assert abs(to_word.max() - strongest[layer, head]) <= ATTENTION_TOLERANCE, label
    np.testing.assert_allclose(frame["values"], expected, atol=ATTENTION_TOLERANCE)
    assert _analyses(page)["bars"] == frame["values"]
    assert page.problems == []


def test_chapter_7_ranks_the_heads_for_a_picked_pair_as_python_does(chapter_7):
    page, root = chapter_7, chapter_7.root
    tokens = load_minilm().tokenize(TECH).tokens
    section = page.locator(".tt-explorer-analyses")
    section.locator("select").nth(0).select_option(label="its")
    section.locator("select").nth(1).select_option(label="apple")
    _ranking_equals_python(page, tokens.index("its"), tokens.index("apple"))
    # A click on a cell of a head picks its row (query) and column (key).
    row, col = tokens.index("phone"), tokens.index("released")
    root.locator(f'rect.tt-cell[data-row="{row}"][data-col="{col}"]').first.click()
    assert section.locator("select").nth(0).input_value() == str(row)
    assert section.locator("select").nth(1).input_value() == str(col)
    _ranking_equals_python(page, row, col)
    assert page.problems == []


def test_chapter_7_apple_experiment_equals_python(chapter_7):
    page = chapter_7
    section = page.locator(".tt-explorer-analyses")
    section.locator("select").nth(2).select_option(label="apple")
    page.wait_for_function(
        "el => el.ttAnalyses.words.frame?.title.startsWith(\"'apple'\")",
        arg=page.root.element_handle(), timeout=60_000,
    )  # fmt: skip
    minilm = load_minilm()
    for groups in ([COMPANIES, FRUITS], [["pie", "cake"], ["phone", "laptop"]]):
        for k, group in enumerate(groups):
            section.locator("input[type=text]").nth(k).fill(", ".join(group))
        section.get_by_role("button", name="Compare").click()
        page.wait_for_function(
            "([el, name]) => el.ttAnalyses.words.frame?.panels[0].series[0].name === name",
            arg=[page.root.element_handle(), f"vs {', '.join(groups[0])}"], timeout=60_000,
        )  # fmt: skip
        shown = _analyses(page)
        series = shown["words"]["panels"][0]["series"]
        for curve, group in zip(series, groups, strict=True):
            expected = similarity_to_anchors(minilm, TECH, "apple", group)
            np.testing.assert_allclose(curve["y"], expected, atol=ATTENTION_TOLERANCE)
        assert shown["status"][1] == shown["words"]["description"]
    # An anchor the vocabulary splits is refused with a message, not drawn.
    section.locator("input[type=text]").nth(0).fill("zzyzx")
    section.get_by_role("button", name="Compare").click()
    page.wait_for_function(
        "el => el.ttAnalyses.words.frame === null", arg=page.root.element_handle(),
        timeout=60_000,
    )  # fmt: skip
    assert "zzyzx" in _analyses(page)["status"][1]
    assert page.problems == []


def test_chapter_7_analyses_fetch_nothing_from_elsewhere(chapter_7, site_url):
    assert chapter_7.requests and all(u.startswith(site_url) for u in chapter_7.requests), {
        u for u in chapter_7.requests if not u.startswith(site_url)
    }
