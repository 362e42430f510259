"""bertviz adapters: no CDN left, tokens escaped, both the live and the book form."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from transformer_tutorial import bertviz_views
from transformer_tutorial.record import AttentionRecord
from transformer_tutorial.widgets import STATIC_ENV_VAR

EVIL = "</script><img src=x onerror=alert(1)>"
TOKENS = ["the", EVIL, "sat", "."]


def _record(kind: str = "self") -> AttentionRecord:
    rng = np.random.default_rng(0)
    weights = rng.random((2, 3, 4, 4))
    weights /= weights.sum(axis=-1, keepdims=True)
    keys = TOKENS if kind == "self" else ["le", "chat", "assis", "."]
    return AttentionRecord(weights, TOKENS, keys, kind=kind)


def _params(html: str) -> dict:
    match = re.search(r"const params = (.*);$", html, re.MULTILINE)
    assert match is not None
    return json.loads(match[1])


@pytest.mark.parametrize("view", [bertviz_views.head_view, bertviz_views.model_view])
def test_live_view_inlines_every_script(view, monkeypatch):
    monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    html = view(_record())._repr_html_()
    assert "cdn" not in html.lower()
    assert "<script src" not in html  # nothing to fetch: every library is inline
    assert "require.config({" not in html  # bertviz's CDN paths are gone
    assert 'define("d3"' in html and "jQuery.noConflict(true)" in html
    assert html.count("@license RequireJS 2.3.8") == 1


@pytest.mark.parametrize("view", [bertviz_views.head_view, bertviz_views.model_view])
def test_book_view_loads_scripts_from_the_site(view, monkeypatch):
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    html = view(_record())._repr_html_()
    marker = bertviz_views.VENDOR_URL_MARKER
    assert re.findall(r'<script src="([^"]+)"', html) == [marker + "requirejs/require.js"]
    assert f'"d3": "{marker}d3/d3.min"' in html
    assert f'"jquery": "{marker}jquery/jquery.min"' in html
    assert "cdn" not in html.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert len(html) < 40_000  # the libraries are not inlined in the book


@pytest.mark.parametrize("static", [False, True])
def test_tokens_cannot_close_the_script(static, monkeypatch):
    if static:
        monkeypatch.setenv(STATIC_ENV_VAR, "1")
    else:
        monkeypatch.delenv(STATIC_ENV_VAR, raising=False)
    html = bertviz_views.head_view(_record())._repr_html_()
    assert EVIL not in html
    assert "<img" not in html
    # ...yet the view receives the token unchanged.
    params = _params(html)
    assert params["attention"][0]["left_text"] == TOKENS
    assert params["attention"][0]["right_text"] == TOKENS


def test_attention_values_reach_bertviz_unchanged(monkeypatch):
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    record = _record()
    params = _params(bertviz_views.head_view(record)._repr_html_())
    attn = np.array(params["attention"][0]["attn"])  # (layers, heads, q, k)
    np.testing.assert_allclose(attn, record.weights, rtol=1e-6)


def test_cross_attention_puts_decoder_tokens_on_the_left(monkeypatch):
    monkeypatch.setenv(STATIC_ENV_VAR, "1")
    record = _record(kind="cross")
    params = _params(bertviz_views.head_view(record)._repr_html_())
    (cross,) = params["attention"]
    assert cross["left_text"] == TOKENS  # queries: the decoder
    assert cross["right_text"] == ["le", "chat", "assis", "."]


def test_bad_input_names_what_is_expected():
    with pytest.raises(ValueError, match="AttentionRecord"):
        bertviz_views.head_view(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="light"):
        bertviz_views.model_view(_record(), display_mode="blue")
    mixed = AttentionRecord(np.full((1, 1, 2, 2), 0.5), ["a", "b"], ["c", "d"])
    with pytest.raises(ValueError, match="kind='cross'"):
        bertviz_views.head_view(mixed)
