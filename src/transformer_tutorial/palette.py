"""The book's colours, in one place.

Categorical colours are the Okabe–Ito palette (readable with every common colour-vision
deficiency); attention weights use ``viridis`` (perceptually uniform, 0 to 1) and signed values
``RdBu_r`` (white at zero, red positive, blue negative). Queries, keys and values keep one colour
each in every diagram and figure, and so does the residual stream that carries the token vectors
from block to block.
"""

from __future__ import annotations

__all__ = [
    "OKABE_ITO",
    "BLUE",
    "ORANGE",
    "GREEN",
    "PURPLE",
    "SKY",
    "VERMILLION",
    "QUERY",
    "KEY",
    "VALUE",
    "RESIDUAL",
    "TENSOR",
    "HIGHLIGHT",
    "INK",
    "MUTED",
    "ATTENTION_CMAP",
    "SIGNED_CMAP",
    "tint",
]

BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
)  # fmt: skip
OKABE_ITO = (BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION)

QUERY = BLUE  # Q, W^Q: what a token looks for
KEY = ORANGE  # K, W^K: what a token offers to be found by
VALUE = GREEN  # V, W^V: what a token passes on
RESIDUAL = PURPLE  # the residual stream: token vectors between blocks, skip connections
TENSOR = "#4D4D4D"  # any other tensor (arrows in diagrams)
HIGHLIGHT = VERMILLION  # what a figure wants the eye on: masks, the n x n score matrix
INK = "#1A1A1A"  # text
MUTED = "#6B6B6B"  # secondary text and frames

ATTENTION_CMAP = "viridis"  # weights in [0, 1]
SIGNED_CMAP = "RdBu_r"  # values around 0 (embeddings, scores)


def tint(colour: str, amount: float = 0.85) -> str:
    """``colour`` (``#RRGGBB``) mixed with white: ``amount`` 0 keeps it, 1 gives white.

    Diagrams fill boxes with a light tint of their colour so that dark text stays readable.
    """
    if not (isinstance(colour, str) and len(colour) == 7 and colour.startswith("#")):
        raise ValueError(f"colour must be a '#RRGGBB' string, got {colour!r}")
    try:
        rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    except ValueError:
        raise ValueError(f"colour must be a '#RRGGBB' string, got {colour!r}") from None
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 <= amount <= 1:
        raise ValueError(f"amount must be a number in [0, 1], got {amount!r}")
    mixed = [round(c + (255 - c) * amount) for c in rgb]
    return "#" + "".join(f"{c:02X}" for c in mixed)
