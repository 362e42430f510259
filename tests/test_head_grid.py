"""plots.head_grid: one attention heatmap per head, for any number of heads."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from transformer_tutorial import plots
from transformer_tutorial.record import AttentionRecord

TOKENS = ["the", "cat", "sat"]


def _weights(heads: int, q: int = 3, k: int = 3, seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).random((heads, q, k))
    return w / w.sum(-1, keepdims=True)


@pytest.mark.parametrize(
    ("heads", "ncols", "shape"),
    [(1, None, (1, 1)), (5, None, (2, 4)), (12, 3, (4, 3)), (6, 10, (1, 6))],
)
def test_one_panel_per_head_any_count(heads, ncols, shape):
    w = _weights(heads)
    fig = plots.head_grid(w, TOKENS, ncols=ncols)
    panels = [ax for ax in fig.axes if ax.images]  # colorbars are axes without images
    assert len(panels) == heads
    for h, ax in enumerate(panels):
        np.testing.assert_array_equal(ax.images[0].get_array(), w[h])
        assert ax.get_title() == f"head {h}"
        assert [t.get_text() for t in ax.get_xticklabels()] == TOKENS
    assert panels[-1].get_subplotspec().get_gridspec().get_geometry() == shape


def test_record_layer_titles_and_given_figure():
    w = np.stack([_weights(2, 3, 2, seed=1), _weights(2, 3, 2, seed=2)])  # (layers, heads, 3, 2)
    record = AttentionRecord(w, TOKENS, ["a", "b"], kind="cross")
    fig = Figure()
    out = plots.head_grid(record, layer=1, titles=["x", "y"], figure=fig)
    assert out is fig
    panels = [ax for ax in fig.axes if ax.images]
    np.testing.assert_array_equal(panels[1].images[0].get_array(), w[1, 1])
    assert [ax.get_title() for ax in panels] == ["x", "y"]
    assert [t.get_text() for t in panels[0].get_yticklabels()] == TOKENS
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["a", "b"]
    # axis names once: the second panel of the row has no query label
    assert panels[0].get_ylabel() == plots.QUERY_AXIS_LABEL and panels[1].get_ylabel() == ""


def test_log_scale_is_passed_on():
    fig = plots.head_grid(_weights(2), TOKENS, log_scale=True)
    assert all(type(ax.images[0].norm).__name__ == "LogNorm" for ax in fig.axes if ax.images)


def test_head_grid_errors_name_the_expected_shape():
    with pytest.raises(ValueError, match=r"weights must have shape \(heads, q_len, k_len\)"):
        plots.head_grid(np.ones((3, 3)), TOKENS)
    with pytest.raises(ValueError, match=r"titles must have one entry per head \(2\)"):
        plots.head_grid(_weights(2), TOKENS, titles=["only one"])
    with pytest.raises(ValueError, match="query_tokens must have one label per row"):
        plots.head_grid(_weights(2), TOKENS[:2])
    with pytest.raises(ValueError, match="query_tokens is required"):
        plots.head_grid(_weights(2))
    with pytest.raises(ValueError, match="ncols must be a positive integer"):
        plots.head_grid(_weights(2), TOKENS, ncols=0)
