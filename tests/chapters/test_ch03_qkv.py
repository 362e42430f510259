"""Hand-set queries and keys solve chapter 2's problems: checked on the toy sentence, with
torch's scaled_dot_product_attention as the reference computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from transformer_tutorial.chapters.ch03_qkv import (
    KEY_FEATURES,
    QUERY_FEATURES,
    compare_with_dot_product,
    hand_set_projection,
)
from transformer_tutorial.embeddings import TOY_SENTENCE, toy_embeddings
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
