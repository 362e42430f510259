"""plots.bar_chart: one bar per value, read back from the matplotlib artists."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from transformer_tutorial import plots

VALUES = [0.9, -0.4, 0.0, 0.25]
LABELS = ["dog", "mat", "the", "it"]


def _bars(fig: Figure):
    return [p for p in fig.axes[0].patches if isinstance(p, matplotlib.patches.Rectangle)]


def test_bar_chart_draws_one_bar_per_value_in_order():
    fig = plots.bar_chart(VALUES, LABELS, title="t", xlabel="cosine")
    ax = fig.axes[0]
    bars = _bars(fig)
    assert [b.get_width() for b in bars] == VALUES
    # top to bottom in the given order: the first label sits at the top
    order = np.argsort([b.get_y() for b in bars])
    assert ax.yaxis_inverted() and list(order) == [0, 1, 2, 3]
    assert [t.get_text() for t in ax.get_yticklabels()] == LABELS
    assert [t.get_text() for t in ax.texts] == ["0.90", "-0.40", "0.00", "0.25"]
    assert ax.get_title() == "t" and ax.get_xlabel() == "cosine"


def test_bar_colours_follow_the_sign():
    cmap = matplotlib.colormaps[plots.VALUE_CMAP]
    colours = [b.get_facecolor() for b in _bars(plots.bar_chart(VALUES, LABELS))]
    assert colours[0] == colours[2] == colours[3] == pytest.approx(cmap(0.85))
    assert colours[1] == pytest.approx(cmap(0.15))


def test_value_range_fixes_the_axis_and_default_fits_values_and_zero():
    assert plots.bar_chart(VALUES, LABELS, value_range=(-1, 1)).axes[0].get_xlim() == (-1, 1)
    low, high = plots.bar_chart(VALUES, LABELS).axes[0].get_xlim()
    assert low < -0.4 and high > 0.9
    assert plots.bar_chart([1.0, 2.0], ["a", "b"]).axes[0].get_xlim()[0] == 0.0


def test_bar_chart_draws_on_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.bar_chart(VALUES, LABELS, ax=ax) is fig and len(_bars(fig)) == 4


@pytest.mark.parametrize(
    "values, labels, kwargs, message",
    [
        ([[1.0]], ["a"], {}, r"shape \(n,\) with n >= 1, got \(1, 1\)"),
        ([], [], {}, r"shape \(n,\)"),
        ([1.0, np.inf], ["a", "b"], {}, "finite"),
        ([1.0, 2.0], ["a"], {}, r"one label per value \(2\), got 1"),
        ([1.0], ["a"], {"value_range": (1, -1)}, "low < high"),
    ],
)
def test_bar_chart_rejects_bad_input(values, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plots.bar_chart(values, labels, **kwargs)
