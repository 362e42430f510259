"""all-MiniLM-L6-v2 in our encoder against transformers' BertModel (same folder, offline)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertModel

from transformer_tutorial.embeddings import cosine_similarity
from transformer_tutorial.pretrained import load_minilm, minilm_folder
from transformer_tutorial.probing import attention_between, strongest_heads
from transformer_tutorial.record import AttentionRecord

SENTENCES = [
    "The cat sat on the mat because it was tired.",
    "apple released a new phone at its keynote",
    "She baked an apple pie, naïve café-style — 3 times!",
]
IT_CAT = SENTENCES[0]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


@pytest.fixture(scope="module")
def reference():
    folder = str(minilm_folder())
    model = BertModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager")
    return model.eval(), AutoTokenizer.from_pretrained(folder, local_files_only=True)


def test_loaded_once_per_process(minilm):
    assert load_minilm() is minilm


@pytest.mark.parametrize("text", SENTENCES)
def test_hidden_states_and_attention_equal_transformers(minilm, reference, text):
    model, tokenizer = reference
    ids = tokenizer(text, return_tensors="pt").input_ids
    run = minilm.encode(text)
    assert run.text.ids == tuple(ids[0].tolist())
    with torch.no_grad():
        ref = model(ids, output_hidden_states=True, output_attentions=True)
    expected_hidden = torch.stack([h[0] for h in ref.hidden_states]).numpy()
    assert run.hidden_states.shape == (7, ids.shape[1], 384)
    np.testing.assert_allclose(run.hidden_states, expected_hidden, atol=1e-4, rtol=0)
    expected = AttentionRecord.from_layers(ref.attentions, run.text.tokens)
    assert run.record.weights.shape == (6, 12, ids.shape[1], ids.shape[1])
    np.testing.assert_allclose(run.record.weights, expected.weights, atol=1e-4, rtol=0)


def test_a_last_layer_head_links_it_to_cat(minilm):
    record = minilm.attention(IT_CAT)
    best = strongest_heads(record, "it", "cat", top=1, layer=5)[0]
    assert best.layer == 5 and best.weight >= 0.5
    assert best.weight == pytest.approx(record.head(5, best.head)[8, 2])
    # on average over heads "it" looks at "cat" more in the last layer than in the first
    per_layer = attention_between(record, "it", "cat").mean(axis=1)
    assert per_layer[-1] > per_layer[0]


def test_nearest_neighbours_in_the_static_table(minilm):
    neighbours = minilm.nearest_neighbours("king", 5)
    words = [w for w, _ in neighbours]
    assert "queen" in words and "king" not in words
    table = minilm.embedding_table()
    vocab = minilm.tokenizer.get_vocab()
    expected = cosine_similarity(table[vocab["king"]], table[vocab[words[0]]])
    assert neighbours[0][1] == pytest.approx(float(expected), abs=1e-6)
    assert [s for _, s in neighbours] == sorted((s for _, s in neighbours), reverse=True)
    with pytest.raises(ValueError, match="not a single token"):
        minilm.nearest_neighbours("transformerology")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("a cat\u200b sat", r"U\+200B"),
        ("bell \x07", r"U\+0007"),
        ("I love 🦜 parrots", r"no tokens for \['🦜'\]"),
        ("word " * 600, "at most 512"),
        (42, "must be a string"),
    ],
)
def test_bad_text_is_refused_clearly(minilm, text, message):
    with pytest.raises(ValueError, match=message):
        minilm.encode(text)


def test_no_silent_truncation_at_the_files_128(minilm):
    run = minilm.tokenize("word " * 300)
    assert len(run.ids) == 302


def test_control_tokens_typed_by_a_reader_stay_text(minilm, reference):
    _, tokenizer = reference
    text = "[CLS] [SEP] [MASK] the cat"
    ids = minilm.tokenize(text).ids
    special = {minilm.tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[MASK]")}
    assert ids[0] == minilm.tokenizer.token_to_id("[CLS]")
    assert ids[-1] == minilm.tokenizer.token_to_id("[SEP]")
    assert not special & set(ids[1:-1])  # only the two the tokenizer adds around the text
    # transformers' own switch for the same rule
    assert ids == tuple(tokenizer(text, split_special_tokens=True).input_ids)
