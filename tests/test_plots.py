"""The core figure helpers: labels, values, colour scales and input checks."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from transformer_tutorial import plots
from transformer_tutorial.attention import causal_mask

WEIGHTS = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]])


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_attention_heatmap_labels_axes_and_values():
    fig = plots.attention_heatmap(WEIGHTS, ["it", "cat"], ["the", "cat", "sat"], title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["the", "cat", "sat"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["it", "cat"]
    assert ax.get_ylabel() == plots.QUERY_AXIS_LABEL
    assert ax.get_xlabel() == plots.KEY_AXIS_LABEL
    np.testing.assert_array_equal(ax.images[0].get_array(), WEIGHTS)
    assert ax.images[0].cmap.name == plots.ATTENTION_CMAP
    assert ax.images[0].norm.vmin == 0.0 and ax.images[0].norm.vmax == 1.0
    assert _texts(ax) == ["0.70", "0.20", "0.10", "0.00", "0.50", "0.50"]
    assert ax.get_title() == "t"


def test_values_are_not_written_into_large_maps():
    n = plots.ANNOTATE_MAX_CELLS + 1
    labels = [f"t{i}" for i in range(n)]
    fig = plots.attention_heatmap(np.full((n, n), 1 / n), labels, labels)
    assert _texts(fig.axes[0]) == []


def test_annotation_contrast_follows_cell_colour():
    fig = plots.attention_heatmap(np.array([[1.0, 0.0]]), ["q"], ["hi", "lo"])
    colours = [t.get_color() for t in fig.axes[0].texts]
    assert colours == ["black", "white"]  # viridis: yellow at 1, dark purple at 0


def test_log_scale_keeps_small_weights_visible():
    weights = np.array([[0.98, 0.015, 0.005]])
    fig = plots.attention_heatmap(weights, ["q"], list("abc"), log_scale=True)
    norm = fig.axes[0].images[0].norm
    assert type(norm).__name__ == "LogNorm"
    assert norm.vmin == pytest.approx(0.005)


def test_draws_on_given_axes():
    ax = plots.new_axes()
    fig = plots.attention_heatmap(WEIGHTS, ["a", "b"], list("xyz"), ax=ax)
    assert fig is ax.figure and ax.images


def test_long_labels_are_shortened():
    fig = plots.attention_heatmap(np.ones((1, 1)), ["x" * 40], ["y"])
    label = fig.axes[0].get_yticklabels()[0].get_text()
    assert len(label) == plots.MAX_LABEL_CHARS and label.endswith("…")


@pytest.mark.parametrize(
    ("weights", "q", "k", "message"),
    [
        (np.ones(3), ["a"], ["b"], r"shape \(q_len, k_len\)"),
        (WEIGHTS, ["a"], list("xyz"), r"one label per row of weights \(2\), got 1"),
        (WEIGHTS, ["a", "b"], ["x"], r"one label per column of weights \(3\), got 1"),
        (-WEIGHTS, ["a", "b"], list("xyz"), "non-negative"),
        (np.full((1, 1), np.nan), ["a"], ["b"], "finite"),
    ],
)
def test_attention_heatmap_rejects_bad_input(weights, q, k, message):
    with pytest.raises(ValueError, match=message):
        plots.attention_heatmap(weights, q, k)


def test_matrix_heatmap_is_centred_on_zero():
    values = np.array([[1.0, -3.0], [0.5, 2.0]])
    fig = plots.matrix_heatmap(values, ["how", "are"], ["f1", "f2"], xlabel="feature")
    image = fig.axes[0].images[0]
    assert image.cmap.name == plots.VALUE_CMAP
    assert (image.norm.vmin, image.norm.vmax) == (-3.0, 3.0)
    assert fig.axes[0].get_xlabel() == "feature"
    with pytest.raises(ValueError, match=r"shape \(rows, cols\)"):
        plots.matrix_heatmap(np.ones(2), ["a"], ["b"])


def test_matrix_heatmap_without_labels_is_centred_on_zero():
    values = np.arange(-6.0, 6.0).reshape(3, 4)
    fig = plots.matrix_heatmap(values, title="t", xlabel="feature", ylabel="position")
    image = fig.axes[0].images[0]
    np.testing.assert_array_equal(image.get_array(), values)
    assert image.norm.vmin == -6.0 and image.norm.vmax == 6.0
    assert fig.axes[0].get_xlabel() == "feature"
    with pytest.raises(ValueError, match=r"\(rows, cols\)"):
        plots.matrix_heatmap(np.zeros(3))
    with pytest.raises(ValueError, match="go together"):
        plots.matrix_heatmap(np.ones((2, 2)), ["a", "b"])


# -- bar_chart -----------------------------------------------------------------------------


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


# -- attention_heatmap with a mask ---------------------------------------------------------


def test_attention_heatmap_hatches_exactly_the_masked_cells() -> None:
    mask = causal_mask(4)
    weights = np.where(mask, 1.0, 0.0) / mask.sum(-1, keepdims=True)
    fig = plots.attention_heatmap(weights, list("abcd"), list("abcd"), mask=mask)
    ax = fig.axes[0]
    hatched = {(int(p.get_x() + 0.5), int(p.get_y() + 0.5)) for p in ax.patches
               if p.get_hatch()}
    expected = {(int(c), int(r)) for r, c in zip(*np.nonzero(~mask), strict=True)}
    assert hatched == expected and len(hatched) == 6
    with pytest.raises(ValueError, match="boolean"):
        plots.attention_heatmap(weights, list("abcd"), list("abcd"), mask=mask.astype(int))
    with pytest.raises(ValueError, match=r"does not broadcast .* \(4, 4\)"):
        plots.attention_heatmap(weights, list("abcd"), list("abcd"), mask=np.ones(3, bool))
