"""Input checks shared by the whole package.

A public function either returns a correct, finite result or raises a ``ValueError`` that
names the argument and what was expected (a ``TypeError`` never escapes a check: a wrong type
is a wrong value for the reader too). What is unambiguous is converted instead of refused:
lists become arrays, numpy scalars become Python numbers, tensors of another float dtype take
the module's dtype.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "integer",
    "positive_int",
    "non_negative_int",
    "int_in_range",
    "finite_number",
    "positive_number",
    "probability",
    "temperature",
    "axis",
    "one_of",
    "instance_of",
    "instances",
    "function",
    "argument_errors",
    "path",
    "folder_with",
    "text",
    "reader_text",
    "strings",
    "labels",
    "int_sequence",
    "as_float_array",
    "float_array",
    "bool_array",
    "require_ndim",
    "require_shape",
    "as_tensor",
    "batch_axes",
    "shape_of",
    "token_ids",
    "token_id_list",
]


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def integer(value: object, name: str) -> int:
    """``value`` as an ``int`` if it is an integer (Python or numpy, not a bool)."""
    if not _is_int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def positive_int(value: object, name: str) -> int:
    """``value`` as an ``int`` if it is an integer >= 1 (Python or numpy), else ``ValueError``."""
    return int_in_range(value, name, 1)


def non_negative_int(value: object, name: str) -> int:
    """``value`` as an ``int`` if it is an integer >= 0, else ``ValueError``."""
    return int_in_range(value, name, 0)


def int_in_range(value: object, name: str, low: int, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer in ``[low, high]`` (``high=None``: no upper
    bound), else ``ValueError`` naming ``name`` and the range."""
    if high is not None:
        want = f"in [{low}, {high + 1}) (an integer)"
    else:
        want = {0: "a non-negative integer", 1: "a positive integer"}.get(
            low, f"an integer >= {low}"
        )
    if not _is_int(value) or value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return int(value)


def finite_number(value: object, name: str) -> float:
    """``value`` as a ``float`` if it is a finite real number (Python or numpy scalar, not a
    bool), else ``ValueError``."""
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool | np.bool_)
        or not math.isfinite(value)
    ):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def positive_number(value: object, name: str) -> float:
    """``value`` as a ``float`` if it is a finite number > 0, else ``ValueError``."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not math.isfinite(value) or not value > 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def probability(value: object, name: str, allow_zero: bool = True) -> float:
    """``value`` as a ``float`` in ``[0, 1]`` (``(0, 1]`` if not ``allow_zero``)."""
    interval = "[0, 1]" if allow_zero else "(0, 1]"
    if not isinstance(value, numbers.Real) or isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    if not (0 <= value <= 1) or (not allow_zero and value == 0):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def temperature(value: object, name: str = "temperature", allow_zero: bool = False) -> float:
    """A softmax temperature as a ``float``: finite and > 0 (>= 0 with ``allow_zero``, where 0
    means greedy). Numpy scalars such as ``np.float32(0.7)`` are accepted."""
    bound = ">= 0" if allow_zero else "> 0"
    if not isinstance(value, numbers.Real) or isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def axis(value: object, ndim: int, name: str = "axis") -> int:
    """``value`` as an axis index of an array with ``ndim`` axes (negative counts from the
    end), else ``ValueError``."""
    if not _is_int(value) or not -ndim <= value < ndim:
        raise ValueError(f"{name} must be an integer in [{-ndim}, {ndim - 1}], got {value!r}")
    return int(value)


def one_of(value: object, name: str, options: Iterable[object]) -> object:
    """``value`` if it equals one of ``options`` (and has the same type), else ``ValueError``."""
    options = tuple(options)
    if not any(type(value) is type(o) and value == o for o in options):
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value


def instance_of(value: object, name: str, cls: type | tuple[type, ...]) -> object:
    """``value`` if it is an instance of ``cls``, else ``ValueError`` naming the class."""
    if not isinstance(value, cls):
        want = cls.__name__ if isinstance(cls, type) else " or ".join(c.__name__ for c in cls)
        raise ValueError(f"{name} must be a {want}, got {type(value).__name__}")
    return value


def instances(
    values: object, name: str, cls: type | tuple[type, ...], allow_empty: bool = True
) -> list:
    """``values``, a sequence (not a string) of instances of ``cls``, as a list (non-empty
    unless ``allow_empty``)."""
    want = cls.__name__ if isinstance(cls, type) else " or ".join(c.__name__ for c in cls)
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of {want}, got {type(values).__name__}")
    out = list(values)
    bad = [v for v in out if not isinstance(v, cls)]
    if bad:
        raise ValueError(f"{name} must hold {want} only, got {type(bad[0]).__name__}")
    if not allow_empty and not out:
        raise ValueError(f"{name} must hold at least one {want}")
    return out


def function(value: object, name: str) -> Callable:
    """``value`` if it is callable (a function, a module, ...), else ``ValueError``."""
    if not callable(value):
        raise ValueError(f"{name} must be callable, got {type(value).__name__}")
    return value


@contextlib.contextmanager
def argument_errors(
    name: str, errors: type[Exception] | tuple[type[Exception], ...] = ValueError
) -> Iterator[None]:
    """Inside the block, an exception of type ``errors`` raised while working on the argument
    ``name`` (one sentence of a list, a callable the caller passed) becomes a ``ValueError``
    whose message starts with ``name``; the original is chained as its cause."""
    try:
        yield
    except errors as err:
        kind = "" if isinstance(err, ValueError) else f"{type(err).__name__}: "
        raise ValueError(f"{name}: {kind}{err}") from err


def path(value: object, name: str, absolute: bool = False, suffix: str | None = None) -> Path:
    """``value`` (a ``str`` or ``os.PathLike``, not empty, no NUL character) as a ``Path``;
    with ``absolute``, an absolute one; with ``suffix``, one ending in it (e.g. ``".onnx"``)."""
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__}")
    raw = os.fspath(value)
    if not isinstance(raw, str) or not raw.strip() or "\0" in raw:
        raise ValueError(f"{name} must be a non-empty path without NUL characters, got {raw!r}")
    out = Path(raw)
    if absolute and not out.is_absolute():
        raise ValueError(f"{name} must be an absolute path, got {raw!r}")
    if suffix is not None and out.suffix != suffix:
        raise ValueError(f"{name} must be a file name ending in {suffix}, got {raw!r}")
    return out


def folder_with(value: object, name: str, files: Iterable[str]) -> Path:
    """``value`` as the ``Path`` of an existing folder holding each of ``files`` (relative
    paths), else ``ValueError`` naming the first one missing."""
    folder = path(value, name)
    if not folder.is_dir():
        raise ValueError(f"{name} must be an existing folder, got {os.fspath(value)!r}")
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise ValueError(f"{name} ({folder}) has no {missing[0]}")
    return folder


def text(value: object, name: str = "text", allow_empty: bool = False) -> str:
    """``value`` if it is a ``str`` (non-empty unless ``allow_empty``), else ``ValueError``."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} is empty: type at least one word")
    return value


_ALLOWED_CONTROL = {"\t", "\n", "\r"}
_REJECTED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
}


def reader_text(value: object, name: str = "text") -> str:
    """Text typed by a reader for a model: a non-empty string of ordinary characters.

    Rejected: non-strings, empty or whitespace-only text, and control, invisible formatting,
    surrogate, private-use and unassigned characters (named by their code point).
    """
    value = text(value, name)
    for char in value:
        kind = _REJECTED_CATEGORIES.get(unicodedata.category(char))
        if kind and char not in _ALLOWED_CONTROL:
            raise ValueError(
                f"{name} contains {kind}, U+{ord(char):04X}; use ordinary letters, digits, "
                "punctuation and spaces"
            )
    return value


def strings(
    values: object,
    name: str,
    size: int | None = None,
    what: str = "strings",
    allow_empty: bool = True,
) -> list[str]:
    """``values`` as a list of ``str`` (a sequence of strings, not one string); with ``size``,
    exactly that many; at least one unless ``allow_empty``. ``what`` names the strings in the
    message (e.g. ``"token strings"``)."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise ValueError(f"{name} must be a sequence of {what}, got {type(values).__name__}")
    out = list(values)
    bad = [v for v in out if not isinstance(v, str)]
    if bad:
        raise ValueError(f"{name} must hold strings only, got {type(bad[0]).__name__}")
    if size is not None and len(out) != size:
        raise ValueError(f"{name} must hold {size} strings, got {len(out)}")
    if not allow_empty and not out:
        raise ValueError(f"{name} must be a non-empty sequence of {what}")
    return out


def labels(values: object, name: str, size: int | None = None) -> list[str]:
    """``values``, a sequence (list, tuple, 1-D array; not a string) of labels of any kind
    (strings, numbers), as a list of ``str``; with ``size``, exactly that many."""
    if isinstance(values, np.ndarray) and values.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of labels, got shape {values.shape}")
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise ValueError(f"{name} must be a sequence of labels, got {type(values).__name__}")
    out = [str(v) for v in values]
    if size is not None and len(out) != size:
        raise ValueError(f"{name} needs {size} labels, got {len(out)}")
    return out


def int_sequence(values: object, name: str) -> list[int]:
    """``values``, a sequence (list, tuple, 1-D array or tensor) of integers, as a list."""
    if isinstance(values, torch.Tensor):
        values = values.tolist()
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise ValueError(f"{name} must be a sequence of integers, got {type(values).__name__}")
    return [integer(v, name) for v in values]


def as_float_array(x: object, name: str) -> np.ndarray:
    """``x`` (array, nested list, tensor, number) as a floating-point numpy array: float64
    unless it already is a numpy float type."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = x.double() if x.dtype == torch.bfloat16 else x
        x = x.numpy()
    if isinstance(x, str | bytes):
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers: {err}") from None
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(f"{name} must be an array of numbers, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def require_ndim(arr: np.ndarray, name: str, min_ndim: int, expected: str) -> np.ndarray:
    """Check that ``arr`` has at least ``min_ndim`` axes and no empty axis; ``expected`` names
    the shape, e.g. ``"(..., q_len, d)"``."""
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have shape {expected}, got {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{name} must not be empty: expected {expected}, got {arr.shape}")
    return arr


def require_shape(
    arr: np.ndarray, name: str, shape: tuple[int | None, ...], expected: str
) -> np.ndarray:
    """Check ``arr.shape`` against ``shape`` (``None`` matches any size)."""
    if arr.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(arr.shape, shape, strict=True)
    ):
        raise ValueError(f"{name} must have shape {expected}, got {arr.shape}")
    return arr


def float_array(
    x: object,
    name: str,
    expected: str,
    ndim: int | None = None,
    min_ndim: int = 0,
    shape: tuple[int | None, ...] | None = None,
    finite: bool = True,
    allow_empty: bool = False,
) -> np.ndarray:
    """``x`` as a float numpy array, checked: exactly ``ndim`` (or at least ``min_ndim``) axes,
    ``shape`` (``None`` = any size), no empty axis, only finite values. ``expected`` names the
    shape in the message, e.g. ``"(batch, heads, seq, d_head)"``."""
    arr = as_float_array(x, name)
    if shape is not None:
        require_shape(arr, name, shape, expected)
    elif (ndim is not None and arr.ndim != ndim) or arr.ndim < min_ndim:
        raise ValueError(f"{name} must have shape {expected}, got {arr.shape}")
    if not allow_empty and 0 in arr.shape:
        raise ValueError(f"{name} must not be empty: expected {expected}, got {arr.shape}")
    if finite and not np.isfinite(arr).all():
        raise ValueError(f"{name} must hold finite numbers (no NaN or inf)")
    return arr


def bool_array(x: object, name: str, what: str = "of booleans") -> np.ndarray:
    """``x`` (an array or nested list of booleans, or of numbers that are all 0 or 1) as a bool
    numpy array; ``what`` ends the message, e.g. ``"of booleans (True: masked out)"``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, str | bytes) or not isinstance(x, Sequence | np.ndarray):
        raise ValueError(f"{name} must be an array {what}, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except ValueError as err:
        raise ValueError(f"{name} must be an array {what}: {err}") from None
    numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    zeros_and_ones = numeric and bool(np.isin(arr, (0, 1)).all())
    if arr.dtype != np.bool_ and not zeros_and_ones:
        raise ValueError(f"{name} must be an array {what}, got dtype {arr.dtype}")
    return arr.astype(bool)


def as_tensor(
    x: object,
    name: str,
    like: torch.Tensor,
    expected: str,
    ndim: int | None = None,
    min_ndim: int = 1,
    last_dim: int | None = None,
    finite: bool = True,
    keep_dtype: bool = False,
) -> torch.Tensor:
    """``x`` as a float tensor with the dtype and device of ``like`` (a module's weight).

    Lists, numpy arrays and tensors of another float dtype (float64, bfloat16, ...) are
    converted; integer, boolean and complex tensors are refused. Checks: exactly ``ndim`` (or
    at least ``min_ndim``) axes, the last one of size ``last_dim``, no empty axis, finite
    values. ``expected`` names the shape, e.g. ``"(batch, seq, d_model) = (batch, seq, 64)"``.
    ``keep_dtype``: a float tensor keeps its own dtype (for modules that compute in the
    input's precision). Under ``torch.export`` the finiteness check is skipped.
    """
    if isinstance(x, torch.Tensor):
        if not torch.is_floating_point(x):
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        t = x.to(device=like.device) if keep_dtype else x.to(dtype=like.dtype, device=like.device)
    else:
        t = torch.from_numpy(np.ascontiguousarray(as_float_array(x, name)))
        t = t.to(dtype=like.dtype, device=like.device)
    if (
        (ndim is not None and t.ndim != ndim)
        or t.ndim < min_ndim
        or (last_dim is not None and t.shape[-1] != last_dim)
    ):
        raise ValueError(f"{name} must be a tensor of shape {expected}, got {tuple(t.shape)}")
    if 0 in t.shape:
        raise ValueError(f"{name} must not be empty: expected {expected}, got {tuple(t.shape)}")
    # A value check cannot be traced into a graph: while torch.export records a module (the
    # in-browser model's ONNX export) only the shapes are checked.
    tracing = torch.compiler.is_exporting() or torch.compiler.is_compiling()
    if finite and not tracing and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must hold finite numbers (no NaN or inf)")
    return t


def shape_of(x: object) -> object:
    """``x``'s shape as a tuple for an array or tensor, else its type's name (for messages)."""
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else type(x).__name__


def batch_axes(core_ndim: int = 2, **arrays: np.ndarray) -> tuple[int, ...]:
    """The broadcast of the leading (batch) axes of ``arrays``, each ending in ``core_ndim``
    matrix axes, e.g. ``(batch, heads)`` for ``(batch, heads, seq, d)``; ``ValueError``
    naming the arrays when they do not broadcast."""
    try:
        return np.broadcast_shapes(*(a.shape[:-core_ndim] for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise ValueError(f"the batch axes (...) of {shapes} do not broadcast") from None


def token_ids(
    ids: object, name: str, vocab_size: int, max_len: int | None = None
) -> torch.Tensor:
    """``ids`` as a ``(batch, seq)`` int64 tensor with values in ``[0, vocab_size)`` and
    ``1 <= seq <= max_len``."""
    if isinstance(ids, str | bytes):
        raise ValueError(f"{name} must be integer token ids (batch, seq), got a string")
    try:
        ids = torch.as_tensor(ids)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be integer token ids of shape (batch, seq): {err}") from None
    if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
        raise ValueError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if ids.ndim != 2 or 0 in ids.shape:
        raise ValueError(
            f"{name} must have shape (batch, seq) with seq >= 1, got {tuple(ids.shape)}"
        )
    if max_len is not None and ids.shape[1] > max_len:
        raise ValueError(
            f"{name} must have shape (batch, seq) with seq <= max_len = {max_len}, "
            f"got {tuple(ids.shape)}"
        )
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(
            f"{name} must lie in [0, vocab_size) = [0, {vocab_size}), "
            f"got values in [{int(ids.min())}, {int(ids.max())}]"
        )
    return ids.long()


def token_id_list(ids: object, name: str, vocab_size: int) -> list[int]:
    """``ids``, a non-empty sequence of integer token ids in ``[0, vocab_size)``, as a list."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Sequence | np.ndarray | torch.Tensor):
        raise ValueError(f"{name} must be a sequence of token ids, got {type(ids).__name__}")
    return token_ids([list(ids)], name, vocab_size)[0].tolist()
