"""LaTeX generated from numbers: exact strings, and KaTeX (the renderer of the built book,
through sphinxcontrib-katex and node) parses every one without error."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from transformer_tutorial.embeddings import toy_embeddings
from transformer_tutorial.latex import bmatrix, escape_text


def test_bmatrix_writes_rows_and_columns():
    assert bmatrix([[1, 2], [3, 4]]) == (
        r"\begin{bmatrix} 1.00 & 2.00 \\ 3.00 & 4.00 \end{bmatrix}"
    )
    assert bmatrix([0.5, -1.25], name="x", decimals=1) == (
        r"x = \begin{bmatrix} 0.5 & -1.2 \end{bmatrix}"
    )


def test_bmatrix_rounds_and_never_writes_minus_zero():
    assert bmatrix([[-0.001, 1.236, -0.0]]) == r"\begin{bmatrix} 0.00 & 1.24 & 0.00 \end{bmatrix}"
    assert bmatrix([[2.5]], decimals=0) == r"\begin{bmatrix} 2 \end{bmatrix}"


def test_bmatrix_labels_rows_from_the_actual_numbers():
    toy = toy_embeddings()
    latex = bmatrix(toy.lookup("how are you"), ["how", "are", "you"], name="X", decimals=1)
    assert latex == (
        r"X = \begin{bmatrix} 0.0 & 0.0 & 0.3 & 1.2 \\ 0.2 & 0.0 & 0.9 & 1.0 \\ "
        r"1.3 & 0.0 & 0.0 & 0.8 \end{bmatrix} \begin{array}{l} \leftarrow \text{how} \\ "
        r"\leftarrow \text{are} \\ \leftarrow \text{you} \end{array}"
    )


def test_escape_text():
    assert escape_text("<unk>") == r"\textless{}unk\textgreater{}"
    assert escape_text("a_b & {c} 50% #1 $") == r"a\_b \& \{c\} 50\% \#1 \$"
    assert escape_text("x^2~\\") == r"x\textasciicircum{}2\textasciitilde{}\textbackslash{}"
    assert escape_text("plain words") == "plain words"
    with pytest.raises(ValueError, match="text must be a string"):
        escape_text(3)


@pytest.mark.parametrize(
    "values, kwargs, message",
    [
        (np.zeros((2, 2, 2)), {}, r"shape \(rows, cols\) or \(cols,\), got \(2, 2, 2\)"),
        (np.zeros((0, 3)), {}, r"got \(0, 3\)"),
        ([[1.0, np.nan]], {}, "finite"),
        ([[1.0], [2.0]], {"row_labels": ["a"]}, r"one label per row \(2\), got 1"),
        ([[1.0]], {"decimals": -1}, "non-negative integer"),
        ([["a"]], {}, "array of numbers"),
    ],
)
def test_bmatrix_rejects_bad_input(values, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bmatrix(values, **kwargs)


@pytest.mark.skipif(shutil.which("node") is None, reason="KaTeX prerendering needs node")
@pytest.mark.parametrize(
    "latex",
    [
        bmatrix(toy_embeddings().lookup("how are you"), ["how", "are", "you"], name="X"),
        bmatrix(np.arange(6).reshape(2, 3) - 2.5, ["<unk>", "a_b & {c} 50% #1 $ ^~\\"]),
        bmatrix([1.0, 2.0], name=r"x_{\text{cat}}"),
    ],
)
def test_katex_renders_it(latex):
    katex = pytest.importorskip("sphinxcontrib.katex")
    html = katex.render_latex(latex, {"displayMode": True, "throwOnError": True})
    assert 'class="katex-display"' in html and "katex-error" not in html
    assert "<mtable" in html  # a matrix was laid out
    text = "".join(re.findall(r"<mtext>(.*?)</mtext>", html))  # the labels, as shown
    assert "&lt;unk&gt;" in text or "unk" not in latex
