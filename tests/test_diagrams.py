"""The architecture diagrams: labels measured from the run, geometry that fits, text as data."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from transformer_tutorial import diagrams, palette
from transformer_tutorial.bert import BertConfig, BertEncoder
from transformer_tutorial.diagrams import Box, Diagram
from transformer_tutorial.layers import EncoderBlock
from transformer_tutorial.llama import LlamaConfig, LlamaDecoder
from transformer_tutorial.models import EncoderDecoder
from transformer_tutorial.multihead import GroupedQueryAttention, MultiHeadAttention
from transformer_tutorial.positional import SinusoidalPositionalEncoding
from transformer_tutorial.projections import QKVProjection

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


def _seeded(build):
    torch.manual_seed(0)
    return build()


def _mha(d_model: int, heads: int, seq: int = 12) -> diagrams.Diagram:
    mha = _seeded(lambda: MultiHeadAttention(d_model, heads))
    return diagrams.multi_head(mha, torch.randn(1, seq, d_model))


def _llama(d_model: int = 36, layers: int = 30, heads: int = 9, kv_heads: int = 3) -> LlamaDecoder:
    config = LlamaConfig(vocab_size=50, d_model=d_model, num_layers=layers, num_heads=heads,
                         num_kv_heads=kv_heads, d_ff=2 * d_model, max_positions=64)
    return _seeded(lambda: LlamaDecoder(config).eval())


def _bert(d_model: int = 24, layers: int = 3, heads: int = 2) -> BertEncoder:
    config = BertConfig(vocab_size=40, d_model=d_model, num_layers=layers, num_heads=heads,
                        d_ff=4 * d_model, max_positions=32)
    return _seeded(lambda: BertEncoder(config).eval())


def _seq2seq(d_model: int = 32, heads: int = 4, layers: int = 2) -> EncoderDecoder:
    return _seeded(lambda: EncoderDecoder(20, 20, d_model, heads, 2 * d_model, layers, layers,
                                          share_embeddings=True))


SRC = torch.tensor([[4, 5, 6, 7, 8, 9]])
TGT = torch.tensor([[2, 9, 8, 7, 6, 5, 4]])


def _blocks(d_model: int = 16):
    post = _seeded(lambda: EncoderBlock(d_model, 2, 4 * d_model, norm_first=False))
    pre = _seeded(lambda: EncoderBlock(d_model, 2, 4 * d_model, norm_first=True))
    return post, pre


def _all_diagrams() -> dict[str, Diagram]:
    x = np.random.default_rng(0).normal(size=(11, 4))
    projection = QKVProjection.random(4, d_k=3, d_v=2, seed=0)
    post, pre = _blocks()
    return {
        "weighted_average": diagrams.weighted_average(x),
        "attention_head": diagrams.attention_head(projection, x),
        "attention_head_masked": diagrams.attention_head(
            projection, x, mask=np.tril(np.ones((11, 11), dtype=bool))
        ),
        "multi_head": _mha(64, 4),
        "positional_encoding": diagrams.positional_encoding(
            torch.randn(1, 5, 16), SinusoidalPositionalEncoding(100, 16),
            GroupedQueryAttention(16, 2, 2),
        ),
        "norm_placement": diagrams.norm_placement(post, pre, torch.randn(1, 7, 16)),
        "encoder_stack": diagrams.encoder_stack(_bert(), torch.arange(1, 14)[None]),
        "encoder_stack_deep": diagrams.encoder_stack(_bert(layers=12), torch.arange(1, 14)[None]),
        "encoder_decoder": diagrams.encoder_decoder(_seq2seq(), SRC, TGT),
        "transformer": diagrams.transformer(_seq2seq(layers=3), SRC, TGT),
        "generation_loop": diagrams.generation_loop(_llama(), torch.arange(1, 8)[None]),
        "attention_cost": diagrams.attention_cost(_seeded(lambda: MultiHeadAttention(64, 4))),
    }


@pytest.fixture(scope="module")
def every_diagram() -> dict[str, Diagram]:
    return _all_diagrams()


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# -- shapes come from the run ---------------------------------------------------------------


def test_multi_head_labels_follow_the_module_sizes():
    for d_model, heads in ((64, 4), (48, 3)):
        mha = _seeded(lambda d_model=d_model, heads=heads: MultiHeadAttention(d_model, heads))
        x = torch.randn(1, 12, d_model)
        labels = diagrams.multi_head(mha, x).arrow_labels()
        _, weights = mha(x)  # the reference: the module's own forward
        d_head = d_model // heads
        assert f"Q (1, 12, {d_model})" in labels
        assert f"Q_i (1, {heads}, 12, {d_head})" in labels
        assert f"weights {tuple(weights.shape)}" in labels
        assert f"Concat (1, 12, {d_model})" in labels
        assert any(b.label == f"split into {heads} heads" for b in
                   diagrams.multi_head(mha, x).boxes)


def test_multi_head_other_sizes_share_no_shape_label():
    small, large = _mha(48, 3).arrow_labels(), _mha(64, 4).arrow_labels()
    assert not set(small) & set(large)


def test_attention_head_labels_follow_the_projection():
    x = np.random.default_rng(1).normal(size=(9, 4))
    for d_k, d_v in ((3, 2), (5, 6)):
        projection = QKVProjection.random(4, d_k=d_k, d_v=d_v, seed=0)
        labels = diagrams.attention_head(projection, x).arrow_labels()
        assert f"Q (9, {d_k})" in labels and f"K (9, {d_k})" in labels
        assert f"V (9, {d_v})" in labels and f"C (9, {d_v})" in labels
        assert "weights A (9, 9)" in labels


def test_weighted_average_labels():
    labels = diagrams.weighted_average(np.ones((5, 3))).arrow_labels()
    assert "scores S (5, 5)" in labels and "context vectors C (5, 3)" in labels


def test_norm_placement_follows_d_model():
    for d_model in (16, 24):
        post, pre = _blocks(d_model)
        d = diagrams.norm_placement(post, pre, torch.randn(1, 7, d_model))
        assert f"x + attention (1, 7, {d_model})" in d.arrow_labels()  # post-norm only
        assert f"LN(x) (1, 7, {d_model})" in d.arrow_labels()  # pre-norm only
        # the post-norm column has its layer norm after the sum, the pre-norm one before
        assert d.box("post_ln1").y > d.box("post_add1").y
        assert d.box("pre_ln1").y < d.box("pre_add1").y


def test_norm_placement_rejects_swapped_blocks():
    post, pre = _blocks()
    with pytest.raises(ValueError, match="norm_first"):
        diagrams.norm_placement(pre, post, torch.randn(1, 7, 16))


def test_encoder_stack_follows_the_config():
    for d_model, layers, heads in ((24, 3, 2), (32, 4, 4)):
        d = diagrams.encoder_stack(_bert(d_model, layers, heads), torch.arange(1, 10)[None])
        labels = d.arrow_labels()
        assert f"h⁽0⁾ (1, 9, {d_model})".replace("0", "⁰", 1) in labels
        assert any(lbl.startswith(diagrams._h(layers)) for lbl in labels)
        assert d.box("block0").detail.startswith(f"{heads} heads × d_head {d_model // heads}")
        assert sum(b.key.startswith("block") for b in d.boxes) == layers


def test_a_deep_stack_is_shortened():
    d = diagrams.encoder_stack(_bert(layers=12), torch.arange(1, 6)[None])
    assert [b.key for b in d.boxes if b.key.startswith("block")] == ["block0", "block1",
                                                                     "block11"]
    assert d.box("gap").label == "… 9 more blocks …"


def test_encoder_decoder_masks_and_memory_are_measured():
    model = _seq2seq(d_model=32, layers=3)
    d = diagrams.encoder_decoder(model, SRC, TGT)
    # memory feeds the cross-attention of every decoder layer
    feeds = [a.target for a in d.arrows if a.source == "memory"]
    assert feeds == ["dec0_cross", "dec1_cross", "dec2_cross"]
    assert d.box("dec0_self").detail == "mask: causal + padding"
    assert d.box("dec2_cross").detail == "mask: source padding"
    assert d.box("enc0").detail == "self-attention mask: padding"
    assert "memory (1, 6, 32)" in d.arrow_labels()
    assert "logits (1, 7, 20)" in d.arrow_labels()
    no_mask = _seq2seq()
    no_mask.causal = False
    assert diagrams.encoder_decoder(no_mask, SRC, TGT).box("dec0_self").detail == "mask: padding"


def test_transformer_links_every_box_to_a_chapter():
    d = diagrams.transformer(_seq2seq(d_model=48, heads=3, layers=2), SRC, TGT)
    for box in d.boxes:
        assert re.fullmatch(r"\.\./notebooks/\d\d_[a-z_]+\.html", box.href), box
    assert "(1, 7, 48)" in d.arrow_labels()
    assert "logits (1, 7, 20)" in d.arrow_labels()
    assert [f.label for f in d.frames] == ["N = 2", "N = 2"]


def test_generation_loop_for_smollm2_sizes():
    d = diagrams.generation_loop(_llama(), torch.arange(1, 8)[None])
    labels = d.arrow_labels()
    assert d.box("model").label == "decoder: 30 blocks"
    assert d.box("model").detail == "9 query heads, 3 key/value heads"
    assert "past K, V per layer (1, 3, 7, 4)" in labels  # d_head = 36 / 9
    assert "new K, V per layer (1, 3, 8, 4)" in labels
    assert "logits (1, 1, 50)" in labels
    other = diagrams.generation_loop(_llama(d_model=32, layers=4, heads=4, kv_heads=2),
                                     torch.arange(1, 4)[None])
    assert "past K, V per layer (1, 2, 3, 8)" in other.arrow_labels()


def test_attention_cost_marks_what_grows_with_n_squared():
    d = diagrams.attention_cost(_seeded(lambda: MultiHeadAttention(48, 3)), lengths=(64, 128))
    by_name = {a.label[0].split(":")[0]: a for a in d.arrows}
    assert by_name["scores"].label == ("scores: grows like n² (×4)",
                                       "(1, 3, 64, 64) → (1, 3, 128, 128)")
    assert by_name["scores"].colour == palette.HIGHLIGHT
    assert by_name["X"].label[0] == "X: grows like n (×2)"
    assert by_name["X"].colour != palette.HIGHLIGHT


def test_positional_encoding_shows_rope_on_queries_and_keys():
    d = diagrams.positional_encoding(
        torch.randn(1, 5, 24), SinusoidalPositionalEncoding(50, 24), GroupedQueryAttention(24, 4, 2)
    )
    labels = d.arrow_labels()
    assert "RoPE(Q) (1, 4, 5, 6)" in labels and "RoPE(K) (1, 2, 5, 6)" in labels
    assert "x + PE (1, 5, 24)" in labels


# -- geometry, text and accessibility ------------------------------------------------------


def test_every_text_is_inside_the_view_and_nothing_overlaps(every_diagram):
    for name, d in every_diagram.items():
        assert d.width <= diagrams.MAX_WIDTH, name
        rects = d.text_rects()
        assert len(rects) >= len(d.boxes)
        for what, (left, top, right, bottom) in rects:
            assert 0 <= left < right <= d.width and 0 <= top < bottom <= d.height, (name, what)
        for (a, ra), (b, rb) in itertools.combinations(rects, 2):
            assert not _overlap(ra, rb), f"{name}: {a!r} overlaps {b!r}"


def test_svg_is_valid_readable_and_described(every_diagram):
    for name, d in every_diagram.items():
        svg = d.to_svg()
        root = ET.fromstring(svg)
        width = float(root.get("viewBox").split()[2])
        assert width <= diagrams.MAX_WIDTH, name
        assert root.get("role") == "img" and "width: 100%" in root.get("style")
        title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
        assert title.text == d.title and len(desc.text) > 100
        assert set(root.get("aria-labelledby").split()) == {title.get("id"), desc.get("id")}
        sizes = [float(t.get("font-size")) for t in root.iter(f"{SVG}text")]
        assert sizes and min(sizes) >= 11.5, name
        links = list(root.iter(f"{SVG}a"))
        assert links and all(a.get(f"{XLINK}href").startswith("../") for a in links), name
        sentences = d.description()
        assert len(sentences) == 1 + len(d.boxes) + len(d.arrows) + len(d.notes)
        assert d.caption


def test_html_has_caption_and_text_description(every_diagram):
    d = every_diagram["multi_head"]
    page = d._repr_html_()
    assert page.startswith('<figure class="tt-diagram"') and "<figcaption" in page
    assert "<details" in page and "Text description" in page
    assert d._repr_mimebundle_()["text/plain"] == repr(d)


def test_text_is_escaped():
    box = Box("b", '<script>alert("x")</script> & W^Q', 100, 30, 300, 34, detail="a<b",
              href='../x.html?a=1&b="2"')
    d = Diagram('Title <i>&</i>', "caption <b>", (box,), (), (), (), 400, 60)
    svg, page = d.to_svg(), d._repr_html_()
    for text in (svg, page):
        assert "<script>" not in text and "<i>" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; W^Q" in svg
    assert 'href="../x.html?a=1&amp;b=&quot;2&quot;"' in svg
    ET.fromstring(svg)  # still well-formed XML


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="mha must be a MultiHeadAttention"):
        diagrams.multi_head(torch.nn.Linear(4, 4), torch.randn(1, 3, 4))
    with pytest.raises(ValueError, match="x must be a torch tensor with 3 dimensions"):
        diagrams.multi_head(MultiHeadAttention(8, 2), torch.randn(3, 8))
    with pytest.raises(ValueError, match="lengths must increase"):
        diagrams.attention_cost(MultiHeadAttention(8, 2), lengths=(64, 32))
    with pytest.raises(ValueError, match="x must be a numeric array"):
        diagrams.weighted_average(np.ones(4))
    with pytest.raises(ValueError, match="chapter must be one of"):
        diagrams.chapter_link(11)


def test_tracing_leaves_the_modules_as_they_were():
    gqa = GroupedQueryAttention(16, 2, 2)
    from transformer_tutorial import multihead

    rotary = multihead.apply_rotary
    diagrams.positional_encoding(torch.randn(1, 5, 16), SinusoidalPositionalEncoding(50, 16), gqa)
    assert multihead.apply_rotary is rotary
    assert not gqa._forward_hooks and not gqa.w_q._forward_hooks


def test_palette_tint():
    assert palette.tint("#0072B2", 0.0) == "#0072B2"
    assert palette.tint("#0072B2", 1.0) == "#FFFFFF"
    assert len({palette.QUERY, palette.KEY, palette.VALUE, palette.RESIDUAL}) == 4
    with pytest.raises(ValueError, match="colour"):
        palette.tint("blue")
