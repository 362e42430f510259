"""Chapter 10: benchmark-style timings, slope fits and the figure."""

import numpy as np
import pytest

from transformer_tutorial.chapters.ch10_cost import (
    NUMPY_FULL,
    TORCH_FUSED,
    cost_curves,
    cost_figure,
    local_slopes,
    machine_description,
    measure_attention,
    slope_range,
)
from transformer_tutorial.cost import attention_matrix_bytes


def test_slopes_recover_a_known_power_law():
    n = np.array([256, 512, 1024, 2048])
    rounds = np.stack([3e-9 * n**2.0 * f for f in (0.9, 1.0, 1.2)], axis=1)
    fit = slope_range(n, rounds, min_length=512)
    assert fit.median == pytest.approx(2.0) and fit.low == pytest.approx(2.0)
    assert fit.lengths == (512, 1024, 2048)
    assert fit.c == pytest.approx(3e-9, rel=1e-6)
    np.testing.assert_allclose(local_slopes(n, n**1.5), [1.5, 1.5, 1.5])
    with pytest.raises(ValueError, match="min_length"):
        slope_range(n, rounds, min_length=4096)


def test_measure_attention_small():
    m = measure_attention(lengths=(64, 128, 256), repeats=2, warmup=1, window=32)
    assert set(m.seconds) >= {NUMPY_FULL, TORCH_FUSED}
    assert all(t.shape == (3, 2) and (t > 0).all() for t in m.seconds.values())
    # the full attention keeps (n, n) arrays: its peak is at least the weight matrix
    assert all(p >= attention_matrix_bytes(n) for p, n in
               zip(m.peak_bytes[NUMPY_FULL], m.lengths, strict=True))
    fits = {NUMPY_FULL: slope_range(m.lengths, m.seconds[NUMPY_FULL])}
    assert cost_figure(m, [NUMPY_FULL, TORCH_FUSED], fits).axes
    assert "CPUs" in machine_description()
    with pytest.raises(ValueError, match="unknown"):
        cost_figure(m, ["nope"], {})


# -- Figures -------------------------------------------------------------------------------


def test_cost_curves():
    fig = cost_curves([1, 2, 4], {"x": [1.0, 4.0, 16.0]}, fits={"x": [1.0, 4.0, 16.0]})
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match="one value per length"):
        cost_curves([1, 2, 4], {"x": [1.0, 4.0]})
