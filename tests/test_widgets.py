"""The explorer machinery: one declaration, figure data out, a live widget and a static page
that carry the same data."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from transformer_tutorial.attention import softmax
from transformer_tutorial.widgets import (
    STATIC_ENV_VAR,
    Control,
    Explorer,
    ExplorerWidget,
    bars,
    frame,
    head_grid,
    heatmap,
    histogram,
    lines,
    renderer_source,
)

SCORES = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]])
TOKENS = ["a", "b", "<img src=x onerror=alert(1)>"]


def _data(temperature: float, title: str) -> dict:
    if title == "bad":
        raise ValueError("this title cannot be drawn")
    weights = softmax(SCORES, temperature)
    return frame(heatmap(weights, TOKENS, TOKENS, title=title),
                 description=f"largest weight {weights.max():.2f}")  # fmt: skip


@pytest.fixture
def explorer() -> Explorer:
    return Explorer(
        "Temperature",
        (
            Control("temperature", (0.5, 1.0, 2.0), "T", default=1.0),
            Control("title", ("one", "two", "bad"), "title"),
        ),
        _data,
        caption="Lower T sharpens <b>every</b> row.",
    )


def _script_json(page: str) -> dict:
    match = re.search(r'<script type="application/json" class="tt-explorer-data">(.*?)</script>',
                      page, re.S)  # fmt: skip
    assert match, "no data script in the page"
    return json.loads(match.group(1))


def test_data_uses_defaults_and_overrides(explorer):
    shown = explorer.data()["panels"][0]["values"]
    np.testing.assert_allclose(shown, softmax(SCORES, 1.0), atol=5e-5)
    shown = explorer.data(temperature=0.5)["panels"][0]["values"]
    np.testing.assert_allclose(shown, softmax(SCORES, 0.5), atol=5e-5)


def test_values_are_checked(explorer):
    with pytest.raises(ValueError, match=r"temperature must be one of \[0.5, 1.0, 2.0\]"):
        explorer.data(temperature=3.0)
    with pytest.raises(ValueError, match="unknown control"):
        explorer.data(colour="red")


def test_declaration_errors():
    with pytest.raises(ValueError, match="identifier"):
        Control("two words", (1, 2))
    with pytest.raises(ValueError, match="at least one value"):
        Control("x", ())
    with pytest.raises(ValueError, match="repeated"):
        Control("x", (1, 1))
    with pytest.raises(ValueError, match="default of 'x'"):
        Control("x", (1, 2), default=3)
    with pytest.raises(ValueError, match="at least one control"):
        Explorer("t", (), _data)
    with pytest.raises(ValueError, match="unique"):
        Explorer("t", (Control("x", (1,)), Control("x", (2,))), _data)


def test_control_kinds():
    assert Control("x", (1, 2.5)).kind == "slider"
    assert Control("x", ("a", "b")).kind == "select"
    assert Control("x", (True, False)).kind == "select"
    assert Control("x", ("a sentence",), free_text=True).kind == "text"


def test_spec_holds_every_frame_of_the_grid(explorer):
    spec = explorer.spec()
    assert spec["title"] == "Temperature" and spec["caption"].startswith("Lower T")
    temperature, title = spec["controls"]
    assert temperature == {"name": "temperature", "label": "T", "kind": "slider",
                           "labels": ["0.5", "1", "2"], "index": 1}  # fmt: skip
    assert title["kind"] == "select" and title["index"] == 0
    assert set(spec["frames"]) == {f"{i},{j}" for i in range(3) for j in range(3)}
    assert spec["frames"]["0,2"] == {"error": "this title cannot be drawn"}
    shown = spec["frames"]["2,1"]["panels"][0]
    assert shown["title"] == "two" and shown["rows"] == TOKENS
    np.testing.assert_allclose(shown["values"], softmax(SCORES, 2.0), atol=5e-5)
    assert explorer.size == 9


def test_numbers_are_rounded_finite_and_checked():
    panel = heatmap([[0.123456, 1 / 3]], ["q"], ["a", "b"])
    assert panel["values"] == [[0.1235, 0.3333]]
    assert panel["annotate"] is True and panel["vmin"] == 0.0 and panel["vmax"] == 1.0
    with pytest.raises(ValueError, match="finite"):
        heatmap([[np.nan]], ["q"], ["k"])
    with pytest.raises(ValueError, match="rows needs 2 labels"):
        heatmap(np.ones((2, 2)), ["q"], ["a", "b"])
    with pytest.raises(ValueError, match="mask must have the shape"):
        heatmap(np.ones((2, 2)), list("ab"), list("ab"), mask=np.ones((2, 3)))
    signed = heatmap([[-2.0, 1.0]], ["q"], ["a", "b"], colormap="diverging")
    assert (signed["vmin"], signed["vmax"]) == (-2.0, 2.0)


def test_panel_builders():
    grid = head_grid(np.full((12, 3, 3), 1 / 3), list("abc"))
    assert grid["per_page"] == 4 and len(grid["items"]) == 12
    assert grid["items"][11]["title"] == "head 11"
    assert head_grid(np.ones((2, 3, 3)) / 3, list("abc"))["per_page"] is None  # all fit
    with pytest.raises(ValueError, match=r"\(heads, q_len, k_len\)"):
        head_grid(np.ones((3, 3)), list("abc"))
    chart = bars([0.5, -0.25], ["x", "y"], colors="sign")
    assert (chart["vmin"], chart["vmax"]) == (-0.25, 0.5)
    with pytest.raises(ValueError, match="labels needs 2 labels"):
        bars([1.0, 2.0], ["x"])
    curve = lines([0, 1, 2], {"a": [1, 2, 3], "b": [0, 0, 0]}, styles={"b": "dashed"},
                  xmarker=1)  # fmt: skip
    assert [s["style"] for s in curve["series"]] == ["solid", "dashed"]
    assert (curve["ymin"], curve["ymax"], curve["xmarker"]) == (0, 3, 1.0)
    with pytest.raises(ValueError, match="has 2 values for 3 x values"):
        lines([0, 1, 2], {"a": [1, 2]})
    hist = histogram([-500.0, 0.1, 0.2, 9.0], bins=4, value_range=(-10.0, 10.0))
    assert hist["counts"] == [1, 0, 2, 1] and hist["edges"][0] == -10.0  # outliers clipped
    with pytest.raises(ValueError, match="widths needs 1"):
        frame(chart, description="d", widths=(1, 2))


def test_static_page_carries_the_data_and_the_renderer(explorer):
    page = explorer.static_html()
    assert _script_json(page) == json.loads(json.dumps(explorer.spec()))
    assert renderer_source() in page and page.rstrip().endswith("mountStatic();</script></div>")
    assert "<img" not in page.split("<script")[0] + page.split("</script>")[1]  # escaped
    assert "\\u003cimg src=x" in page and "<b>every</b>" not in page
    assert "<noscript><p>Temperature: largest weight" in page


def test_mime_bundle_is_chosen_by_environment(explorer, monkeypatch):
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    static = explorer._repr_mimebundle_()
    assert set(static) == {"text/html", "text/plain"}
    monkeypatch.delenv(STATIC_ENV_VAR)
    live, _metadata = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in live
    assert live["text/html"] == static["text/html"]  # the fallback for viewers without JS


def test_widget_state_round_trips(explorer):
    widget = explorer.widget()
    state = widget.get_state()
    assert state["_esm"] == renderer_source()
    assert json.loads(json.dumps(state["spec"])) == json.loads(json.dumps(explorer.spec()))
    clone = ExplorerWidget(explorer)
    clone.set_state(json.loads(json.dumps(state)))
    assert clone.spec == widget.spec


def _text_explorer() -> Explorer:
    def data(sentence: str, upper: bool) -> dict:
        words = sentence.split()
        if not words:
            raise ValueError("the sentence is empty: type a few words")
        shown = [w.upper() if upper else w for w in words]
        return frame(bars(np.arange(len(words), dtype=float), shown), description=" ".join(shown))

    return Explorer("Words", (Control("sentence", ("a b", "c d e"), free_text=True),
                              Control("upper", (False, True))), data)  # fmt: skip


def test_typed_text_is_answered_with_its_frames():
    widget = _text_explorer().widget()
    reply = widget.answer(0, "  the reader's own words  ")
    assert reply["type"] == "frames" and reply["index"] == 2
    assert reply["text"] == "the reader's own words"
    assert set(reply["frames"]) == {"2,0", "2,1"}
    assert reply["frames"]["2,1"]["description"] == "THE READER'S OWN WORDS"
    assert widget.answer(0, "the reader's own words")["index"] == 2  # asked again: same index
    assert widget.answer("sentence", "more")["index"] == 3  # by name, as explorer.js sends
    empty = widget.answer(0, "   ")
    assert empty == {"type": "error", "control": 0, "text": "",
                     "message": "the sentence is empty: type a few words"}  # fmt: skip
    assert widget.answer(1, "x")["type"] == "error"  # not a text control
    assert widget.answer(7, "x")["type"] == "error"


def test_typed_text_message_round_trip(monkeypatch):
    widget = _text_explorer().widget()
    sent = []
    monkeypatch.setattr(widget, "send", sent.append)
    widget._on_message(widget, {"type": "text", "control": 0, "text": "x y"}, [])
    assert sent[0]["type"] == "frames" and sent[0]["frames"]["2,0"]["description"] == "x y"
    widget._on_message(widget, {"type": "something else"}, [])
    assert len(sent) == 1


def test_free_text_value_must_be_a_string():
    with pytest.raises(TypeError, match="sentence must be a string"):
        _text_explorer().data(sentence=3)
