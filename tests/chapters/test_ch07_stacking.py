"""Chapter 7: layer probes, sense gaps and MiniLM's sentence embeddings against the model card's
recipe run on transformers' BertModel."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertModel

from transformer_tutorial.chapters.ch07_stacking import (
    PROFILE_NAMES,
    layer_profile,
    sense_gap,
    sentence_embeddings,
    similarity_table,
)
from transformer_tutorial.pretrained import load_minilm, minilm_folder

pytestmark = pytest.mark.usefixtures("one_thread")
SENTENCES = ["A man is playing a guitar.", "Someone plays an instrument.",
             "The stock market fell sharply today."]


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def test_sentence_embeddings_equal_the_model_card_recipe(minilm):
    folder = minilm_folder()
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    modules = [m["type"] for m in json.loads((folder / "modules.json").read_text())]
    assert pooling["pooling_mode_mean_tokens"] and modules[-1].endswith("Normalize")
    model = BertModel.from_pretrained(str(folder), local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        tokens = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()  # the card's mean_pooling
    pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    expected = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
    ours = sentence_embeddings(minilm, SENTENCES)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    table = similarity_table(minilm, SENTENCES)
    np.testing.assert_allclose(table, expected @ expected.T, atol=1e-5)
    assert table[0, 1] > table[0, 2]  # the two music sentences are the closest pair


def test_layer_profile_shapes_ranges_and_known_heads(minilm):
    profile = layer_profile(minilm, ["The cat sat on the mat because it was tired."])
    assert set(profile) == set(PROFILE_NAMES)
    for values in profile.values():
        assert values.shape == (6,) and (values >= -1e-6).all() and (values <= 1 + 1e-6).all()
    assert profile["previous"][0] > 0.9  # layer 0 has a previous-token head (Clark et al.)
    with pytest.raises(ValueError, match="sentences"):
        layer_profile(minilm, "one string")


def test_sense_gap_is_the_difference_of_the_two_similarities(minilm):
    text, towards, away = "she sat on the bank of the river", ["river"], ["money"]
    gap = sense_gap(minilm, text, "bank", towards, away)
    expected = minilm.similarity_by_layer(text, "bank", towards) - minilm.similarity_by_layer(
        text, "bank", away)
    np.testing.assert_allclose(gap, expected)
    assert gap.shape == (7,)
