"""Hand-set queries and keys solve chapter 2's problems: checked on the toy sentence, with
torch's scaled_dot_product_attention as the reference computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from explorer_frames import ROUNDED, panel
from matplotlib.patches import Rectangle

from transformer_tutorial.chapters import ch03_qkv as ch03
from transformer_tutorial.chapters.ch03_qkv import (
    KEY_FEATURES,
    QUERY_FEATURES,
    compare_with_dot_product,
    hand_set_projection,
)
from transformer_tutorial.embeddings import (
    TOY_SENTENCE,
    toy_embeddings,
)
from transformer_tutorial.scaling import random_attention
from transformer_tutorial.tokens import tokenize


@pytest.fixture(scope="module")
def sentence():
    tokens = tokenize(TOY_SENTENCE)
    return tokens, toy_embeddings().lookup(tokens)


def test_projection_shapes_and_named_features():
    projection = hand_set_projection()
    assert projection.w_q.shape == (4, len(QUERY_FEATURES))
    assert projection.w_k.shape == (4, len(KEY_FEATURES))
    np.testing.assert_array_equal(projection.w_v, np.eye(4))


def test_after_weights_equal_torch(sentence):
    _, x = sentence
    comparison = compare_with_dot_product(x, hand_set_projection())
    q, k, v = (torch.from_numpy(a) for a in hand_set_projection()(x))
    reference = F.scaled_dot_product_attention(q, k, v)
    np.testing.assert_allclose(comparison.context_after, reference.numpy(), atol=1e-12)
    before = torch.softmax(torch.from_numpy(x @ x.T), dim=-1).numpy()
    np.testing.assert_allclose(comparison.before, before, atol=1e-12)
    np.testing.assert_allclose(comparison.context_before, before @ x, atol=1e-12)


def test_it_asks_for_the_cat_and_the_cat_stops_looking_back(sentence):
    tokens, x = sentence
    it, cat = tokens.index("it"), tokens.index("cat")
    comparison = compare_with_dot_product(x, hand_set_projection())
    assert comparison.after[it].argmax() == cat  # "it" -> "cat": the largest weight of its row
    assert comparison.after[it, cat] > comparison.before[it, cat] + 0.05
    assert comparison.after[cat, it] < comparison.before[cat, it] / 4
    # the diagonal loses its advantage: no row is won by the token itself any more
    assert comparison.self_winners("before")
    assert comparison.self_winners("after") == []
    assert np.diag(comparison.after).mean() < np.diag(comparison.before).mean() / 3
    # "it" now carries more of the animal feature than with the plain dot product
    assert comparison.context_after[it, 0] > comparison.context_before[it, 0]


def test_bad_input_is_refused(sentence):
    _, x = sentence
    comparison = compare_with_dot_product(x, hand_set_projection())
    with pytest.raises(ValueError, match="which"):
        comparison.self_winners("during")
    with pytest.raises(ValueError, match="x must have shape"):
        compare_with_dot_product(x[:, :3], hand_set_projection())


# -- The chapter's explorer ----------------------------------------------------------------


@pytest.mark.parametrize("d_k", [1, 64, 1024])
@pytest.mark.parametrize("scaling", ch03.SCALING_MODES)
def test_scaling_frame_is_the_package_computation(d_k, scaling):
    data = ch03.sqrt_dk_scaling().data(d_k=d_k, scaling=scaling)
    heat, hist = data["panels"]
    scores, weights = random_attention(10, d_k, scale=scaling == "scaled", seed=0)
    np.testing.assert_allclose(heat["values"], weights, **ROUNDED)
    assert sum(hist["counts"]) == scores.size
    assert (hist["xmin"], hist["xmax"]) == ch03.SCALING_SCORE_RANGE
    assert f"standard deviation {scores.std():.2f}" in data["description"]


def test_dk_slider_sharpens_unscaled_rows_only():
    explorer = ch03.sqrt_dk_scaling()

    def sharpness(d_k, scaling):
        return np.max(panel(explorer, d_k=d_k, scaling=scaling)["values"], axis=-1).mean()

    assert sharpness(1024, "unscaled") > 0.9
    assert sharpness(1024, "unscaled") > sharpness(4, "unscaled") + 0.3
    assert abs(sharpness(1024, "scaled") - sharpness(4, "scaled")) < 0.15
    with pytest.raises(ValueError, match="scaling must be one of"):
        ch03.scaling_data(64, "halved")


# -- Figures: the spread of the scores -----------------------------------------------------


def _bar_heights(ax) -> np.ndarray:
    return np.array([p.get_height() for p in ax.patches if isinstance(p, Rectangle)])


def test_value_histograms_overlays_sets_with_their_std() -> None:
    rng = np.random.default_rng(0)
    narrow, wide = rng.normal(0, 1, 2000), rng.normal(0, 5, (40, 50))
    fig = ch03.value_histograms({"narrow": narrow, "wide": wide}, bins=20, xlim=(-20, 20))
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
    fig = ch03.value_histograms(np.array([-50.0, 0.0, 50.0]), bins=4, xlim=(-10, 10))
    heights = _bar_heights(fig.axes[0])
    assert heights[0] > 0 and heights[-1] > 0  # the outliers land in the end bins


def test_value_histograms_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="finite"):
        ch03.value_histograms(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="low < high"):
        ch03.value_histograms(np.ones(3), xlim=(1, 1))
    with pytest.raises(ValueError, match="at least one array"):
        ch03.value_histograms({})


def test_spread_vs_dimension_draws_the_points_and_sqrt_curve() -> None:
    fig = ch03.spread_vs_dimension([4, 16, 64], [2.1, 3.9, 8.2])
    curve, points = fig.axes[0].lines
    np.testing.assert_allclose(curve.get_ydata(), np.sqrt(curve.get_xdata()))
    np.testing.assert_array_equal(points.get_ydata(), [2.1, 3.9, 8.2])
    with pytest.raises(ValueError, match=r"same shape \(n,\)"):
        ch03.spread_vs_dimension([4, 16], [1.0])
