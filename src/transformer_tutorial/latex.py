"""LaTeX for the book's equations, generated from the actual numbers.

A chapter never types a matrix by hand: it passes the array it computed to :func:`bmatrix` and
displays the string (``IPython.display.Math``), which the built book renders with KaTeX and a
live notebook with MathJax.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transformer_tutorial import checks
from transformer_tutorial.checks import as_float_array

__all__ = ["escape_text", "bmatrix"]

# Characters that mean something in LaTeX text mode, and how to write them literally (the
# commands are all supported by KaTeX).
_TEXT_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def escape_text(text: str) -> str:
    """``text`` written so that LaTeX shows it literally inside ``\\text{...}``:
    ``"<unk>"`` → ``"\\textless{}unk\\textgreater{}"``."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    return "".join(_TEXT_ESCAPES.get(char, char) for char in text)


def _format_number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    # A value that rounds to zero is written 0.00, never -0.00.
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def bmatrix(
    values: np.ndarray,
    row_labels: Sequence[str] | None = None,
    name: str | None = None,
    decimals: int = 2,
) -> str:
    r"""The LaTeX of ``values`` ``(rows, cols)`` (or one row ``(cols,)``) as a ``bmatrix``.

    ``row_labels`` (one per row) are written to the right of the matrix, each with an arrow
    pointing at its row; ``name`` (LaTeX, e.g. ``"X"``) is written in front as ``X =``. Every
    number is rounded to ``decimals`` places. For ``[[1, 2]]`` and ``name="x"``::

        x = \begin{bmatrix} 1.00 & 2.00 \end{bmatrix}
    """
    values = as_float_array(values, "values")
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(f"values must have shape (rows, cols) or (cols,), got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite")
    decimals = checks.non_negative_int(decimals, "decimals")
    rows = [" & ".join(_format_number(v, decimals) for v in row) for row in values]
    latex = r"\begin{bmatrix} " + r" \\ ".join(rows) + r" \end{bmatrix}"
    if row_labels is not None:
        labels = [str(label) for label in row_labels]
        if len(labels) != values.shape[0]:
            raise ValueError(
                f"row_labels must have one label per row ({values.shape[0]}), got {len(labels)}"
            )
        arrows = r" \\ ".join(r"\leftarrow \text{" + escape_text(label) + "}" for label in labels)
        latex += r" \begin{array}{l} " + arrows + r" \end{array}"
    if name is not None:
        latex = f"{name} = {latex}"
    return latex
