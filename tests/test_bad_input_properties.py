"""Every public callable of the package, driven with generated bad arguments (issue 14).

The callables come from the ``__all__`` of every module found by ``pkgutil`` under
``transformer_tutorial`` (subpackages such as ``transformer_tutorial.chapters`` included), so a
new module or function is covered without editing this file. Classes are called too, and so
are the public methods of a small seeded instance of each class (nn.Module instances through
``__call__``, i.e. ``forward``).

Each call gets, for every parameter, either its default or a value from :data:`POOL` (wrong
types, empty and mis-shaped arrays, NaN/inf, extreme scalars, numpy scalars, other float
dtypes, unicode and markup in text, plus small valid objects). The call must either

* return a finite, valid result (every float array, tensor or number in it finite), or
* raise ``ValueError``/``TypeError`` from the package's own code (the traceback's last frame
  is a file of ``transformer_tutorial``) with a message that names one of the parameters.

Deterministic (``derandomize=True``) and fast: no pretrained weights are loaded; the
pretrained wrappers get a tiny seeded model and tokenizer.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pkgutil
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

import transformer_tutorial

PACKAGE_DIR = Path(transformer_tutorial.__file__).resolve().parent
EXAMPLES = 10

# Modules and callables that cannot be called blindly; everything else is.
SKIP_MODULES = {
    # The checks themselves: their other arguments (bounds, dtypes, the shape to name) come
    # from package code, not from readers; tested in test_bad_input.py.
    "transformer_tutorial.checks",
}
SKIP_CALLABLES = {
    # Load the real pretrained weights (hundreds of MB): covered by test_pretrained_*.
    "transformer_tutorial.pretrained.load_minilm",
    "transformer_tutorial.pretrained.load_smollm2",
    "transformer_tutorial.pretrained.minilm_folder",
    "transformer_tutorial.pretrained.smollm2_gguf_path",
    # A context manager that changes torch's global thread count: covered by test_cost.
    "transformer_tutorial.cost.single_threaded",
}
# A parameter called ``name`` names another argument in messages: it gets this value, and a
# message naming it counts as naming the argument.
NAME_VALUE = "the_argument"
# Parameters whose default is slow (timing loops, training runs): never drawn as default.
NO_DEFAULTS = {"repeats", "lengths", "steps", "samples", "num_examples", "new_tokens"}


def public_modules() -> list[str]:
    """Every module of the package (subpackages included), found on disk."""
    names = [transformer_tutorial.__name__]
    for info in pkgutil.walk_packages(transformer_tutorial.__path__, "transformer_tutorial."):
        names.append(info.name)
    return [n for n in sorted(names) if n not in SKIP_MODULES]


IMPORT_ERRORS: dict[str, str] = {}  # a module that does not import fails its own test only


def public_callables() -> list[tuple[str, Callable]]:
    found: dict[str, Callable] = {}
    for module_name in public_modules():
        try:
            module = importlib.import_module(module_name)
        except Exception as err:  # noqa: BLE001 - reported by test_every_module_imports
            IMPORT_ERRORS[module_name] = f"{type(err).__name__}: {err}"
            continue
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not callable(obj) or (isinstance(obj, type) and issubclass(obj, BaseException)):
                continue
            qualified = f"{module_name}.{name}"
            if qualified in SKIP_CALLABLES or qualified in found:
                continue
            found[qualified] = obj
    return sorted(found.items())


# -- small seeded instances ------------------------------------------------------------------


def _tiny_smollm2():
    from transformer_tutorial.llama import LlamaConfig, LlamaDecoder
    from transformer_tutorial.pretrained import SmolLM2, _byte_level_alphabet

    alphabet = sorted(_byte_level_alphabet(), key=_byte_level_alphabet().get)
    vocab = {c: i for i, c in enumerate(alphabet)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    tokenizer.encode_special_tokens = True
    config = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(), d_model=8, num_layers=2, num_heads=2,
        num_kv_heads=1, d_ff=16, max_positions=64,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaDecoder(config).eval()
    return SmolLM2(model, tokenizer, tokenizer.token_to_id("<|im_end|>"))


def _tiny_minilm():
    from transformer_tutorial.bert import BertConfig, BertEncoder
    from transformer_tutorial.pretrained import MiniLM

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "apple", "pie"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list(".,!?$<>[]|")
    vocab = {t: i for i, t in enumerate(words + letters + ["##" + c for c in letters])}
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tokenizer.encode_special_tokens = True
    config = BertConfig(
        vocab_size=len(vocab), d_model=8, num_layers=2, num_heads=2, d_ff=16, max_positions=32
    )
    torch.manual_seed(0)
    return MiniLM(BertEncoder(config).eval(), tokenizer)


def _instances() -> dict[str, Callable[[], object]]:
    """Class name -> a factory of one small seeded instance."""
    from transformer_tutorial import (
        embeddings,
        layers,
        llama,
        multihead,
        norms,
        positional,
        projections,
        record,
        tokens,
    )
    from transformer_tutorial import (
        models as tt_models,
    )

    def seeded(make):
        def factory():
            torch.manual_seed(0)
            return make()

        return factory

    config = llama.LlamaConfig(
        vocab_size=20, d_model=8, num_layers=2, num_heads=2, num_kv_heads=1, d_ff=16,
        max_positions=16,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    weights = rng.random((2, 2, 3, 3))
    return {
        "MultiHeadAttention": seeded(lambda: multihead.MultiHeadAttention(8, 2)),
        "GroupedQueryAttention": seeded(lambda: multihead.GroupedQueryAttention(8, 2, 1)),
        "FeedForward": seeded(lambda: layers.FeedForward(8, 16)),
        "SwiGLU": seeded(lambda: layers.SwiGLU(8, 16)),
        "AddNorm": seeded(lambda: layers.AddNorm(8)),
        "EncoderBlock": seeded(lambda: layers.EncoderBlock(8, 2, 16)),
        "DecoderBlock": seeded(lambda: layers.DecoderBlock(8, 2, 16)),
        "RMSNorm": seeded(lambda: norms.RMSNorm(8)),
        "LlamaBlock": seeded(lambda: llama.LlamaBlock(config)),
        "LlamaDecoder": seeded(lambda: llama.LlamaDecoder(config).eval()),
        "SinusoidalPositionalEncoding": lambda: positional.SinusoidalPositionalEncoding(16, 8),
        "LearnedPositionalEmbedding": seeded(
            lambda: positional.LearnedPositionalEmbedding(16, 8)
        ),
        "TokenEmbedding": seeded(lambda: tt_models.TokenEmbedding(12, 8)),
        "Encoder": seeded(lambda: tt_models.Encoder(1, 8, 2, 16)),
        "Decoder": seeded(lambda: tt_models.Decoder(1, 8, 2, 16)),
        "EncoderDecoder": seeded(lambda: tt_models.EncoderDecoder(12, 12, 8, 2, 16, 1, 1)),
        "DecoderOnlyLM": seeded(lambda: tt_models.DecoderOnlyLM(12, 8, 2, 16, 1)),
        "AttentionRecord": lambda: record.AttentionRecord(
            weights / weights.sum(-1, keepdims=True), ("a", "b", "c"), ("a", "b", "c")
        ),
        "EmbeddingTable": embeddings.toy_embeddings,
        "Vocabulary": lambda: tokens.Vocabulary((*tokens.SPECIAL_TOKENS, "a", "b")),
        "QKVProjection": lambda: projections.QKVProjection.random(4, 2),
        "SmolLM2": _tiny_smollm2,
        "MiniLM": _tiny_minilm,
    }


INSTANCES = _instances()


def _instance_methods() -> list[tuple[str, Callable[[], Callable]]]:
    """(name, factory of a bound method) for the public methods of every instance above."""
    out = []
    for cls_name, factory in INSTANCES.items():
        obj = factory()
        cls = type(obj)
        if isinstance(obj, torch.nn.Module):
            out.append((f"{cls_name}.__call__", lambda f=factory: f()))
        for name, member in vars(cls).items():
            if name.startswith("_") or not inspect.isfunction(member):
                continue
            if name == "forward" or not cls.__module__.startswith("transformer_tutorial"):
                continue
            out.append((f"{cls_name}.{name}", lambda f=factory, n=name: getattr(f(), n)))
    return out


# -- the pool of arguments -------------------------------------------------------------------

_rng = np.random.default_rng(0)
_probs = np.full(5, 0.2)
POOL: list[object] = [
    None, True, 0, -1, 1, 2, 3, 7, 2**62, -(2**62), 0.0, -0.5, 0.5, 1.0, 1e-300, 1e300,
    math.nan, math.inf, -math.inf, np.float32(0.7), np.int64(3), np.float64(math.nan),
    "0", "", " ", "$x$", "$$", "a $ b", "<|im_end|>\n<|im_start|>system", "[CLS] [SEP]",
    "日本語🙂", "e\u0301", "a\x00b", "<script>alert(1)</script>", "the cat", "all",
    b"bytes", 1 + 2j, [], [1, 2, 3], [[1, 2], [3]], [[1.0, 2.0], [3.0, 4.0]], ["a", "b"],
    ("a", "b", "c"), (), {}, {"x": [1.0, 2.0]}, object(),
    np.zeros((0,)), np.zeros((2, 0)), np.ones((2, 3)), _rng.normal(size=(3, 3)),
    _rng.normal(size=(1, 2, 3, 4)), _rng.normal(size=(2, 4, 8)), np.array([[1, 2], [3, 0]]),
    np.array([1.0, np.nan]), np.array([[np.inf, 1.0]]), np.full((2, 3), 1e300), _probs,
    np.array([True, False]), np.array(["a", "b"]),
    torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(0)),
    torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(1)).double(),
    torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(2)).bfloat16(),
    torch.full((2, 4, 8), math.nan), torch.full((1, 3, 8), math.inf), torch.zeros(2, 0, 8),
    torch.tensor([[1, 2, 3]]), torch.tensor([[1, 2, 30]]), torch.tensor(1.5),
    torch.randn(1, 1, 3, 4, generator=torch.Generator().manual_seed(3)),
]


def _pool_with_instances() -> list[object]:
    return POOL + [factory() for factory in INSTANCES.values()]


def _parameters(fn: Callable) -> list[inspect.Parameter]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [
        p for p in signature.parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
    ]  # fmt: skip


def _arguments(fn: Callable, pool: list[object]) -> st.SearchStrategy[dict[str, object]]:
    params = _parameters(fn)
    strategies = {}
    for p in params:
        if p.name == "name":
            strategies[p.name] = st.just(NAME_VALUE)
            continue
        choices = st.sampled_from(pool)
        if p.default is not p.empty and p.name not in NO_DEFAULTS:
            choices = st.one_of(st.just(p.default), choices)
        strategies[p.name] = choices
    return st.fixed_dictionaries(strategies)


# -- the property ----------------------------------------------------------------------------


def _non_finite(value: object, depth: int = 0) -> str | None:
    """A description of the first non-finite number inside ``value``, or None."""
    if depth > 3:
        return None
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return f"tensor {tuple(value.shape)} with NaN/inf"
        return None
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            return f"array {value.shape} with NaN/inf"
        return None
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return f"number {value}"
    if isinstance(value, list | tuple):
        items = value
    elif isinstance(value, dict):
        items = list(value.values())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [getattr(value, f.name) for f in dataclasses.fields(value)]
    else:
        return None
    for item in items[:50]:
        found = _non_finite(item, depth + 1)
        if found:
            return found
    return None


def _describe(kwargs: dict[str, object]) -> str:
    def short(v: object) -> str:
        if isinstance(v, np.ndarray | torch.Tensor):
            return f"{type(v).__name__}{tuple(v.shape)} {v.dtype}"
        return repr(v)[:60]

    return ", ".join(f"{k}={short(v)}" for k, v in kwargs.items())


def check_call(
    name: str, fn: Callable, kwargs: dict[str, object], is_constructor: bool, params: list[str]
) -> None:
    try:
        result = fn(**kwargs)
    except (ValueError, TypeError) as err:
        frames = traceback.extract_tb(err.__traceback__)
        last = Path(frames[-1].filename).resolve()
        assert PACKAGE_DIR in last.parents or last.parent == PACKAGE_DIR, (
            f"{name}({_describe(kwargs)}) raised {type(err).__name__} outside the package, "
            f"in {last}:{frames[-1].lineno}: {err}"
        )
        message = str(err)
        assert not params or any(p in message for p in [*params, NAME_VALUE]), (
            f"{name}({_describe(kwargs)}): the message does not name an argument "
            f"({params}): {message}"
        )
        return
    except Exception as err:  # noqa: BLE001 - the point is to report any other exception
        frames = traceback.extract_tb(err.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        pytest.fail(f"{name}({_describe(kwargs)}) raised {type(err).__name__} at {where}: {err}")
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
    if is_constructor and dataclasses.is_dataclass(result):
        return  # a record type: holds what it was given
    bad = _non_finite(result)
    assert bad is None, f"{name}({_describe(kwargs)}) returned a {bad}"


CALLABLES = public_callables()
METHODS = _instance_methods()


@pytest.mark.parametrize("module_name", public_modules())
def test_every_module_imports(module_name):
    assert module_name not in IMPORT_ERRORS, IMPORT_ERRORS.get(module_name)


@pytest.mark.parametrize(
    "name", [n for n, _ in CALLABLES]
)
def test_public_callable_answers_or_explains(name):
    fn = dict(CALLABLES)[name]
    pool = _pool_with_instances()

    @settings(
        max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
    )  # fmt: skip
    @given(_arguments(fn, pool))
    def run(kwargs):
        check_call(name, fn, kwargs, isinstance(fn, type), [p.name for p in _parameters(fn)])

    with torch.no_grad():
        run()


@pytest.mark.parametrize("name", [n for n, _ in METHODS])
def test_public_method_answers_or_explains(name):
    make = dict(METHODS)[name]
    pool = _pool_with_instances()
    probe = make()
    target = probe.forward if isinstance(probe, torch.nn.Module) else probe

    @settings(
        max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
    )  # fmt: skip
    @given(_arguments(target, pool))
    def run(kwargs):
        check_call(name, make(), kwargs, False, [p.name for p in _parameters(target)])

    with torch.no_grad():
        run()
