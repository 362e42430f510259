"""Chapter 3's figure helpers: histograms, weights next to scores, spread and masked maps."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from transformer_tutorial import plots
from transformer_tutorial.attention import causal_mask


def _bar_heights(ax) -> np.ndarray:
    return np.array([p.get_height() for p in ax.patches if isinstance(p, Rectangle)])


def test_value_histograms_overlays_sets_with_their_std() -> None:
    rng = np.random.default_rng(0)
    narrow, wide = rng.normal(0, 1, 2000), rng.normal(0, 5, (40, 50))
    fig = plots.value_histograms({"narrow": narrow, "wide": wide}, bins=20, xlim=(-20, 20))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"narrow: std {narrow.std():.3g}", f"wide: std {wide.std():.3g}"]
    assert ax.get_xlim() == (-20.0, 20.0)
    heights = _bar_heights(ax)
    assert heights.shape == (40,)  # 20 bins per set
    widths = 40 / 20
    np.testing.assert_allclose(heights[:20].sum() * widths, 1.0)  # densities
    assert heights[:20].max() > 2 * heights[20:].max()  # the narrow set piles up


def test_value_histograms_clips_outliers_into_the_range() -> None:
    fig = plots.value_histograms(np.array([-50.0, 0.0, 50.0]), bins=4, xlim=(-10, 10))
    heights = _bar_heights(fig.axes[0])
    assert heights[0] > 0 and heights[-1] > 0  # the outliers land in the end bins


def test_value_histograms_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="finite"):
        plots.value_histograms(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="low < high"):
        plots.value_histograms(np.ones(3), xlim=(1, 1))
    with pytest.raises(ValueError, match="at least one array"):
        plots.value_histograms({})


def test_spread_vs_dimension_draws_the_points_and_sqrt_curve() -> None:
    fig = plots.spread_vs_dimension([4, 16, 64], [2.1, 3.9, 8.2])
    curve, points = fig.axes[0].lines
    np.testing.assert_allclose(curve.get_ydata(), np.sqrt(curve.get_xdata()))
    np.testing.assert_array_equal(points.get_ydata(), [2.1, 3.9, 8.2])
    with pytest.raises(ValueError, match=r"same shape \(n,\)"):
        plots.spread_vs_dimension([4, 16], [1.0])


def test_masked_attention_heatmap_hatches_exactly_the_masked_cells() -> None:
    mask = causal_mask(4)
    weights = np.where(mask, 1.0, 0.0) / mask.sum(-1, keepdims=True)
    fig = plots.masked_attention_heatmap(weights, mask, list("abcd"), list("abcd"))
    ax = fig.axes[0]
    hatched = {(int(p.get_x() + 0.5), int(p.get_y() + 0.5)) for p in ax.patches
               if p.get_hatch()}
    expected = {(int(c), int(r)) for r, c in zip(*np.nonzero(~mask), strict=True)}
    assert hatched == expected and len(hatched) == 6
    with pytest.raises(ValueError, match="boolean"):
        plots.masked_attention_heatmap(weights, mask.astype(int), list("abcd"), list("abcd"))
    with pytest.raises(ValueError, match=r"does not broadcast .* \(4, 4\)"):
        plots.masked_attention_heatmap(weights, np.ones(3, bool), list("abcd"), list("abcd"))
