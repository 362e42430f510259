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
