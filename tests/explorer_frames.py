"""Reading an explorer's figure data in tests: one panel, or a bar panel as label -> value."""

from __future__ import annotations

# Figure data is rounded to 4 significant digits.
ROUNDED = {"rtol": 1e-3, "atol": 1e-6}


def panel(explorer, index: int = 0, **values) -> dict:
    """Panel ``index`` of ``explorer``'s frame for the control ``values``."""
    return explorer.data(**values)["panels"][index]


def bar_values(explorer, **values) -> dict[str, float]:
    """The first panel of the frame, a bar panel, as ``{label: value}``."""
    bars = panel(explorer, **values)
    return dict(zip(bars["labels"], bars["values"], strict=True))
