"""Chapter 7: layer probes, sense gaps and MiniLM's sentence embeddings against the model card's
recipe run on transformers' BertModel."""

import json
import os

import numpy as np
import pytest
import torch
from explorer_frames import ROUNDED

from transformer_tutorial.chapters import ch07_stacking as ch07
from transformer_tutorial.chapters.ch07_stacking import similarity_to_anchors
from transformer_tutorial.embeddings import (
    cosine_similarity,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

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
    expected = similarity_to_anchors(minilm, text, "bank", towards) - similarity_to_anchors(
        minilm, text, "bank", away)
    np.testing.assert_allclose(gap, expected)
    assert gap.shape == (7,)


# -- The chapter's explorer ----------------------------------------------------------------


def test_minilm_explorer_shows_every_head_four_at_a_time():
    from transformer_tutorial.pretrained import load_minilm

    explorer = ch07.minilm_layers_explorer()
    data = explorer.data(layer=5)
    (grid,) = data["panels"]
    record = load_minilm().attention(ch07.MINILM_SENTENCES[0])
    assert len(grid["items"]) == 12 and grid["per_page"] == 4
    np.testing.assert_allclose(grid["items"][11]["values"], record.head(5, 11), **ROUNDED)
    assert grid["items"][0]["rows"] == list(record.query_tokens)
    assert "rests on [CLS]/[SEP]" in data["description"]
    assert explorer.controls[0].kind == "text"
    own = explorer.data(sentence="Dogs bark at night.", layer=0)["panels"][0]["items"][0]
    assert own["cols"][1:3] == ["dogs", "bark"]
    with pytest.raises(ValueError, match="empty"):
        explorer.data(sentence="  ")
    with pytest.raises(ValueError, match="at most 24"):
        explorer.data(sentence="word " * 30)


# -- The "apple" experiment and its figure -------------------------------------------------


def test_apple_moves_towards_its_sense_with_depth(minilm):
    companies, fruits = ["microsoft", "google", "samsung", "intel"], ["banana", "orange", "pear"]
    tech = "apple released a new phone at its keynote"
    pie = "she baked an apple pie"

    def gap(text, towards, away):
        return similarity_to_anchors(minilm, text, "apple", towards) - similarity_to_anchors(
            minilm, text, "apple", away
        )

    tech_gap, pie_gap = gap(tech, companies, fruits), gap(pie, fruits, companies)
    assert tech_gap.shape == pie_gap.shape == (7,)
    assert (tech_gap[1:] > 0).all() and tech_gap.max() > 0.1  # leans to the companies
    assert (pie_gap[2:] > 0.1).all()  # clearly a fruit from layer 2 on
    assert abs(tech_gap[0]) < 0.05 and abs(pie_gap[0]) < 0.05  # the input embedding: no sense
    # the two apples drift apart with depth
    tech_vs_pie = cosine_similarity(
        minilm.contextual_vectors(tech, "apple"), minilm.contextual_vectors(pie, "apple")
    )
    assert tech_vs_pie[0] > 0.9 > 0.7 > tech_vs_pie[-1]


def test_layer_curves_is_standalone():
    fig = ch07.layer_curves({"x": np.arange(3.0), "y": np.ones(3)}, ylabel="v")
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match=r"shape \(layers,\)"):
        ch07.layer_curves({"x": np.ones((2, 2))})
