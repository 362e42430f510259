"""Plot helpers of chapters 4-6: large matrices, one position's profile, one token's features."""

from __future__ import annotations

import numpy as np
import pytest

from transformer_tutorial import plots


def test_dense_heatmap_is_centred_on_zero():
    values = np.arange(-6.0, 6.0).reshape(3, 4)
    fig = plots.dense_heatmap(values, title="t", xlabel="feature", ylabel="position")
    image = fig.axes[0].images[0]
    np.testing.assert_array_equal(image.get_array(), values)
    assert image.norm.vmin == -6.0 and image.norm.vmax == 6.0
    assert fig.axes[0].get_xlabel() == "feature"
    with pytest.raises(ValueError, match=r"\(rows, cols\)"):
        plots.dense_heatmap(np.zeros(3))


def test_position_profile_draws_the_vector_the_dots_and_the_reference():
    vector = np.array([0.5, -1.0, 2.0])
    dots = np.array([1.0, 3.0, 2.0, 0.0])
    reference = np.array([1.5, 3.0, 1.5, 0.5])
    fig = plots.position_profile(vector, dots, 1, reference=reference, value_range=(-1, 4))
    top, bottom = fig.axes
    np.testing.assert_array_equal([bar.get_height() for bar in top.patches], vector)
    solid, dashed = bottom.get_lines()[:2]
    np.testing.assert_array_equal(solid.get_ydata(), dots)
    np.testing.assert_array_equal(dashed.get_ydata(), reference)
    assert dashed.get_linestyle() == "--"
    assert bottom.get_lines()[2].get_xdata()[0] == 1  # the chosen position, marked
    assert bottom.get_ylim() == (-1, 4)
    with pytest.raises(ValueError, match=r"position must be in \[0, 4\)"):
        plots.position_profile(vector, dots, 4)
    with pytest.raises(ValueError, match="reference"):
        plots.position_profile(vector, dots, 0, reference=np.zeros(3))


def test_feature_bars_show_mean_and_spread():
    values = np.array([1.0, 3.0, 1.0, 3.0])  # mean 2, std 1
    fig = plots.feature_bars(values, title="token")
    ax = fig.axes[0]
    np.testing.assert_array_equal([bar.get_height() for bar in ax.patches], values)
    levels = sorted(line.get_ydata()[0] for line in ax.get_lines())
    assert levels == [0.0, 1.0, 2.0, 3.0]  # zero, mean - std, mean, mean + std
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["mean = 2.00", "mean ± std (std = 1.00)"]
    with pytest.raises(ValueError, match="finite"):
        plots.feature_bars(np.array([1.0, np.nan]))
