"""Chapter 3's explorer: drive each control and check the figure follows the package."""

from __future__ import annotations

import numpy as np
import pytest

from transformer_tutorial import explorers
from transformer_tutorial.scaling import random_attention

N = len(explorers.SCALING_TOKENS)


def _panels(d_k: int, scaling: str):
    """The weights shown in the heatmap and the histogram's axes."""
    fig = explorers.sqrt_dk_scaling().figure(d_k=d_k, scaling=scaling)
    heat, hist = (ax for ax in fig.axes if ax.get_label() != "<colorbar>")
    assert heat.get_title() == "attention weights" and not heat.texts  # colour only
    return heat.images[0].get_array(), hist


@pytest.mark.parametrize("d_k", explorers.SCALING_D_KS)
@pytest.mark.parametrize("scaling", explorers.SCALING_MODES)
def test_heatmap_is_the_package_computation(d_k: int, scaling: str) -> None:
    shown, hist = _panels(d_k, scaling)
    scores, weights = random_attention(N, d_k, scale=scaling == "scaled", seed=0)
    np.testing.assert_allclose(shown, weights)
    legend = hist.get_legend().get_texts()[0].get_text()
    assert legend == f"scores: std {scores.std():.3g}"


def test_dk_slider_sharpens_unscaled_rows_only() -> None:
    sharpness = {
        (d, s): _panels(d, s)[0].max(axis=-1).mean()
        for d in (4, 1024) for s in explorers.SCALING_MODES
    }
    assert sharpness[(1024, "unscaled")] > 0.9
    assert sharpness[(1024, "unscaled")] > sharpness[(4, "unscaled")] + 0.3
    assert abs(sharpness[(1024, "scaled")] - sharpness[(4, "scaled")]) < 0.15
    assert sharpness[(1024, "unscaled")] > sharpness[(1024, "scaled")] + 0.5


def test_scaling_dropdown_changes_the_score_spread_by_sqrt_dk() -> None:
    spreads = {}
    for s in explorers.SCALING_MODES:
        _, hist = _panels(256, s)
        spreads[s] = float(hist.get_legend().get_texts()[0].get_text().split()[-1])
        assert hist.get_xlim() == explorers.SCALING_SCORE_RANGE  # fixed range across frames
    assert spreads["unscaled"] / spreads["scaled"] == pytest.approx(16.0, rel=0.01)


def test_every_frame_renders_and_frames_differ() -> None:
    explorer = explorers.sqrt_dk_scaling()
    assert explorer.values() == {"d_k": 64, "scaling": "scaled"}
    pngs = {explorer.png(d_k=d, scaling=s) for d in explorers.SCALING_D_KS
            for s in explorers.SCALING_MODES}
    assert len(pngs) == len(explorers.SCALING_D_KS) * len(explorers.SCALING_MODES)


def test_bad_scaling_value_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="scaling must be one of"):
        explorers.draw_scaling(64, "halved")
