"""The ONNX export of MiniLM for the browser, run by onnxruntime (Python), against our model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime
import pytest

from transformer_tutorial import browser_model
from transformer_tutorial.browser_model import (
    ATTENTION_TOLERANCE,
    MODEL_FILES,
    WEIGHTS_FILE,
    cache_key,
    load_browser_model,
    write_browser_model,
)
from transformer_tutorial.pretrained import load_minilm, minilm_folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    target = write_browser_model(tmp_path_factory.mktemp("site") / "minilm", cache)
    return target, cache


@pytest.fixture(scope="module")
def session(exported):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    model = load_browser_model(exported[0])  # float16 weights widened, as the page does
    return onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


SENTENCES = [
    "The cat sat on the mat because it was tired.",
    "Apple released a new phone; later I baked an apple pie for my friends.",
    "Short.",
]


@pytest.mark.parametrize("text", SENTENCES)
def test_attention_and_hidden_states_match_the_python_model(session, text):
    run = load_minilm().encode(text)
    ids = np.array([run.text.ids])
    attentions, hidden = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
    assert attentions.shape == (1, 6, 12, len(ids[0]), len(ids[0]))
    assert hidden.shape == (1, 7, len(ids[0]), 384)
    assert np.abs(attentions[0] - run.record.weights).max() <= ATTENTION_TOLERANCE
    np.testing.assert_allclose(hidden[0], run.hidden_states, atol=1e-2)


def test_batch_with_padding_matches_each_sentence_alone(session):
    model = load_minilm()
    runs = [model.encode(t) for t in SENTENCES[:2]]
    n = max(len(r.text.ids) for r in runs)
    ids = np.zeros((2, n), dtype=np.int64)
    mask = np.zeros((2, n), dtype=np.int64)
    for row, run in enumerate(runs):
        ids[row, : len(run.text.ids)] = run.text.ids
        mask[row, : len(run.text.ids)] = 1
    attentions, _ = session.run(None, {"input_ids": ids, "attention_mask": mask})
    for row, run in enumerate(runs):
        k = len(run.text.ids)
        got = attentions[row, :, :, :k, :k]
        assert np.abs(got - run.record.weights).max() <= ATTENTION_TOLERANCE
        assert np.all(attentions[row, :, :, :k, k:] == 0.0)  # padding gets no attention
    assert len(runs[0].text.ids) < n  # the first sentence was padded


def test_weights_travel_as_float16_and_the_graph_computes_in_float32(exported):
    graph = onnx.load(str(exported[0] / "model.onnx"), load_external_data=False).graph
    external = [i for i in graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL]
    assert len(external) >= 6 * 6 + 1  # 6 matrices per block and the embedding table
    assert all(i.data_type == onnx.TensorProto.FLOAT for i in external)
    assert not any(node.op_type == "Cast" and node.input[0] in {i.name for i in external}
                   for node in graph.node)  # fmt: skip
    weights = (minilm_folder() / "model.safetensors").stat().st_size
    assert 0.45 * weights < (exported[0] / WEIGHTS_FILE).stat().st_size < 0.55 * weights
    assert (exported[0] / "model.onnx").stat().st_size < 0.01 * weights


def test_manifest_lists_the_files_and_the_tokens(exported):
    target, cache = exported
    manifest = json.loads((target / "manifest.json").read_text())
    for name in ("model.onnx", WEIGHTS_FILE, "vocab.txt"):
        assert manifest["files"][name] == (target / name).stat().st_size
    assert manifest["special"] == {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102}
    assert manifest["cache_key"] == cache_key(minilm_folder())
    assert (target / "vocab.txt").read_bytes() == (minilm_folder() / "vocab.txt").read_bytes()


def test_an_unchanged_rebuild_copies_from_the_cache(exported, tmp_path, monkeypatch):
    _, cache = exported

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds the model")

    monkeypatch.setattr(browser_model, "export_minilm_onnx", no_export)
    target = write_browser_model(tmp_path / "again", cache)
    assert sorted(p.name for p in target.iterdir()) == sorted(MODEL_FILES)
    assert (target / "model.onnx").read_bytes() == (exported[0] / "model.onnx").read_bytes()


def test_a_changed_exporter_version_changes_the_cache_key(monkeypatch):
    before = cache_key(minilm_folder())
    monkeypatch.setattr(browser_model, "EXPORTER_VERSION", browser_model.EXPORTER_VERSION + 1)
    assert cache_key(minilm_folder()) != before


def test_the_book_build_writes_model_scripts_and_runtime_into_the_site(
    exported, tmp_path, monkeypatch
):
    """book_ext's build-finished hook, with the export cache beside the html output."""
    from types import SimpleNamespace

    import book_ext
    from book_site import ROOT

    from transformer_tutorial.browser_model import MODEL_DIR, RUNTIME_DIR, RUNTIME_FILES

    html = tmp_path / "_build" / "html"
    shutil.copytree(exported[1], book_ext.model_cache_dir(html))
    monkeypatch.setattr(browser_model, "export_minilm_onnx", None)  # must come from the cache
    app = SimpleNamespace(builder=SimpleNamespace(format="html"), outdir=str(html), srcdir=ROOT)
    book_ext._write_browser_model(app, None)
    names = {p.name for p in (html / MODEL_DIR).iterdir()}
    assert names == {*MODEL_FILES, "minilm.js", "wordpiece.js", "demo.html"}
    assert {p.name for p in (html / RUNTIME_DIR).iterdir()} == set(RUNTIME_FILES)
    failed = SimpleNamespace(builder=app.builder, outdir=str(tmp_path / "failed"), srcdir=ROOT)
    book_ext._write_browser_model(failed, RuntimeError("the build failed"))
    assert not (tmp_path / "failed").exists()  # a failed build gets no model
