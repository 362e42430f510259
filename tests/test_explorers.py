"""Every explorer of the book: its data for a few control values is the package's computation,
and each control changes the data as the chapter says it should."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transformer_tutorial import explorers
from transformer_tutorial.attention import entropy, relevance_scores, softmax
from transformer_tutorial.embeddings import (
    TOY_SENTENCE,
    EmbeddingTable,
    cosine_similarity,
    toy_embeddings,
)
from transformer_tutorial.layers import EncoderBlock, layer_norm_steps, seeded_encoder_layer
from transformer_tutorial.multihead import pattern_features, pattern_heads, regroup_heads
from transformer_tutorial.positional import position_dot_products, sinusoidal_encoding
from transformer_tutorial.scaling import random_attention
from transformer_tutorial.tokens import tokenize

# Figure data is rounded to 4 significant digits.
ROUNDED = {"rtol": 1e-3, "atol": 1e-6}


def _panel(explorer, index: int = 0, **values) -> dict:
    return explorer.data(**values)["panels"][index]


def _bars(explorer, **values) -> dict[str, float]:
    panel = _panel(explorer, **values)
    return dict(zip(panel["labels"], panel["values"], strict=True))


# -- chapter 1 ---------------------------------------------------------------------------

HAND_MADE = "hand-made table (like a trained model)"
RANDOM = "random table (untrained, d_model=64)"


@pytest.mark.parametrize("word", ["cat", "mat", "sat", "it"])
def test_word_similarity_bars_are_cosine_similarities(word):
    explorer, toy = explorers.word_similarity(), toy_embeddings()
    shown = _bars(explorer, word=word)
    assert set(shown) == set(toy.vocab.words) - {word}
    (target,) = toy.lookup([word])
    for other, value in shown.items():
        assert value == pytest.approx(cosine_similarity(target, toy.lookup([other])[0]), rel=1e-3,
                                      abs=1e-6)  # fmt: skip
    assert list(shown.values()) == sorted(shown.values(), reverse=True)


def test_word_similarity_follows_the_word_and_the_table():
    explorer = explorers.word_similarity()
    assert [c.default for c in explorer.controls] == ["cat", HAND_MADE]
    assert next(iter(_bars(explorer, word="cat"))) == "dog"
    assert next(iter(_bars(explorer, word="mat"))) == "ball"
    random = EmbeddingTable.random(toy_embeddings().vocab, 64, seed=0)
    shown = _bars(explorer, word="cat", table=RANDOM)
    (cat,) = random.lookup(["cat"])
    expected = cosine_similarity(cat, random.lookup(["dog"])[0])
    assert shown["dog"] == pytest.approx(expected, rel=1e-3, abs=1e-6)
    assert max(abs(v) for v in shown.values()) < 0.35  # before training no word stands out
    panel = _panel(explorer, word="ball", table=RANDOM)
    assert (panel["vmin"], panel["vmax"]) == (-1.0, 1.0)  # fixed axis: frames compare
    assert panel["title"] == RANDOM
    assert "'dog'" in explorer.data(word="cat")["description"]


# -- chapter 2 ---------------------------------------------------------------------------

TOKENS = tokenize(TOY_SENTENCE)
IT = TOKENS.index("it")
X = toy_embeddings().lookup(TOKENS)
SCORES = relevance_scores(X, X)


def test_temperature_slider_covers_sharp_to_flat_finely():
    (control,) = explorers.softmax_temperature().controls
    assert control.default == 1.0 and len(control.values) >= 25
    assert list(control.values) == sorted(control.values)
    assert min(control.values) <= 0.1 and max(control.values) >= 5.0


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0, 3.0])
def test_temperature_frame_is_softmax_at_that_temperature(temperature):
    data = explorers.softmax_temperature().data(temperature=temperature)
    weights, row = data["panels"]
    expected = softmax(SCORES, temperature)
    np.testing.assert_allclose(weights["values"], expected, **ROUNDED)
    np.testing.assert_allclose(row["values"], expected[IT], **ROUNDED)
    assert weights["rows"] == TOKENS and row["highlight"] == [int(expected[IT].argmax())]
    assert f"is {expected[IT].max():.2f}" in data["title"]
    assert f"entropy {entropy(expected[IT]):.2f} nats" in data["description"]


def test_moving_the_temperature_sharpens_then_flattens_the_row():
    explorer = explorers.softmax_temperature()
    largest = [max(_panel(explorer, 1, temperature=t)["values"]) for t in explorers.TEMPERATURES]
    assert all(a > b for a, b in zip(largest, largest[1:], strict=False))
    assert largest[0] > 0.75 and largest[-1] < 1.2 / len(TOKENS)


def test_temperature_explorer_other_query_and_a_missing_one():
    explorer = explorers.softmax_temperature("The dog ran on the mat.", query="dog")
    x = toy_embeddings().lookup(tokenize("The dog ran on the mat."))
    np.testing.assert_allclose(_panel(explorer, 1, temperature=0.5)["values"],
                               softmax(relevance_scores(x, x), 0.5)[1], **ROUNDED)  # fmt: skip
    missing = explorers.softmax_temperature(query="zebra")
    with pytest.raises(ValueError, match="query must be a token of the sentence"):
        missing.data()
    assert all("query must be a token" in f["error"] for f in missing.spec()["frames"].values())


# -- chapter 3 ---------------------------------------------------------------------------


@pytest.mark.parametrize("d_k", [1, 64, 1024])
@pytest.mark.parametrize("scaling", explorers.SCALING_MODES)
def test_scaling_frame_is_the_package_computation(d_k, scaling):
    data = explorers.sqrt_dk_scaling().data(d_k=d_k, scaling=scaling)
    heat, hist = data["panels"]
    scores, weights = random_attention(10, d_k, scale=scaling == "scaled", seed=0)
    np.testing.assert_allclose(heat["values"], weights, **ROUNDED)
    assert sum(hist["counts"]) == scores.size
    assert (hist["xmin"], hist["xmax"]) == explorers.SCALING_SCORE_RANGE
    assert f"standard deviation {scores.std():.2f}" in data["description"]


def test_dk_slider_sharpens_unscaled_rows_only():
    explorer = explorers.sqrt_dk_scaling()

    def sharpness(d_k, scaling):
        return np.max(_panel(explorer, d_k=d_k, scaling=scaling)["values"], axis=-1).mean()

    assert sharpness(1024, "unscaled") > 0.9
    assert sharpness(1024, "unscaled") > sharpness(4, "unscaled") + 0.3
    assert abs(sharpness(1024, "scaled") - sharpness(4, "scaled")) < 0.15
    with pytest.raises(ValueError, match="scaling must be one of"):
        explorers.scaling_data(64, "halved")


# -- chapter 4 ---------------------------------------------------------------------------


def test_heads_explorer_follows_a_job_through_the_number_of_heads():
    explorer = explorers.heads_explorer()
    tokens = tokenize(explorers.HEADS_SENTENCES[0])
    n = len(tokens)
    prev = np.array(_panel(explorer, num_heads=4, job="previous token")["values"])
    assert (prev[np.arange(1, n), np.arange(n - 1)] > 0.95).all()
    assert (np.array(_panel(explorer, num_heads=4, job="first token")["values"])[:, 0] > 0.95).all()
    pair = _panel(explorer, num_heads=2, job="next token")
    assert pair == _panel(explorer, num_heads=2)  # previous and next token share head 0
    assert pair["title"] == "2 heads: head 0 = previous token + next token"
    _, w = regroup_heads(pattern_heads(), 2)(pattern_features(tokens))
    np.testing.assert_allclose(pair["values"], w[0, 0].detach().numpy(), **ROUNDED)
    one = np.array(_panel(explorer, num_heads=1, job="same word")["values"])
    assert one.max(axis=1).mean() < prev[1:].max(axis=1).mean()  # one head blurs the jobs
    assert _panel(explorer, sentence="how are you")["cols"] == ["how", "are", "you"]
    with pytest.raises(ValueError, match="1 to 16 tokens"):
        explorers.heads_data(" ".join(["word"] * 17), 4, "same word")


# -- chapter 5 ---------------------------------------------------------------------------


def test_position_explorer_follows_the_position_and_the_kind():
    explorer = explorers.position_explorer()
    assert len(explorer.controls[1].values) == explorers.POSITION_COUNT  # every position
    vector, curves = explorer.data(kind="sinusoidal", position=8)["panels"]
    np.testing.assert_allclose(vector["values"], sinusoidal_encoding(48, 32)[8].numpy(),
                               **ROUNDED)  # fmt: skip
    solid, dashed = curves["series"]
    dots = position_dot_products(sinusoidal_encoding(48, 32)).numpy()
    np.testing.assert_allclose(solid["y"], dots[8], **ROUNDED)
    np.testing.assert_allclose(dashed["y"], solid["y"], atol=1e-3)
    assert curves["xmarker"] == 8 and dashed["style"] == "dashed"
    moved = _panel(explorer, 1, kind="sinusoidal", position=24)
    assert moved["xmarker"] == 24 and int(np.argmax(moved["series"][0]["y"])) == 24
    for kind, close in (("RoPE", True), ("learned (untrained)", False)):
        solid, dashed = _panel(explorer, 1, kind=kind, position=20)["series"]
        gap = np.abs(np.subtract(solid["y"], dashed["y"])).max()
        assert (gap < 1e-2) if close else (gap > 1.0), kind


# -- chapter 6 ---------------------------------------------------------------------------


def test_layer_norm_explorer_standardizes_then_scales():
    explorer = explorers.layer_norm_explorer()
    tokens, steps = explorers.layer_norm_example()
    labels = explorers.layer_norm_token_labels(tokens)
    stages = explorers.NORM_STAGES

    def shown(token: str, stage: str) -> np.ndarray:
        return np.array(_panel(explorer, token=token, stage=stage)["values"])

    raw = shown(labels[1], stages[0])
    np.testing.assert_allclose(raw, steps["input"][1].detach().numpy(), **ROUNDED)
    standardized = shown(labels[1], stages[1])
    assert abs(standardized.mean()) < 1e-3 and abs(standardized.std() - 1) < 1e-3
    norm = EncoderBlock.from_torch(seeded_encoder_layer(16, 2, 64, seed=0)).add_norm1.norm
    expected = layer_norm_steps(torch.as_tensor(steps["input"][1]), norm)["output"]
    np.testing.assert_allclose(shown(labels[1], stages[2]), expected.detach().numpy(),
                               rtol=1e-3, atol=1e-4)  # fmt: skip
    assert not np.allclose(shown(labels[2], stages[1]), standardized)  # another token


# -- chapter 7 (the real MiniLM) ----------------------------------------------------------


def test_minilm_explorer_shows_every_head_four_at_a_time():
    from transformer_tutorial.pretrained import load_minilm

    explorer = explorers.minilm_layers_explorer()
    data = explorer.data(layer=5)
    (grid,) = data["panels"]
    record = load_minilm().attention(explorers.MINILM_SENTENCES[0])
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


# -- chapter 8 ---------------------------------------------------------------------------


def test_cross_attention_explorer_has_a_frame_per_snapshot():
    from transformer_tutorial.training import TrainConfig, train

    run = train(TrainConfig(steps=20, snapshot_steps=(0, 10, 20)), progress=False)
    explorer = explorers.cross_attention_training(run)
    assert explorer.controls[0].values == (0, 10, 20) and explorer.controls[1].values == (0, 1)
    data = explorer.data(step=20, layer=1)
    (grid,) = data["panels"]
    np.testing.assert_allclose(grid["items"][0]["values"], run.snapshots[20].head(1, 0),
                               **ROUNDED)  # fmt: skip
    assert "after 20 training steps" in data["title"] and "anti-diagonal" in data["description"]
    with pytest.raises(ValueError, match="step must be one of"):
        explorer.data(step=7)


# -- chapter 9 (the real SmolLM2) ---------------------------------------------------------


def test_next_token_explorer_filters():
    from transformer_tutorial.sampling import next_token_distribution

    explorer = explorers.next_token_explorer()
    assert len(explorer.controls[0].values) >= 25
    logits = explorers._next_token_logits(explorers.NEXT_TOKEN_PROMPT)
    top3 = _panel(explorer, temperature=0.3, sampling_filter="top-k 3")
    assert len(top3["values"]) == 3 and sum(top3["values"]) == pytest.approx(1.0, abs=1e-3)
    expected = np.sort(next_token_distribution(logits, 0.3, top_k=3))[::-1][:3]
    np.testing.assert_allclose(top3["values"], expected, **ROUNDED)
    hot = _panel(explorer, temperature=2.0, sampling_filter="none")
    assert len(hot["values"]) == 12 and sum(hot["values"]) < 0.5  # spread thin
    nucleus = explorer.data(temperature=1.0, sampling_filter="top-p 0.5")
    kept = int((next_token_distribution(logits, 1.0, top_p=0.5) > 0).sum())
    everything = int((next_token_distribution(logits, 1.0) > 0).sum())
    assert kept < everything / 100
    assert f"filter: top-p 0.5: {kept} possible next tokens" in nucleus["title"]
    assert nucleus["panels"][0]["labels"][0].startswith("'")  # quoted: a leading space shows


def test_layer_norm_explorer_with_minilm_trained_scale_and_shift():
    from transformer_tutorial.pretrained import load_minilm

    explorer = explorers.layer_norm_explorer()
    trained = explorers.NORM_BLOCKS[1]
    norm = load_minilm().model.blocks[0].add_norm1.norm
    tokens, steps = explorers.minilm_layer_norm_example()
    assert tokens[0] == "[CLS]" and tokens[2] == "cat"

    def shown(stage: int) -> np.ndarray:
        stage_name = explorers.NORM_STAGES[stage]
        return np.array(_panel(explorer, token="cat (position 1)", stage=stage_name,
                               block=trained)["values"])  # fmt: skip

    raw, standardized, out = shown(0), shown(1), shown(2)
    assert raw.shape == (384,)
    np.testing.assert_allclose(raw, steps["input"][2].numpy(), **ROUNDED)
    assert abs(standardized.mean()) < 1e-3 and abs(standardized.std() - 1) < 1e-3
    expected = norm(torch.as_tensor(steps["input"][2])).detach().numpy()  # torch's own LayerNorm
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-4)
    assert np.abs(out - standardized).max() > 1.0  # trained gamma and beta visibly change it
