"""Bad input never crashes and never lies (issue 14): one test per class of the issue.

Each class: out of memory inside the advertised context, figures crashing on ordinary text,
silent wrong answers, control tokens typed as text, obscure errors from deep inside, slow
work before refusing, and the display of partial characters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

from transformer_tutorial import checks
from transformer_tutorial.attention import (
    padding_mask,
    relevance_scores,
    scaled_dot_product_attention,
    softmax,
)
from transformer_tutorial.bertviz_views import head_view
from transformer_tutorial.chapters.ch08_encoder_decoder import loss_curves
from transformer_tutorial.chapters.ch09_generation import distribution_chart
from transformer_tutorial.cost import process_peak_bytes
from transformer_tutorial.embeddings import cosine_similarity
from transformer_tutorial.layers import EncoderBlock, FeedForward, SwiGLU
from transformer_tutorial.llama import LlamaConfig, LlamaDecoder, read_gguf
from transformer_tutorial.multihead import GroupedQueryAttention, MultiHeadAttention
from transformer_tutorial.norms import RMSNorm
from transformer_tutorial.plots import attention_heatmap, bar_chart, head_grid, plain_text
from transformer_tutorial.pretrained import show_bytes
from transformer_tutorial.projections import project
from transformer_tutorial.record import AttentionRecord
from transformer_tutorial.sampling import next_token_distribution
from transformer_tutorial.training import TrainConfig, train

# -- the shared checks ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None, np.float64(2.0)])
def test_positive_int_refuses_and_names_the_argument(bad):
    with pytest.raises(ValueError, match="heads must be a positive integer"):
        checks.positive_int(bad, "heads")


def test_positive_int_accepts_numpy_integers():
    assert checks.positive_int(np.int64(3), "n") == 3
    assert type(checks.positive_int(np.int64(3), "n")) is int


def test_float_array_names_the_expected_shape():
    with pytest.raises(ValueError, match=r"q must have shape \(batch, heads, seq, d_head\)"):
        checks.float_array(np.ones((2, 3)), "q", "(batch, heads, seq, d_head)", ndim=4)
    with pytest.raises(ValueError, match="q must hold finite numbers"):
        checks.float_array([[1.0, math.nan]], "q", "(seq, d)", ndim=2)
    with pytest.raises(ValueError, match="q must not be empty"):
        checks.float_array(np.zeros((2, 0)), "q", "(seq, d)", ndim=2)


def test_temperature_accepts_numpy_scalars_and_refuses_the_rest():
    assert checks.temperature(np.float32(0.7)) == pytest.approx(0.7)
    for bad in (0, -1.0, math.inf, math.nan, "0.7", True):
        with pytest.raises(ValueError, match="temperature"):
            checks.temperature(bad)
    assert checks.temperature(0, allow_zero=True) == 0.0


# -- silent wrong answers --------------------------------------------------------------------


def test_softmax_with_tiny_temperature_is_one_hot_not_zeros():
    weights = softmax(np.array([1.0, 2.0, 3.0]), temperature=1e-310)
    np.testing.assert_array_equal(weights, [0.0, 0.0, 1.0])


def test_softmax_of_overflowing_scores_is_a_distribution():
    weights = softmax(np.array([[1e308, -1e308, 1e308], [1e308, 0.0, -1e308]]), temperature=0.5)
    np.testing.assert_allclose(weights, [[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]])
    assert np.isfinite(weights).all()


def test_softmax_temperature_must_be_positive_and_finite():
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="temperature"):
            softmax(np.ones(3), temperature=bad)


def test_softmax_equals_torch_at_ordinary_temperatures():
    scores = np.random.default_rng(0).normal(size=(4, 7)) * 5
    for t in (0.3, 1.0, 2.5):
        expected = torch.softmax(torch.from_numpy(scores) / t, dim=-1).numpy()
        np.testing.assert_allclose(softmax(scores, temperature=t), expected, rtol=1e-12)


def test_next_token_distribution_accepts_numpy_temperature():
    probs = next_token_distribution(np.array([1.0, 2.0, 3.0]), temperature=np.float32(0.7))
    expected = torch.softmax(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) / 0.7, 0)
    np.testing.assert_allclose(probs, expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "call",
    [
        lambda: relevance_scores([[1.0, math.nan]], [[1.0, 2.0]]),
        lambda: project(np.array([[math.inf, 1.0]]), np.eye(2)),
        lambda: cosine_similarity([1.0, math.nan], [1.0, 2.0]),
        lambda: MultiHeadAttention(4, 2)(torch.full((1, 2, 4), math.nan)),
        lambda: FeedForward(4, 8)(torch.full((1, 2, 4), math.inf)),
        lambda: SwiGLU(4, 8)(torch.full((1, 2, 4), math.nan)),
        lambda: RMSNorm(4)(torch.full((1, 2, 4), math.nan)),
        lambda: EncoderBlock(4, 2, 8)(torch.full((1, 2, 4), -math.inf)),
        lambda: GroupedQueryAttention(4, 2, 1)(torch.full((1, 2, 4), math.nan)),
    ],
)
def test_non_finite_inputs_are_refused(call):
    with pytest.raises(ValueError, match="finite"):
        call()


def test_cosine_similarity_of_huge_and_tiny_vectors_is_finite():
    assert cosine_similarity([1e300, 1e300], [1e300, 0.0]) == pytest.approx(math.sqrt(0.5))
    assert cosine_similarity([1e-300, 0.0], [3e-300, 0.0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "field",
    [
        {"steps": -5}, {"steps": 0}, {"lr_factor": math.inf}, {"lr_factor": -1.0},
        {"lr_factor": math.nan}, {"batch_size": 0}, {"warmup_steps": 0}, {"seed": -1},
        {"num_heads": 3}, {"d_model": 2.5}, {"snapshot_steps": (0, "5")},
    ],
)  # fmt: skip
def test_train_config_refuses_bad_values(field):
    with pytest.raises(ValueError, match=next(iter(field))):
        TrainConfig(**field)


def test_training_that_diverges_stops_with_an_error():
    config = TrainConfig(
        steps=3, batch_size=4, lr_factor=1e30, warmup_steps=1, snapshot_steps=(), d_model=8,
        num_heads=2, d_ff=16, num_layers=1,
    )  # fmt: skip
    with pytest.raises(ValueError, match="diverged.*lr_factor"):
        train(config, progress=False)


def test_padding_mask_refuses_a_string_pad_id():
    ids = np.array([[5, 0, 0]])
    with pytest.raises(ValueError, match="pad_id"):
        padding_mask(ids, pad_id="0")
    np.testing.assert_array_equal(padding_mask(ids, pad_id=np.int64(0)), [[[True, False, False]]])


# -- obscure errors from deep inside ---------------------------------------------------------


def test_nested_lists_are_converted_like_arrays():
    q = [[1.0, 0.0], [0.0, 1.0]]
    context, weights = scaled_dot_product_attention(q, q, q)
    expected = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor([q], dtype=torch.float64) for _ in range(3))
    )[0].numpy()
    np.testing.assert_allclose(context, expected, rtol=1e-12)
    np.testing.assert_allclose(weights.sum(-1), 1.0)


def test_ragged_lists_get_a_clear_error():
    with pytest.raises(ValueError, match="k must be an array of numbers"):
        scaled_dot_product_attention([[1.0, 2.0]], [[1.0], [2.0, 3.0]], [[1.0, 2.0]])


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_other_float_dtypes_are_converted_to_the_module_dtype(dtype):
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    out, _ = mha(x.to(dtype))
    assert out.dtype == torch.float32
    expected, _ = mha(x.to(dtype).float())
    torch.testing.assert_close(out, expected)
    ffn = FeedForward(8, 16)
    assert ffn(x.to(dtype)).dtype == torch.float32


def test_empty_arrays_and_zero_heads_give_value_errors():
    with pytest.raises(ValueError, match="num_heads must be a positive integer"):
        MultiHeadAttention(8, 0)
    with pytest.raises(ValueError, match="num_kv_heads must be a positive integer"):
        GroupedQueryAttention(8, 2, 0)
    with pytest.raises(ValueError, match="query must not be empty"):
        MultiHeadAttention(8, 2)(torch.zeros(1, 0, 8))
    with pytest.raises(ValueError, match="scores must not be empty"):
        softmax(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="values must have shape"):
        bar_chart(np.zeros(0), [])


def test_a_text_file_is_not_a_gguf(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("hello, not a model\n")
    with pytest.raises(ValueError, match="path: .* is not a gguf file"):
        read_gguf(path)
    with pytest.raises(ValueError, match="path must be a str or Path"):
        read_gguf(3)


def _record() -> AttentionRecord:
    weights = np.full((2, 3, 2, 2), 0.5)
    return AttentionRecord(weights, ("a", "b"), ("a", "b"))


@pytest.mark.parametrize("heads", ["0", [3], [0, "1"], 0])
def test_head_view_refuses_bad_heads(heads):
    with pytest.raises(ValueError, match="heads"):
        head_view(_record(), heads=heads)


def test_head_view_refuses_a_bad_layer():
    with pytest.raises(ValueError, match="layer"):
        head_view(_record(), layer=2)


# -- figures: text is data -------------------------------------------------------------------


def _drawn_texts(fig: Figure) -> list[str]:
    fig.canvas.draw()  # raises if matplotlib's math parser chokes on a label
    return [t.get_text() for t in fig.findobj(Text)]


@pytest.mark.parametrize("token", ["$$", "$", "a $ b $", "$x$", "\\$", "5$ and 6$"])
def test_tokens_with_dollars_draw_literally(token):
    tokens = [token, "cat"]
    weights = np.array([[0.5, 0.5], [0.2, 0.8]])
    figures = [
        attention_heatmap(weights, tokens, tokens, title=token),
        head_grid(weights[None], tokens, titles=[token]),
        bar_chart(np.array([0.3, 0.7]), tokens, title=token, xlabel=token),
        distribution_chart(np.array([0.6, 0.4]), lambda ids: [tokens[i] for i in ids], top=2,
                           title=token),
        loss_curves({token: [1.0, 0.5]}, title=token),
    ]  # fmt: skip
    for fig in figures:
        texts = _drawn_texts(fig)
        assert plain_text(token) in texts
    # mathtext would draw "$x$" as an italic x; escaped, the text keeps its dollars
    fig = attention_heatmap(weights, tokens, tokens)
    label = fig.axes[0].get_xticklabels()[0]
    assert not label._preprocess_math(label.get_text())[1]  # not parsed as math


# -- control tokens typed as text, display of partial characters ------------------------------


def test_show_bytes_marks_partial_characters():
    assert show_bytes("日".encode()) == "日"
    assert show_bytes("日".encode()[:2]) == "<0xE6><0x97>"
    assert show_bytes(b"a\xe6\x97") == "a<0xE6><0x97>"
    assert show_bytes("é".encode()[1:] + b"x") == "<0xA9>x"


# -- memory and argument order on a small decoder --------------------------------------------


def _small_decoder() -> LlamaDecoder:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32, d_model=16, num_layers=3, num_heads=4, num_kv_heads=2,
                         d_ff=32, max_positions=64)  # fmt: skip
    return LlamaDecoder(config).eval()


def test_decoder_keeps_attention_only_for_the_layers_asked():
    model = _small_decoder()
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        none = model(ids)
        some = model(ids, attention_layers=[2, 0])
        every = model(ids, attention_layers="all")
    assert none.attentions == () and none.attention_layers == ()
    assert some.attention_layers == (0, 2) and len(some.attentions) == 2
    torch.testing.assert_close(some.attentions[1], every.attentions[2])
    torch.testing.assert_close(none.logits, every.logits, rtol=0, atol=0)
    for bad in ("some", [3], [-1], ["0"], 1):
        with pytest.raises(ValueError, match="attention_layers"):
            model(ids, attention_layers=bad)


def test_generate_refuses_bad_arguments_before_any_work():
    from transformer_tutorial.generation import generate

    model = _small_decoder()
    calls = []
    model.register_forward_pre_hook(lambda *_: calls.append(1))
    for kwargs in ({"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}, {"temperature": -1.0},
                   {"temperature": math.nan}, {"max_new_tokens": 0}, {"eos_id": 99},
                   {"top_k": "5"}):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            generate(model, [1, 2, 3], **kwargs)
    assert calls == []


def test_long_prompt_memory_is_linear_in_layers_not_quadratic_per_layer():
    """A 2,048-token prompt through a decoder with SmolLM2's 9 heads (3 key/value heads) but
    narrow heads, to keep it fast: the memory that grows with n^2 is the (heads, n, n) scores,
    whatever d_head. Without attention kept the peak is about two layers' worth, not one per
    layer; kept for six layers, it holds six."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, d_model=72, num_layers=8, num_heads=9, num_kv_heads=3,
                         d_ff=64, max_positions=8192)  # fmt: skip
    model = LlamaDecoder(config).eval()
    n = 2048
    ids = torch.randint(0, 64, (1, n), generator=torch.Generator().manual_seed(0))
    per_layer = config.num_heads * n * n * 4  # one layer's weights, float32: 151 MB
    with torch.no_grad():
        peak = process_peak_bytes(lambda: model(ids))
        kept = process_peak_bytes(lambda: model(ids, attention_layers=[0, 1, 2, 3, 4, 5]))
    assert peak < 4 * per_layer, f"peak {peak / 2**20:.0f} MiB for {n} tokens"
    # six layers' weights are kept (resident memory is measured to a few pages: 5 as the bound)
    assert kept > 5 * per_layer and kept > peak + 3 * per_layer


# -- checks added for the chapter modules, the explorer panels and the browser model ---------


def test_labels_are_a_sequence_not_one_string():
    assert checks.labels(range(3), "rows", 3) == ["0", "1", "2"]
    assert checks.labels(np.array([1.5, 2.0]), "rows") == ["1.5", "2.0"]
    with pytest.raises(ValueError, match="rows must be a sequence of labels, got str"):
        checks.labels("ab", "rows")
    with pytest.raises(ValueError, match="rows needs 3 labels, got 2"):
        checks.labels(["a", "b"], "rows", 3)


def test_bool_array_takes_booleans_and_zeros_and_ones_only():
    np.testing.assert_array_equal(checks.bool_array(np.eye(2), "mask"), np.eye(2, dtype=bool))
    assert checks.bool_array([[True, False]], "mask").dtype == np.bool_
    for bad in (np.full((2, 2), 0.5), "mask", [[1, 2], [3]]):
        with pytest.raises(ValueError, match="mask must be an array of booleans"):
            checks.bool_array(bad, "mask")


def test_argument_errors_name_the_argument_and_keep_the_cause():
    with pytest.raises(ValueError, match=r"^sentences\[2\]: text is empty") as info:
        with checks.argument_errors("sentences[2]"):
            checks.text(" ")
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(ValueError, match="^fn: ZeroDivisionError: division by zero"):
        with checks.argument_errors("fn", Exception):
            1 / 0  # noqa: B018 - the error is the point
    with pytest.raises(KeyError):  # not one of the errors asked for: passes through
        with checks.argument_errors("fn"):
            {}["missing"]  # noqa: B018


def test_paths_and_folders(tmp_path):
    assert checks.path(tmp_path / "m.onnx", "path", absolute=True, suffix=".onnx").name == "m.onnx"
    for bad, message in [
        (3, "path must be a path"), ("", "non-empty path"), ("a\x00b", "NUL"),
        ("model.txt", "ending in .onnx"), ("relative/m.onnx", "absolute"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            checks.path(bad, "path", absolute=message == "absolute", suffix=".onnx")
    (tmp_path / "config.json").write_text("{}")
    assert checks.folder_with(tmp_path, "folder", ["config.json"]) == tmp_path
    with pytest.raises(ValueError, match="folder .* has no vocab.txt"):
        checks.folder_with(tmp_path, "folder", ["config.json", "vocab.txt"])
    with pytest.raises(ValueError, match="folder must be an existing folder"):
        checks.folder_with(tmp_path / "nowhere", "folder", [])


def test_chapter_link_takes_numpy_integers_and_refuses_the_rest():
    from transformer_tutorial.diagrams import chapter_link

    assert chapter_link(np.int64(3)) == chapter_link(3)
    for bad in ([], "3", 3.0, None):
        with pytest.raises(ValueError, match="chapter must be an integer"):
            chapter_link(bad)


def test_nonlinearity_gap_names_fn_and_converts_x_to_the_module_dtype():
    from transformer_tutorial.chapters.ch06_feed_forward import nonlinearity_gap

    torch.manual_seed(0)
    ffn, x = FeedForward(8, 16), torch.randn(2, 4, 8)
    assert nonlinearity_gap(ffn, x.double()) == nonlinearity_gap(ffn, x)
    with pytest.raises(ValueError, match="fn must be callable"):
        nonlinearity_gap(3, x)
    with pytest.raises(ValueError, match=r"^fn: x must be a tensor of shape") as info:
        nonlinearity_gap(FeedForward(4, 8), x)  # the wrong width for x
    assert info.value.__cause__ is not None
    with pytest.raises(ValueError, match=r"x must have shape \(batch, seq >= 2, d\)"):
        nonlinearity_gap(ffn, x[:, :1])
    with pytest.raises(ValueError, match="x must hold finite numbers"):
        nonlinearity_gap(ffn, torch.full((1, 2, 8), math.nan))


def test_minilm_chapter_helpers_name_the_bad_sentence():
    from transformer_tutorial.chapters.ch07_stacking import layer_profile, sense_gap
    from transformer_tutorial.pretrained import load_minilm

    minilm = load_minilm()
    with pytest.raises(ValueError, match="minilm must be a MiniLM"):
        layer_profile("MiniLM")
    with pytest.raises(ValueError, match=r"^sentences\[1\]: text is empty"):
        layer_profile(minilm, ["A cat.", "  "])
    with pytest.raises(ValueError, match="sentences must be a sequence of texts, got str"):
        layer_profile(minilm, "A cat.")
    with pytest.raises(ValueError, match="word must be one of the tokens of text"):
        sense_gap(minilm, "A cat sat.", "dog", ["animal"], ["money"])
    with pytest.raises(ValueError, match="^away: "):
        sense_gap(minilm, "A cat sat.", "cat", ["animal"], ["日本語🙂"])


def test_encoder_decoder_helpers_check_their_arguments():
    from transformer_tutorial.chapters.ch08_encoder_decoder import (
        attention_to_next_token,
        tail_loss,
    )
    from transformer_tutorial.models import EncoderDecoder

    assert tail_loss(np.array([3.0, 1.0, 2.0], dtype=np.float32), last=2) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="losses must be an array of numbers"):
        tail_loss(["a", "b"])
    with pytest.raises(ValueError, match="losses must hold finite numbers"):
        tail_loss([1.0, math.inf], last=1)
    torch.manual_seed(0)
    model = EncoderDecoder(12, 12, 8, 2, 16, 1, 1)
    with pytest.raises(ValueError, match="batch must be a TaskBatch"):
        attention_to_next_token(model, (torch.ones(1, 3), torch.ones(1, 4)))
    with pytest.raises(ValueError, match="model must be a EncoderDecoder"):
        attention_to_next_token("model", None)


def test_timing_helpers_refuse_before_any_work():
    from transformer_tutorial.chapters.ch10_cost import (
        local_slopes,
        measure_attention,
        slope_range,
    )
    from transformer_tutorial.cost import sample_seconds

    calls = []
    with pytest.raises(ValueError, match="repeats must be in"):
        sample_seconds(lambda: calls.append(1), repeats=10**9)
    assert calls == []
    with pytest.raises(ValueError, match="fn must be a function taking no arguments"):
        sample_seconds(42)
    with pytest.raises(ValueError, match="^fn: ZeroDivisionError"):
        sample_seconds(lambda: 1 / 0)
    with pytest.raises(ValueError, match="^clock: clock\\(\\) must be a finite number"):
        sample_seconds(lambda: None, clock=lambda: "noon")
    with pytest.raises(ValueError, match="GiB of attention weights"):
        measure_attention(lengths=(8192,), num_heads=16)
    with pytest.raises(ValueError, match="lengths must be in"):
        measure_attention(lengths=(2**40,))
    with pytest.raises(ValueError, match="each unlike the next"):
        local_slopes([256, 256, 512], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="values must be > 0"):
        local_slopes([256, 512], [1.0, 0.0])
    with pytest.raises(ValueError, match="too many orders of magnitude"):
        slope_range([2, 4], [[1e300], [1e-300]])


def test_generation_step_figures_check_steps_and_escape_titles():
    from transformer_tutorial.chapters.ch09_generation import (
        GenerationStep,
        StepTimes,
        speedup_figure,
        steps_figure,
        steps_table,
    )

    step = GenerationStep(3, (("a", 0.75), ("b", 0.25)), "a", 5, 0.75, 0, "a")
    figure = steps_figure([step], title="costs $5 or $$6")
    assert figure.axes[0].get_title() == plain_text("costs $5 or $$6")
    with pytest.raises(ValueError, match="steps must hold GenerationStep only"):
        steps_table(["step 1"])
    with pytest.raises(ValueError, match="steps must hold at least one GenerationStep"):
        steps_figure([])
    times = StepTimes((2, 4), np.full((2, 3), 2e-3), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="times.with_cache must hold times > 0"):
        speedup_figure(times)


def test_explorer_panels_check_every_option():
    from transformer_tutorial.widgets import (
        Control,
        ExplorerWidget,
        bars,
        frame,
        heatmap,
        histogram,
        lines,
    )

    assert bars([1e-320, 0.5], ["tiny", "half"])["values"] == [1e-320, 0.5]  # was NaN
    with pytest.raises(ValueError, match="rows must be a sequence of labels, got str"):
        heatmap(np.eye(2), "ab", ["a", "b"])
    with pytest.raises(ValueError, match="vmax must be a finite number"):
        heatmap(np.eye(2), ["a", "b"], ["a", "b"], vmax=math.nan)
    with pytest.raises(ValueError, match="digits must be in"):
        bars([1.0], ["a"], digits=-1)
    with pytest.raises(ValueError, match="highlight must be in"):
        bars([1.0, 2.0], ["a", "b"], highlight=[2])
    with pytest.raises(ValueError, match="series must map at least one name"):
        lines([0, 1], {})
    with pytest.raises(ValueError, match="value_range must have low < high"):
        histogram([1.0], bins=3, value_range=(-1.7e308, 1.7e308))
    with pytest.raises(ValueError, match="bins must be in"):
        histogram([1.0], bins=0, value_range=(0, 1))
    with pytest.raises(ValueError, match="description"):
        frame(description="no panel")
    with pytest.raises(ValueError, match="values of control 'word' must be a sequence"):
        Control("word", "cat")
    with pytest.raises(ValueError, match="values of control 't' must be finite"):
        Control("t", (1.0, math.nan))
    with pytest.raises(ValueError, match="explorer must be a Explorer"):
        ExplorerWidget({"title": "not an explorer"})


def test_browser_model_build_refuses_bad_paths_before_exporting(tmp_path, monkeypatch):
    from transformer_tutorial import browser_model

    def no_export(*args, **kwargs):
        raise AssertionError("the arguments were refused too late: an export started")

    monkeypatch.setattr(browser_model, "export_minilm_onnx", no_export)
    with pytest.raises(ValueError, match="target must be an absolute path"):
        browser_model.write_browser_model("site/minilm", tmp_path / "cache")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="cache_dir must be a folder"):
        browser_model.write_browser_model(tmp_path / "site", tmp_path / "file")
    with pytest.raises(ValueError, match="node_modules: onnxruntime-web is missing"):
        browser_model.write_site_files(tmp_path / "site", tmp_path, tmp_path / "cache")
    assert not (tmp_path / "site").exists()


def test_browser_model_files_are_checked(tmp_path):
    from transformer_tutorial.browser_model import (
        WEIGHTS_FILE,
        cache_key,
        export_minilm_onnx,
        load_browser_model,
        move_weights_to_float16,
    )

    with pytest.raises(ValueError, match="path must be a file name ending in .onnx"):
        export_minilm_onnx(tmp_path / "model.txt")
    with pytest.raises(ValueError, match="encoder must be a BertEncoder"):
        export_minilm_onnx(tmp_path / "model.onnx", encoder=FeedForward(8, 16))
    with pytest.raises(ValueError, match="model must be a ModelProto"):
        move_weights_to_float16(b"onnx bytes")
    with pytest.raises(ValueError, match="has no model.safetensors"):
        cache_key(tmp_path)
    with pytest.raises(ValueError, match="has no model.onnx"):
        load_browser_model(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"not a protobuf at all \xff\xff")
    (tmp_path / WEIGHTS_FILE).write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="^folder: ") as info:
        load_browser_model(tmp_path)
    assert info.value.__cause__ is not None
