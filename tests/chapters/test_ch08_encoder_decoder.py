"""Chapter 8: the tail of a loss curve, and attention to the token being predicted."""

import numpy as np
import pytest
import torch
from explorer_frames import ROUNDED
from matplotlib.figure import Figure

from transformer_tutorial.chapters import ch08_encoder_decoder as ch08
from transformer_tutorial.chapters.ch08_encoder_decoder import attention_to_next_token, tail_loss
from transformer_tutorial.models import PAD_ID
from transformer_tutorial.training import TrainConfig, build_model, make_batch


def test_tail_loss():
    assert tail_loss([5.0, 1.0, 2.0, 3.0], last=2) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="last"):
        tail_loss([1.0], last=2)


@pytest.mark.parametrize("causal", [True, False])
def test_attention_to_next_token(causal):
    model = build_model(TrainConfig(causal=causal)).eval()
    batch = make_batch("reverse", 8, rng=0)
    ahead = attention_to_next_token(model, batch)
    assert ahead.shape == (2, 4)
    if causal:
        np.testing.assert_array_equal(ahead, 0.0)
    else:
        # check one entry by hand from the decoder's weights
        with torch.no_grad():
            weights = model(batch.src, batch.tgt[:, :-1]).decoder_attention[1][:, 2]
        inputs = batch.tgt[:, :-1]
        values = [weights[b, t, t + 1].item() for b in range(8) for t in range(inputs.shape[1] - 1)
                  if inputs[b, t] != PAD_ID and inputs[b, t + 1] != PAD_ID]
        assert ahead[1, 2] == pytest.approx(np.mean(values), abs=1e-6)
        assert (ahead > 0).all()


# -- The chapter's explorer ----------------------------------------------------------------


def test_cross_attention_explorer_has_a_frame_per_snapshot():
    from transformer_tutorial.training import TrainConfig, train

    run = train(TrainConfig(steps=20, snapshot_steps=(0, 10, 20)), progress=False)
    explorer = ch08.cross_attention_training(run)
    assert explorer.controls[0].values == (0, 10, 20) and explorer.controls[1].values == (0, 1)
    data = explorer.data(step=20, layer=1)
    (grid,) = data["panels"]
    np.testing.assert_allclose(grid["items"][0]["values"], run.snapshots[20].head(1, 0),
                               **ROUNDED)  # fmt: skip
    assert "after 20 training steps" in data["title"] and "anti-diagonal" in data["description"]
    with pytest.raises(ValueError, match="step must be one of"):
        explorer.data(step=7)


# -- Figures -------------------------------------------------------------------------------


def test_loss_curves_and_three_masks():
    fig = ch08.loss_curves({"a": [3.0, 2.0, 1.0], "b": [3.0, 1.0, 0.5]}, title="t")
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match="at least one"):
        ch08.loss_curves({})
    with pytest.raises(ValueError, match="missing"):
        ch08.three_masks({}, {})
