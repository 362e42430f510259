"""The explorer machinery: one declaration, a live widget and a static viewer that agree."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from transformer_tutorial import plots
from transformer_tutorial.attention import softmax
from transformer_tutorial.explorers import (
    MAX_STATIC_FRAMES,
    STATIC_ENV_VAR,
    Control,
    Explorer,
)

SCORES = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]])
TOKENS = ["a", "b", "<img src=x onerror=alert(1)>"]


def _draw(temperature: float, title: str) -> Figure:
    if title == "bad":
        raise ValueError("this title cannot be drawn")
    return plots.attention_heatmap(softmax(SCORES, temperature), TOKENS, TOKENS, title=title)


@pytest.fixture
def explorer() -> Explorer:
    return Explorer(
        "Temperature",
        (
            Control("temperature", (0.5, 1.0, 2.0), "T", default=1.0),
            Control("title", ("one", "two", "bad"), "title"),
        ),
        _draw,
        caption="Lower T sharpens <b>every</b> row.",
    )


def _shown_weights(fig: Figure) -> np.ndarray:
    return np.asarray(fig.axes[0].images[0].get_array())


def test_figure_uses_defaults_and_overrides(explorer):
    np.testing.assert_allclose(_shown_weights(explorer.figure()), softmax(SCORES, 1.0))
    np.testing.assert_allclose(
        _shown_weights(explorer.figure(temperature=0.5)), softmax(SCORES, 0.5)
    )


def test_values_are_checked(explorer):
    with pytest.raises(ValueError, match=r"temperature must be one of \[0.5, 1.0, 2.0\]"):
        explorer.figure(temperature=3.0)
    with pytest.raises(ValueError, match="unknown control"):
        explorer.figure(colour="red")


def test_declaration_errors():
    with pytest.raises(ValueError, match="at least one value"):
        Control("x", ())
    with pytest.raises(ValueError, match="default of 'x' must be one of"):
        Control("x", (1, 2), default=3)
    with pytest.raises(ValueError, match="identifier"):
        Control("not a name", (1,))
    with pytest.raises(ValueError, match=f"at most {MAX_STATIC_FRAMES}"):
        Explorer("big", (Control("a", tuple(range(10))), Control("b", tuple(range(10)))), _draw)
    with pytest.raises(ValueError, match="unique"):
        Explorer("dup", (Control("a", (1,)), Control("a", (2,))), _draw)


def test_slider_or_dropdown():
    assert Control("t", (0.5, 1.0)).is_slider
    assert not Control("w", ("cat", "dog")).is_slider
    assert not Control("flag", (True, False)).is_slider
    assert not Control("s", ("a",), free_text=True).is_slider


def test_png_is_deterministic_and_cached(explorer):
    first = explorer.png(temperature=0.5)
    assert first.startswith(b"\x89PNG")
    assert explorer.png(temperature=0.5) is first
    fresh = Explorer(explorer.title, explorer.controls, explorer.draw)
    assert fresh.png(temperature=0.5) == first
    assert fresh.png(temperature=2.0) != first


def test_widget_redraws_on_each_control(explorer):
    box = explorer.widget()
    header, controls, message, image = box.children[:4]
    slider, dropdown = controls.children
    assert type(slider).__name__ == "SelectionSlider"
    assert type(dropdown).__name__ == "Dropdown"
    assert image.value == explorer.png()
    slider.value = 0.5
    assert image.value == explorer.png(temperature=0.5)
    dropdown.value = "two"
    assert image.value == explorer.png(temperature=0.5, title="two")
    assert message.value == ""


def test_widget_shows_a_message_not_a_traceback(explorer):
    box = explorer.widget()
    _, controls, message, image = box.children[:4]
    controls.children[1].value = "bad"
    assert "this title cannot be drawn" in message.value
    assert image.layout.display == "none"
    controls.children[1].value = "one"
    assert message.value == "" and image.layout.display is None


def _frames(html: str) -> dict:
    match = re.search(
        r'<script type="application/json" class="tt-explorer-data">(.*?)</script>', html, re.S
    )
    assert match, "the viewer carries its frames as JSON"
    return json.loads(match.group(1))


def test_static_viewer_holds_the_live_pngs(explorer):
    html = explorer.static_html()
    data = _frames(html)
    assert len(data["frames"]) == 9
    assert base64.b64decode(data["frames"]["0,1"]["png"]) == explorer.png(
        temperature=0.5, title="two"
    )
    assert data["frames"]["2,2"]["error"] == "this title cannot be drawn"
    assert data["labels"] == [["0.5", "1", "2"], ["one", "two", "bad"]]
    assert '<input type="range" min="0" max="2" step="1" value="1"' in html
    assert "<select" in html and "http" not in html


def test_static_viewer_escapes_text():
    tricky = "<img src=x onerror=alert(1)>"
    explorer = Explorer(
        f"Title {tricky}",
        (Control("word", (tricky, "</script><script>alert(2)</script>")),),
        lambda word: plots.attention_heatmap(np.ones((1, 1)), ["q"], ["k"]),
        caption=tricky,
    )
    html = explorer.static_html()
    assert tricky not in html
    assert "</script><script>" not in html.replace("</script>\n<script>", "")
    assert html.count("<img ") == 1
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_mime_bundle_is_chosen_by_environment(explorer, monkeypatch):
    monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    live = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in live
    assert "text/html" not in live
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    static = explorer._repr_mimebundle_()
    assert set(static) == {"text/html", "text/plain"}
    assert static["text/plain"] == "Temperature (T = 1, title = one)"
