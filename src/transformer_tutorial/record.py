"""The one attention record every model in the book fills.

Every model — our blocks, the numpy toy models, MiniLM, SmolLM2 — hands its attention to the
plots and to bertviz as an :class:`AttentionRecord`: the weights of one sentence as a
``(layers, heads, q_len, k_len)`` array plus the tokens on both axes. No chapter converts
formats by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from transformer_tutorial import checks
from transformer_tutorial.checks import as_float_array

__all__ = ["AttentionRecord"]

_KINDS = ("self", "cross")


def _as_numpy(x: object, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        x = x.numpy()
    return as_float_array(x, name)


def _as_tokens(tokens: object, name: str) -> tuple[str, ...]:
    if isinstance(tokens, str) or not isinstance(tokens, Iterable):
        raise ValueError(f"{name} must be a sequence of token strings, got {type(tokens).__name__}")
    tokens = tuple(tokens)
    if not all(isinstance(t, str) for t in tokens):
        raise ValueError(f"{name} must contain only strings")
    return tokens


def _check_index(value: object, name: str, size: int) -> int:
    return checks.int_in_range(value, name, 0, size - 1)


@dataclass(frozen=True, eq=False, repr=False)
class AttentionRecord:
    """Attention weights of one sentence, all layers and heads, with their tokens.

    ``weights``: ``(layers, heads, q_len, k_len)``, row :math:`i` of ``weights[l, h]`` is how
    query token :math:`i` spreads its attention over the keys (sums to 1, or 0 for a fully
    masked row). ``query_tokens`` has ``q_len`` strings, ``key_tokens`` ``k_len``.
    ``kind`` is ``"self"`` (queries and keys from the same sequence) or ``"cross"``
    (queries from the decoder, keys from the encoder). The stored array is a read-only copy.
    """

    weights: np.ndarray
    query_tokens: tuple[str, ...]
    key_tokens: tuple[str, ...]
    kind: str = "self"

    def __post_init__(self) -> None:
        weights = np.array(_as_numpy(self.weights, "weights"), copy=True)
        if weights.ndim != 4:
            raise ValueError(
                f"weights must have shape (layers, heads, q_len, k_len), got {weights.shape}"
            )
        if 0 in weights.shape:
            raise ValueError(
                f"weights must not be empty: expected (layers, heads, q_len, k_len), "
                f"got {weights.shape}"
            )
        if not np.isfinite(weights).all():
            raise ValueError("weights must be finite (no NaN or inf)")
        query_tokens = _as_tokens(self.query_tokens, "query_tokens")
        key_tokens = _as_tokens(self.key_tokens, "key_tokens")
        _, _, q_len, k_len = weights.shape
        if len(query_tokens) != q_len or len(key_tokens) != k_len:
            raise ValueError(
                f"weights of shape (layers, heads, q_len, k_len) = {weights.shape} need "
                f"{q_len} query tokens and {k_len} key tokens, got {len(query_tokens)} and "
                f"{len(key_tokens)}"
            )
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {self.kind!r}")
        weights.setflags(write=False)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "query_tokens", query_tokens)
        object.__setattr__(self, "key_tokens", key_tokens)

    def __repr__(self) -> str:
        return (
            f"AttentionRecord(kind={self.kind!r}, layers={self.num_layers}, "
            f"heads={self.num_heads}, q_len={self.q_len}, k_len={self.k_len})"
        )

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]

    @property
    def q_len(self) -> int:
        return self.weights.shape[2]

    @property
    def k_len(self) -> int:
        return self.weights.shape[3]

    def layer(self, layer: int) -> np.ndarray:
        """All heads of one layer, ``(heads, q_len, k_len)``."""
        return self.weights[_check_index(layer, "layer", self.num_layers)]

    def head(self, layer: int, head: int) -> np.ndarray:
        """One head's weights, ``(q_len, k_len)``."""
        layer = _check_index(layer, "layer", self.num_layers)
        return self.weights[layer, _check_index(head, "head", self.num_heads)]

    def mean_over_heads(self, layer: int) -> np.ndarray:
        """The heads of ``layer`` averaged, ``(q_len, k_len)`` (what averaging hides: see the
        per-head view)."""
        return self.layer(layer).mean(axis=0)

    def to_bertviz(self) -> list[torch.Tensor]:
        """One ``(1, heads, q_len, k_len)`` float32 tensor per layer.

        What ``bertviz.head_view(attention=..., tokens=...)`` and ``model_view`` expect for
        self-attention; for cross-attention pass it as ``cross_attention=`` with
        ``encoder_tokens=key_tokens`` and ``decoder_tokens=query_tokens``.
        """
        return [torch.tensor(w[None], dtype=torch.float32) for w in self.weights]

    @classmethod
    def from_layers(
        cls,
        per_layer_weights: Sequence[object],
        query_tokens: Sequence[str],
        key_tokens: Sequence[str] | None = None,
        batch_index: int = 0,
        kind: str = "self",
    ) -> AttentionRecord:
        """Build a record from per-layer ``(batch, heads, q_len, k_len)`` weights.

        ``per_layer_weights``: a list (or tuple, e.g. Hugging Face's ``outputs.attentions``)
        with one tensor or array per layer, each ``(batch, heads, q_len, k_len)``, such as the
        weights our :class:`~transformer_tutorial.multihead.MultiHeadAttention` returns.
        ``batch_index`` picks the sentence; ``key_tokens`` defaults to ``query_tokens``.
        Tokens must cover the whole padded length (include the padding tokens).
        """
        if isinstance(per_layer_weights, torch.Tensor | np.ndarray):
            if per_layer_weights.ndim != 5:
                raise ValueError(
                    "per_layer_weights must be a list of (batch, heads, q_len, k_len) tensors "
                    "(one per layer) or one (layers, batch, heads, q_len, k_len) array, got "
                    f"shape {tuple(per_layer_weights.shape)}"
                )
        elif isinstance(per_layer_weights, str) or not isinstance(per_layer_weights, Iterable):
            raise ValueError(
                "per_layer_weights must be a list of (batch, heads, q_len, k_len) tensors, "
                f"got {type(per_layer_weights).__name__}"
            )
        layers = [_as_numpy(w, f"per_layer_weights[{i}]") for i, w in enumerate(per_layer_weights)]
        if not layers:
            raise ValueError("per_layer_weights must hold at least one layer")
        first = layers[0].shape
        for i, w in enumerate(layers):
            if w.ndim != 4:
                raise ValueError(
                    f"per_layer_weights[{i}] must have shape (batch, heads, q_len, k_len), "
                    f"got {w.shape}"
                )
            if w.shape != first:
                raise ValueError(
                    f"every layer must have the same shape (batch, heads, q_len, k_len); "
                    f"layer 0 has {first}, layer {i} has {w.shape}"
                )
        batch_index = _check_index(batch_index, "batch_index", first[0])
        weights = np.stack([w[batch_index] for w in layers])
        if key_tokens is None:
            key_tokens = query_tokens
        return cls(weights, query_tokens, key_tokens, kind)
