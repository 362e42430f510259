"""The brief's relevance example: checked against torch's softmax and against e^(-77.2)."""

from __future__ import annotations

import math

import pytest
import torch

from transformer_tutorial.chapters.ch02_attention import BRIEF_SCORES, relevance_example


def test_the_brief_scores_give_one_weight_near_1_and_one_near_e_minus_77():
    example = relevance_example()
    assert example.words == ("the", "burn")
    reference = torch.softmax(torch.tensor([12.1, 89.3], dtype=torch.float64), dim=0)
    assert example.weights == pytest.approx(reference.numpy(), rel=1e-12)
    assert example.weights[1] == pytest.approx(1.0, abs=1e-15)
    assert example.log_weights[0] == pytest.approx(12.1 - 89.3, abs=1e-9)
    assert example.weights[0] == pytest.approx(math.exp(-77.2), rel=1e-9)


def test_a_temperature_of_sqrt_dk_brings_the_gap_down():
    example = relevance_example(temperature=8.0)
    assert example.log_weights[0] - example.log_weights[1] == pytest.approx(-77.2 / 8)
    assert 1e-5 < example.weights[0] < 1e-4


def test_bad_scores_are_refused():
    with pytest.raises(ValueError, match="scores"):
        relevance_example({})
    with pytest.raises(ValueError, match="underflows"):
        relevance_example({"a": 0.0, "b": 1000.0})
    assert BRIEF_SCORES == {"the": 12.1, "burn": 89.3}
