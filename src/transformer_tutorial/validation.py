"""Input checks shared by the package: every public function fails with a ``ValueError``
that names the shape or range it expected."""

from __future__ import annotations

import numpy as np

__all__ = ["as_float_array", "require_ndim", "require_shape"]


def as_float_array(x: object, name: str) -> np.ndarray:
    """``x`` as a floating-point numpy array (float64 unless it already is a float type)."""
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
    """Check that ``arr`` has at least ``min_ndim`` axes; ``expected`` names the shape."""
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have shape {expected}, got {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{name} must not be empty: expected {expected}, got {arr.shape}")
    return arr


def require_shape(arr: np.ndarray, name: str, shape: tuple[int | None, ...], expected: str):
    """Check ``arr.shape`` against ``shape`` (``None`` matches any size)."""
    if arr.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(arr.shape, shape, strict=True)
    ):
        raise ValueError(f"{name} must have shape {expected}, got {arr.shape}")
    return arr
