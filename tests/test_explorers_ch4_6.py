"""The explorers of chapters 4-6: each control changes the figure as it should."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transformer_tutorial import explorers
from transformer_tutorial.layers import layer_norm_steps
from transformer_tutorial.multihead import pattern_features, pattern_heads, regroup_heads
from transformer_tutorial.positional import position_dot_products, sinusoidal_encoding
from transformer_tutorial.tokens import tokenize


def _image(fig) -> np.ndarray:
    return np.asarray(fig.axes[0].images[0].get_array())


def test_heads_explorer_follows_a_job_through_the_number_of_heads():
    ex = explorers.heads_explorer()
    tokens = tokenize(explorers.HEADS_SENTENCES[0])
    n = len(tokens)
    prev = _image(ex.figure(num_heads=4, job="previous token"))
    assert (prev[np.arange(1, n), np.arange(n - 1)] > 0.95).all()
    first = _image(ex.figure(num_heads=4, job="first token"))
    assert (first[:, 0] > 0.95).all()
    # two heads: previous and next token share head 0, so their figures are the same
    pair = ex.figure(num_heads=2, job="next token")
    np.testing.assert_array_equal(_image(pair), _image(ex.figure(num_heads=2)))
    assert pair.axes[0].get_title() == "2 heads: head 0 = previous token + next token"
    _, w = regroup_heads(pattern_heads(), 2)(pattern_features(tokens))
    np.testing.assert_allclose(_image(pair), w[0, 0].detach().numpy(), rtol=1e-6)
    assert 0.4 < _image(pair)[3, 2] < 0.5  # blurred: half on the previous, half on the next
    one = _image(ex.figure(num_heads=1, job="same word"))
    assert one.max(axis=1).mean() < prev[1:].max(axis=1).mean()
    other = ex.figure(sentence=explorers.HEADS_SENTENCES[2])
    labels = [t.get_text() for t in other.axes[0].get_xticklabels()]
    assert labels == ["how", "are", "you"]


def test_heads_explorer_reports_a_sentence_it_cannot_hold():
    with pytest.raises(ValueError, match="1 to 16 tokens"):
        explorers.draw_heads(" ".join(["word"] * 17), 4, "same word")


def test_position_explorer_follows_the_position_and_the_kind():
    ex = explorers.position_explorer()
    dots = position_dot_products(sinusoidal_encoding(48, 32)).numpy()
    fig = ex.figure(kind="sinusoidal", position=8)
    top, bottom = fig.axes
    np.testing.assert_allclose(
        [b.get_height() for b in top.patches], sinusoidal_encoding(48, 32)[8].numpy()
    )
    solid, dashed, marker = bottom.get_lines()[:3]
    np.testing.assert_allclose(solid.get_ydata(), dots[8], rtol=1e-6)
    np.testing.assert_allclose(dashed.get_ydata(), solid.get_ydata(), atol=1e-4)
    assert marker.get_xdata()[0] == 8
    moved = ex.figure(kind="sinusoidal", position=24).axes[1].get_lines()
    assert moved[2].get_xdata()[0] == 24
    assert np.argmax(moved[0].get_ydata()) == 24  # a position is most like itself
    for kind, close in (("RoPE", True), ("learned (untrained)", False)):
        solid, dashed = ex.figure(kind=kind, position=20).axes[1].get_lines()[:2]
        gap = np.abs(np.asarray(solid.get_ydata()) - np.asarray(dashed.get_ydata())).max()
        assert (gap < 1e-3) if close else (gap > 1.0), kind


def test_layer_norm_explorer_standardizes_then_scales():
    ex = explorers.layer_norm_explorer()
    tokens, steps = explorers.layer_norm_example()
    labels = explorers.layer_norm_token_labels(tokens)
    stages = explorers.NORM_STAGES

    def bars(token: str, stage: str) -> np.ndarray:
        ax = ex.figure(token=token, stage=stage).axes[0]
        return np.array([b.get_height() for b in ax.patches])

    raw = bars(labels[1], stages[0])
    np.testing.assert_allclose(raw, steps["input"][1].numpy(), rtol=1e-6)
    standardized = bars(labels[1], stages[1])
    assert abs(standardized.mean()) < 1e-5 and abs(standardized.std() - 1) < 1e-3
    assert abs(raw.mean()) > 1e-3 or abs(raw.std() - 1) > 1e-2  # the input was not already
    out = bars(labels[1], stages[2])
    expected = layer_norm_steps(torch.as_tensor(raw, dtype=torch.float32),
                                _first_norm())["output"].numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert not np.allclose(out, standardized)
    assert not np.allclose(bars(labels[2], stages[1]), standardized)  # another token


def _first_norm():
    from transformer_tutorial.layers import EncoderBlock, seeded_encoder_layer

    return EncoderBlock.from_torch(seeded_encoder_layer(16, 2, 64, seed=0)).add_norm1.norm
