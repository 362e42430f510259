"""bertviz's head and model views of an :class:`~transformer_tutorial.record.AttentionRecord`,
with no CDN.

bertviz's views load require.js 2.3.6, d3 5.7.0 and jQuery 2.0.0 from cdnjs, so offline,
behind a firewall or in CI they show an empty panel (bertviz issues #26, #53, #63). These
adapters call bertviz with ``html_action="return"`` and point its three scripts at copies the
book controls, pinned in ``package.json`` (``requirejs@2.3.8``, ``d3@5.7.0``, ``jquery@2``):

* **in a live kernel** (JupyterLab, VS Code, classic Notebook) the scripts are inlined into the
  output from ``transformer_tutorial/assets/`` (shipped with the package, byte-identical to
  the npm files: ``tests/test_book.py`` checks it), so ``make lab`` works with no build, no
  network and no server route; it costs ≈ 410 kB per view in the saved notebook;
* **in the built book** (:data:`~transformer_tutorial.widgets.STATIC_ENV_VAR` set) they are
  ``<script src>`` URLs into the site's ``_vendor/`` folder, which the book's Sphinx extension
  fills from ``node_modules`` and writes into every page as that page's relative path, so each
  page stays light and the browser caches the libraries across pages.

Tokens are escaped: bertviz writes them into a ``<script>`` as raw JSON, where a token such as
``</script>`` would end the script; here ``<``, ``>`` and ``&`` in that JSON are ``\\u``-escaped.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from IPython.display import HTML

from transformer_tutorial import checks
from transformer_tutorial.widgets import STATIC_ENV_VAR

if TYPE_CHECKING:
    from transformer_tutorial.record import AttentionRecord

__all__ = ["head_view", "model_view", "VENDOR_URL_MARKER"]

# Where the book's Sphinx extension writes each page's relative URL of the site's _vendor/.
VENDOR_URL_MARKER = "__TT_VENDOR_URL__/"
# Files in transformer_tutorial/assets/ and, in the built site, under _vendor/.
_ASSETS = {
    "requirejs": ("require.js", "requirejs/require.js"),
    "jquery": ("jquery.min.js", "jquery/jquery.min.js"),
    "d3": ("d3.min.js", "d3/d3.min.js"),
}
_PATHS = ("jquery", "d3")  # the modules bertviz's script requires
_CDN_REQUIRE = re.compile(
    r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/require\.js/[\d.]+/require\.min\.js">'
    r"</script>"
)
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{\s*paths:\s*\{[^{}]*\}\s*\}\);")
# bertviz fills its template marker twice on this line (the code and the comment after it).
_PARAMS = re.compile(
    r"^(\s*const params = )(.*) is a template marker that is replaced by actual params\.$",
    re.MULTILINE,
)
_PARAMS_SEPARATOR = "; // HACK: "


def head_view(
    record: AttentionRecord, layer: int | None = None, heads: Sequence[int] | None = None
) -> HTML:
    """bertviz's head view: lines from every token to the tokens it attends to, per layer,
    coloured by head. ``layer`` is the layer shown first; ``heads`` the heads selected first
    (all by default). Displays as HTML in a notebook and in the book."""
    from bertviz import head_view as bertviz_head_view

    kwargs = _attention_kwargs(record)
    if layer is not None:
        layer = checks.int_in_range(layer, "layer", 0, record.num_layers - 1)
    if heads is not None:
        if isinstance(heads, str | bytes) or not isinstance(heads, Sequence | range):
            raise ValueError(
                f"heads must be a list of head indices in [0, {record.num_heads - 1}], "
                f"got {heads!r}"
            )
        heads = [checks.int_in_range(h, "heads", 0, record.num_heads - 1) for h in heads]
    return _offline(bertviz_head_view(**kwargs, layer=layer, heads=heads, html_action="return"))


def model_view(record: AttentionRecord, display_mode: str = "light") -> HTML:
    """bertviz's model view: a thumbnail of every head of every layer; click one to enlarge.
    ``display_mode`` is ``"light"`` or ``"dark"``."""
    from bertviz import model_view as bertviz_model_view

    checks.one_of(display_mode, "display_mode", ("light", "dark"))
    kwargs = _attention_kwargs(record)
    return _offline(
        bertviz_model_view(**kwargs, display_mode=display_mode, html_action="return")
    )


def _attention_kwargs(record: AttentionRecord) -> dict:
    from transformer_tutorial.record import AttentionRecord

    if not isinstance(record, AttentionRecord):
        raise ValueError(
            "record must be an AttentionRecord (weights (layers, heads, q_len, k_len) and "
            f"tokens), got {type(record).__name__}"
        )
    attention = record.to_bertviz()
    if record.kind == "cross":
        return {
            "cross_attention": attention,
            "encoder_tokens": list(record.key_tokens),
            "decoder_tokens": list(record.query_tokens),
        }
    if record.query_tokens != record.key_tokens:
        raise ValueError(
            "a self-attention record must have the same query and key tokens; for queries "
            "from one sequence and keys from another use kind='cross'"
        )
    return {"attention": attention, "tokens": list(record.query_tokens)}


def _offline(view: HTML) -> HTML:
    """bertviz's returned HTML with its CDN scripts replaced and its JSON escaped."""
    html = view.data
    for pattern in (_CDN_REQUIRE, _REQUIRE_CONFIG, _PARAMS):
        if len(pattern.findall(html)) != 1:
            raise RuntimeError(
                f"bertviz's HTML no longer has the expected {pattern.pattern!r} once; "
                "check bertviz's version against requirements.txt"
            )
    html = _PARAMS.sub(lambda m: m[1] + _escape_params(m[2]) + ";", html)
    if os.environ.get(STATIC_ENV_VAR):
        loader = f'<script src="{VENDOR_URL_MARKER}{_ASSETS["requirejs"][1]}"></script>'
        paths = {name: VENDOR_URL_MARKER + _ASSETS[name][1][: -len(".js")] for name in _PATHS}
        config = f"require.config({{paths: {json.dumps(paths)}}});"
    else:
        loader = _inline_libraries()
        config = ""  # the inlined scripts already defined the modules
    html = _CDN_REQUIRE.sub(lambda _: loader, html)
    return HTML(_REQUIRE_CONFIG.sub(lambda _: config, html))



def _escape_params(line: str) -> str:
    """bertviz's parameters (``X; // HACK: X``), re-encoded so no token closes the script."""
    half = (len(line) - len(_PARAMS_SEPARATOR)) // 2
    params = line[:half]
    if line != params + _PARAMS_SEPARATOR + params:
        raise RuntimeError("bertviz's parameter line changed; check its version")
    dumped = json.dumps(json.loads(params))
    return dumped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _asset(name: str) -> str:
    text = resources.files("transformer_tutorial").joinpath("assets", _ASSETS[name][0]).read_text(
        encoding="utf-8"
    )
    if "</script" in text.lower() or "<!--" in text:
        raise RuntimeError(f"{_ASSETS[name][0]} cannot be inlined in a <script> element")
    return text


@cache
def _inline_libraries() -> str:
    """require.js, then jQuery and d3 registered as the AMD modules bertviz requires.

    jQuery defines the named module ``jquery`` itself; ``noConflict(true)`` then gives back
    whatever ``$``/``jQuery`` the page had. d3 5's UMD header would make an anonymous
    ``define`` (which require.js rejects outside a file it loaded), so it runs with ``define``
    hidden and attaches to a private object, which is then defined as ``d3``.
    """
    return (
        f"<script>{_asset('requirejs')}</script>\n"
        f"<script>{_asset('jquery')}\n;jQuery.noConflict(true);</script>\n"
        "<script>(function () {\n  var scope = {};\n"
        f"  (function () {{ var define, module, exports;\n{_asset('d3')}\n  }}).call(scope);\n"
        '  define("d3", [], function () { return scope.d3; });\n})();</script>\n'
    )
