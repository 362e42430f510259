"""A LLaMA-style decoder assembled from the book's blocks (chapter 9), and its gguf loader.

The decoder-only Transformer of today (LLaMA, SmolLM2): token embeddings, then ``num_layers``
pre-norm blocks

.. math::

    h = x + \\mathrm{GQA}(\\mathrm{RMSNorm}(x)), \\qquad
    y = h + \\mathrm{SwiGLU}(\\mathrm{RMSNorm}(h)),

a final RMSNorm and the language-model head, a linear map to one score (logit) per vocabulary
entry. The parts: :class:`~transformer_tutorial.norms.RMSNorm`,
:class:`~transformer_tutorial.multihead.GroupedQueryAttention` (with RoPE from
:mod:`~transformer_tutorial.positional`) and :class:`~transformer_tutorial.layers.SwiGLU`.

:func:`read_gguf` reads a llama.cpp ``.gguf`` file (dequantized to float32 by the ``gguf``
package) and undoes llama.cpp's permutation of the query and key weights
(:func:`unpermute_qk`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transformer_tutorial import checks
from transformer_tutorial.layers import SwiGLU
from transformer_tutorial.multihead import GroupedQueryAttention
from transformer_tutorial.norms import RMSNorm
from transformer_tutorial.weights import copy_parameters

__all__ = [
    "LlamaConfig",
    "LlamaBlock",
    "KVCache",
    "DecoderOutput",
    "LlamaDecoder",
    "attention_layer_indices",
    "unpermute_qk",
    "read_gguf",
]


@dataclass(frozen=True)
class LlamaConfig:
    """The sizes of a LLaMA-style decoder (gguf's ``llama.*`` keys in brackets)."""

    vocab_size: int  # llama.vocab_size
    d_model: int  # embedding_length
    num_layers: int  # block_count
    num_heads: int  # attention.head_count
    num_kv_heads: int  # attention.head_count_kv
    d_ff: int  # feed_forward_length
    max_positions: int  # context_length
    rope_base: float = 10000.0  # rope.freq_base
    rms_norm_eps: float = 1e-5  # attention.layer_norm_rms_epsilon
    tie_embeddings: bool = True  # no separate output.weight in the file

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "num_layers", "num_heads", "num_kv_heads", "d_ff",
                     "max_positions"):  # fmt: skip
            checks.positive_int(getattr(self, name), name)
        checks.positive_number(self.rope_base, "rope_base")
        checks.positive_number(self.rms_norm_eps, "rms_norm_eps")
        checks.instance_of(self.tie_embeddings, "tie_embeddings", bool)


class LlamaBlock(nn.Module):
    """One pre-norm decoder block: :math:`h = x + \\mathrm{GQA}(\\mathrm{RMSNorm}(x))`,
    :math:`y = h + \\mathrm{SwiGLU}(\\mathrm{RMSNorm}(h))`."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        checks.instance_of(config, "config", LlamaConfig)
        self.attn_norm = RMSNorm(config.d_model, config.rms_norm_eps)
        self.attn = GroupedQueryAttention(
            config.d_model, config.num_heads, config.num_kv_heads, config.rope_base
        )
        self.ffn_norm = RMSNorm(config.d_model, config.rms_norm_eps)
        self.ffn = SwiGLU(config.d_model, config.d_ff)

    def forward(
        self, x: torch.Tensor, past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x`` ``(batch, seq, d_model)`` -> ``(y, weights (batch, heads, seq, past + seq),
        (keys, values))``; see :meth:`GroupedQueryAttention.forward`."""
        out, weights, key_value = self.attn(self.attn_norm(x), past_key_value)
        h = x + out
        return h + self.ffn(self.ffn_norm(h)), weights, key_value


@dataclass(frozen=True)
class KVCache:
    """The keys and values of every token read so far, per layer.

    ``layers[l] = (keys, values)``, each ``(batch, kv_heads, length, d_head)``; the keys are
    stored already rotated by RoPE. Under the causal mask a token's key and value never change
    once computed (later tokens cannot influence earlier ones), so they can be reused.
    """

    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    @property
    def length(self) -> int:
        """How many positions the cache holds."""
        return self.layers[0][0].shape[2]

    @property
    def nbytes(self) -> int:
        """Memory held by the cache: :math:`2 \\times \\text{layers} \\times \\text{kv\\_heads}
        \\times \\text{length} \\times d_{head}` numbers per sentence, for the whole batch."""
        return sum(k.nelement() * k.element_size() * 2 for k, _ in self.layers)


@dataclass(frozen=True)
class DecoderOutput:
    """``logits`` ``(batch, seq, vocab)``; ``attentions``: one ``(batch, heads, seq, past +
    seq)`` tensor per layer listed in ``attention_layers`` (empty unless asked for);
    ``cache``: the :class:`KVCache` including these tokens."""

    logits: torch.Tensor
    attentions: tuple[torch.Tensor, ...]
    cache: KVCache
    attention_layers: tuple[int, ...] = ()


def attention_layer_indices(layers: object, num_layers: int) -> tuple[int, ...]:
    """Which layers' attention weights to keep: ``None`` or ``()`` none, ``"all"`` every layer,
    or a sequence of layer indices in ``[0, num_layers)`` (kept in increasing order)."""
    if layers is None:
        return ()
    if isinstance(layers, str):
        checks.one_of(layers, "attention_layers", ["all"])
        return tuple(range(num_layers))
    if not isinstance(layers, Sequence | range):
        raise ValueError(
            f"attention_layers must be None, 'all' or a sequence of layer indices, got {layers!r}"
        )
    return tuple(
        sorted({checks.int_in_range(i, "attention_layers", 0, num_layers - 1) for i in layers})
    )


class LlamaDecoder(nn.Module):
    """Token embeddings, :class:`LlamaBlock` s, a final RMSNorm and the language-model head.

    With ``tie_embeddings`` the head reuses the embedding table: the logit of token :math:`t`
    is the dot product of the last vector with :math:`t`'s embedding row.
    """

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.config = checks.instance_of(config, "config", LlamaConfig)
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(LlamaBlock(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.d_model, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def forward(
        self,
        token_ids: torch.Tensor,
        cache: KVCache | None = None,
        attention_layers: Sequence[int] | str | None = None,
    ) -> DecoderOutput:
        """Read ``token_ids`` ``(batch, seq)``, after the ``cache.length`` tokens in ``cache``.

        Without a cache the tokens sit at positions ``0 .. seq - 1``; with one, they continue
        it. Raises ``ValueError`` beyond the context length ``max_positions``.

        ``attention_layers`` (``None``, ``"all"`` or layer indices): whose attention weights
        to return. Each layer's weights take ``batch x heads x seq x (past + seq) x 4`` bytes
        (2.4 GB per layer for SmolLM2 at 8,192 tokens), so by default none is kept and a
        layer's weights are freed as soon as the next layer runs.
        """
        keep = attention_layer_indices(attention_layers, self.config.num_layers)
        token_ids = checks.token_ids(token_ids, "token_ids", self.config.vocab_size)
        if cache is not None:
            checks.instance_of(cache, "cache", KVCache)
            if len(cache.layers) != self.config.num_layers:
                raise ValueError(
                    f"cache must hold {self.config.num_layers} layers, got {len(cache.layers)}"
                )
        past = 0 if cache is None else cache.length
        if past + token_ids.shape[1] > self.config.max_positions:
            raise ValueError(
                f"the context holds at most {self.config.max_positions} tokens, got "
                f"{past} cached + {token_ids.shape[1]} new"
            )
        x = self.embed(token_ids)
        attentions, new_cache = [], []
        for i, block in enumerate(self.blocks):
            x, weights, key_value = block(x, None if cache is None else cache.layers[i])
            if i in keep:
                attentions.append(weights)
            del weights
            new_cache.append(key_value)
        logits = self.lm_head(self.norm(x))
        return DecoderOutput(logits, tuple(attentions), KVCache(tuple(new_cache)), keep)

    @torch.no_grad()
    def load_gguf_tensors(self, tensors: dict[str, np.ndarray]) -> LlamaDecoder:
        """Copy llama.cpp tensors (names like ``blk.0.attn_q.weight``, already un-permuted by
        :func:`read_gguf`) into this decoder; returns self."""
        checks.instance_of(tensors, "tensors", dict)
        names = {"embed.weight": "token_embd.weight", "norm.weight": "output_norm.weight"}
        if not self.config.tie_embeddings:
            names["lm_head.weight"] = "output.weight"
        per_block = {
            "attn_norm.weight": "attn_norm.weight",
            "attn.w_q.weight": "attn_q.weight",
            "attn.w_k.weight": "attn_k.weight",
            "attn.w_v.weight": "attn_v.weight",
            "attn.w_o.weight": "attn_output.weight",
            "ffn_norm.weight": "ffn_norm.weight",
            "ffn.w_gate.weight": "ffn_gate.weight",
            "ffn.w_up.weight": "ffn_up.weight",
            "ffn.w_down.weight": "ffn_down.weight",
        }
        for i in range(self.config.num_layers):
            names.update({f"blocks.{i}.{a}": f"blk.{i}.{b}" for a, b in per_block.items()})
        copy_parameters(self, names, tensors, "the gguf file")
        return self

    @classmethod
    def uninitialized(cls, config: LlamaConfig) -> LlamaDecoder:
        """A decoder whose parameters are allocated but not initialized, to be filled by
        :meth:`load_gguf_tensors` (skips the random initialization of 135M numbers)."""
        with torch.device("meta"):
            model = cls(config)
        model = model.to_empty(device="cpu")
        if config.tie_embeddings:
            model.lm_head.weight = model.embed.weight
        return model

    @classmethod
    def from_gguf(cls, path: str | Path) -> LlamaDecoder:
        """A decoder with the configuration and (dequantized) weights of a gguf file, in
        evaluation mode."""
        config, tensors, _ = read_gguf(path)
        return cls.uninitialized(config).load_gguf_tensors(tensors).eval()


def unpermute_qk(weight: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's reordering of a query or key weight ``(heads * d_head, d_model)``.

    llama.cpp's converter stores, within each head, the rows of the two halves interleaved
    (its RoPE rotates neighbouring pairs :math:`(2j, 2j+1)`); Hugging Face's rotate-half layout
    (ours, :func:`~transformer_tutorial.positional.apply_rotary`) pairs :math:`j` with
    :math:`j + d_{head}/2`. The converter's ``reshape(heads, 2, d/2, ...).swapaxes(1, 2)``
    is undone by ``reshape(heads, d/2, 2, ...).swapaxes(1, 2)``.
    """
    weight = checks.float_array(weight, "weight", "(heads * d_head, d_model)", min_ndim=1)
    heads = checks.positive_int(heads, "heads")
    rows = weight.shape[0]
    if rows % (2 * heads):
        raise ValueError(f"weight rows ({rows}) must be a multiple of 2 * heads = {2 * heads}")
    w = weight.reshape(heads, rows // heads // 2, 2, *weight.shape[1:])
    return w.swapaxes(1, 2).reshape(weight.shape)


def read_gguf(path: str | Path) -> tuple[LlamaConfig, dict[str, np.ndarray], dict[str, object]]:
    """Read a LLaMA-architecture gguf file: ``(config, float32 tensors, metadata)``.

    Quantized tensors (Q4_1, Q8_0, ...) are dequantized with ``gguf.quants.dequantize``;
    the query and key weights are un-permuted (:func:`unpermute_qk`). ``metadata`` holds the
    scalar and string fields plus the tokenizer lists (``tokenizer.ggml.tokens``,
    ``tokenizer.ggml.merges``, ``tokenizer.ggml.token_type``).
    """
    from gguf import GGUFReader
    from gguf.quants import dequantize

    if not isinstance(path, str | Path):
        raise ValueError(f"path must be a str or Path, got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no gguf file at {path}")
    with path.open("rb") as file:
        magic = file.read(4)
    if magic != b"GGUF":
        raise ValueError(
            f"path: {path} is not a gguf file (it starts with {magic!r}, not b'GGUF')"
        )
    try:
        reader = GGUFReader(str(path))
    except (ValueError, KeyError, IndexError, OSError) as err:
        raise ValueError(f"path: {path} is not a readable gguf file: {err}") from None
    meta = {name: field.contents() for name, field in reader.fields.items()}
    if meta.get("general.architecture") != "llama":
        raise ValueError(f"expected a llama architecture, got {meta.get('general.architecture')}")
    tensors = {
        t.name: dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        for t in reader.tensors
    }
    heads = int(meta["llama.attention.head_count"])
    kv_heads = int(meta["llama.attention.head_count_kv"])
    for name in tensors:
        if name.endswith("attn_q.weight"):
            tensors[name] = unpermute_qk(tensors[name], heads)
        elif name.endswith("attn_k.weight"):
            tensors[name] = unpermute_qk(tensors[name], kv_heads)
    config = LlamaConfig(
        vocab_size=tensors["token_embd.weight"].shape[0],
        d_model=int(meta["llama.embedding_length"]),
        num_layers=int(meta["llama.block_count"]),
        num_heads=heads,
        num_kv_heads=kv_heads,
        d_ff=int(meta["llama.feed_forward_length"]),
        max_positions=int(meta["llama.context_length"]),
        rope_base=float(meta.get("llama.rope.freq_base", 10000.0)),
        rms_norm_eps=float(meta.get("llama.attention.layer_norm_rms_epsilon", 1e-5)),
        tie_embeddings="output.weight" not in tensors,
    )
    return config, tensors, meta
