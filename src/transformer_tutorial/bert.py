"""A BERT encoder assembled from the book's verified blocks (chapter 7).

BERT (Devlin et al., 2019) is the encoder of "Attention Is All You Need" with learned
positions: embeddings (word + position + token type, then layer norm) and a stack of post-norm
:class:`~transformer_tutorial.layers.EncoderBlock` s with GELU. :class:`BertEncoder` loads the
weights of a Hugging Face ``BertModel`` state dict (e.g. all-MiniLM-L6-v2's
``model.safetensors``) into exactly these blocks; nothing else is needed to reproduce its
hidden states and attention.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transformer_tutorial import checks
from transformer_tutorial.layers import EncoderBlock
from transformer_tutorial.positional import LearnedPositionalEmbedding
from transformer_tutorial.weights import copy_parameters

__all__ = ["BertConfig", "BertEmbeddings", "BertEncoder", "EncoderOutput"]


@dataclass(frozen=True)
class BertConfig:
    """The sizes of a BERT encoder, named as in the book (Hugging Face's names in brackets)."""

    vocab_size: int  # vocab_size
    d_model: int  # hidden_size
    num_layers: int  # num_hidden_layers
    num_heads: int  # num_attention_heads
    d_ff: int  # intermediate_size
    max_positions: int  # max_position_embeddings
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "num_layers", "num_heads", "d_ff", "max_positions",
                     "type_vocab_size"):  # fmt: skip
            checks.positive_int(getattr(self, name), name)
        checks.positive_number(self.layer_norm_eps, "layer_norm_eps")
    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        """Read a Hugging Face ``config.json`` (``hidden_act`` must be ``gelu``, absolute
        positions)."""
        config = json.loads(Path(path).read_text())
        if config.get("hidden_act") != "gelu":
            raise ValueError(f"only hidden_act='gelu' is supported, got {config.get('hidden_act')}")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute (learned) position embeddings are supported")
        return cls(
            vocab_size=config["vocab_size"],
            d_model=config["hidden_size"],
            num_layers=config["num_hidden_layers"],
            num_heads=config["num_attention_heads"],
            d_ff=config["intermediate_size"],
            max_positions=config["max_position_embeddings"],
            type_vocab_size=config.get("type_vocab_size", 2),
            layer_norm_eps=config.get("layer_norm_eps", 1e-12),
        )


class BertEmbeddings(nn.Module):
    """Token ids ``(batch, seq)`` -> input vectors ``(batch, seq, d_model)``.

    :math:`x_p = \\mathrm{LayerNorm}(E^{word}_{t_p} + E^{pos}_p + E^{type}_{s_p})`: the word's
    row of the embedding table, its position's learned vector
    (:class:`~transformer_tutorial.positional.LearnedPositionalEmbedding`) and its segment's
    vector (segment 0 for a single sentence).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        checks.instance_of(config, "config", BertConfig)
        self.word = nn.Embedding(config.vocab_size, config.d_model)
        self.position = LearnedPositionalEmbedding(config.max_positions, config.d_model)
        self.token_type = nn.Embedding(config.type_vocab_size, config.d_model)
        self.norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)

    def forward(
        self, token_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(token_ids)
        return self.norm(self.position(self.word(token_ids) + self.token_type(token_type_ids)))


@dataclass(frozen=True)
class EncoderOutput:
    """What :class:`BertEncoder` computes for a batch.

    ``hidden_states``: ``num_layers + 1`` tensors ``(batch, seq, d_model)``, the embeddings
    first, then the output of each block. ``attentions``: ``num_layers`` tensors
    ``(batch, heads, seq, seq)``.
    """

    hidden_states: tuple[torch.Tensor, ...]
    attentions: tuple[torch.Tensor, ...]


def _hf_block_names(i: int) -> dict[str, str]:
    """Our parameter name -> Hugging Face's, for encoder block ``i``."""
    hf = f"encoder.layer.{i}."
    ours = f"blocks.{i}."
    pairs = {
        "self_attn.w_q": "attention.self.query",
        "self_attn.w_k": "attention.self.key",
        "self_attn.w_v": "attention.self.value",
        "self_attn.w_o": "attention.output.dense",
        "add_norm1.norm": "attention.output.LayerNorm",
        "feed_forward.linear1": "intermediate.dense",
        "feed_forward.linear2": "output.dense",
        "add_norm2.norm": "output.LayerNorm",
    }
    return {
        f"{ours}{a}.{p}": f"{hf}{b}.{p}" for a, b in pairs.items() for p in ("weight", "bias")
    }


class BertEncoder(nn.Module):
    """Embeddings then ``num_layers`` post-norm GELU :class:`EncoderBlock` s.

    ``forward(token_ids (batch, seq), key_padding_mask (batch, seq) | None)`` returns an
    :class:`EncoderOutput`. Load a Hugging Face ``BertModel`` with :meth:`from_pretrained`.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = checks.instance_of(config, "config", BertConfig)
        self.embeddings = BertEmbeddings(config)
        self.blocks = nn.ModuleList(
            EncoderBlock(
                config.d_model, config.num_heads, config.d_ff, norm_first=False,
                activation="gelu", layer_norm_eps=config.layer_norm_eps,
            )  # fmt: skip
            for _ in range(config.num_layers)
        )

    def forward(
        self, token_ids: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> EncoderOutput:
        """``token_ids`` ``(batch, seq)`` integers; ``key_padding_mask`` boolean ``(batch,
        seq)``, ``True`` for a real token."""
        token_ids = checks.token_ids(
            token_ids, "token_ids", self.config.vocab_size, self.config.max_positions
        )
        x = self.embeddings(token_ids)
        hidden, attentions = [x], []
        for block in self.blocks:
            x, weights = block(x, key_padding_mask=key_padding_mask)
            hidden.append(x)
            attentions.append(weights)
        return EncoderOutput(tuple(hidden), tuple(attentions))

    @torch.no_grad()
    def load_hf_state_dict(self, state: Mapping[str, np.ndarray | torch.Tensor]) -> BertEncoder:
        """Copy a Hugging Face ``BertModel`` state dict (keys like
        ``encoder.layer.0.attention.self.query.weight``) into this encoder; returns self.

        The pooler and the ``position_ids`` buffer are not used. Every one of our parameters
        must be found, with the same shape.
        """
        names = {
            "embeddings.word.weight": "embeddings.word_embeddings.weight",
            "embeddings.position.embedding.weight": "embeddings.position_embeddings.weight",
            "embeddings.token_type.weight": "embeddings.token_type_embeddings.weight",
            "embeddings.norm.weight": "embeddings.LayerNorm.weight",
            "embeddings.norm.bias": "embeddings.LayerNorm.bias",
        }
        for i in range(self.config.num_layers):
            names.update(_hf_block_names(i))
        copy_parameters(self, names, state, "the state dict")
        return self

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> BertEncoder:
        """An encoder with the ``config.json`` and ``model.safetensors`` of ``folder``, in
        evaluation mode."""
        from safetensors.numpy import load_file

        folder = Path(folder)
        model = cls(BertConfig.from_json(folder / "config.json"))
        model.load_hf_state_dict(load_file(str(folder / "model.safetensors")))
        return model.eval()
