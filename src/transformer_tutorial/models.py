"""Whole models from the verified blocks: the 2017 encoder–decoder and a small decoder-only LM.

* :class:`Encoder`: a stack of :class:`~transformer_tutorial.layers.EncoderBlock` (and a final
  layer norm with pre-norm blocks), ``(batch, src_len, d_model) -> (batch, src_len, d_model)``.
* :class:`Decoder`: a stack of :class:`~transformer_tutorial.layers.DecoderBlock`, causal
  self-attention plus cross-attention over the encoder output ("memory").
* :class:`EncoderDecoder`: token embeddings scaled by :math:`\\sqrt{d_{model}}` plus sinusoidal
  positions, encoder, decoder and a linear layer to the target vocabulary — "Attention Is All
  You Need" (sections 3.1–3.5), optionally with one shared embedding matrix (section 3.4).
  :meth:`EncoderDecoder.transform` is the stack alone and equals ``torch.nn.Transformer``
  with copied weights (:meth:`EncoderDecoder.load_from_torch`).
* :class:`DecoderOnlyLM`: GPT-style, blocks with causal self-attention and no encoder.

Every model returns its attention so that :class:`~transformer_tutorial.record.AttentionRecord`
s come straight out (``output.records(...)``). :func:`greedy_decode` and :func:`greedy_generate`
pick the most probable token at each step until ``<eos>`` or a maximum length (the loop is
:func:`~transformer_tutorial.generation.autoregressive_decode`).

Token ids follow :mod:`transformer_tutorial.tokens`: ``<pad>`` = 0, ``<bos>`` = 2, ``<eos>`` = 3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from transformer_tutorial import checks
from transformer_tutorial.generation import autoregressive_decode
from transformer_tutorial.layers import DecoderBlock, EncoderBlock
from transformer_tutorial.positional import SinusoidalPositionalEncoding
from transformer_tutorial.record import AttentionRecord
from transformer_tutorial.tokens import SPECIAL_TOKENS

__all__ = [
    "PAD_ID",
    "BOS_ID",
    "EOS_ID",
    "TokenEmbedding",
    "Encoder",
    "Decoder",
    "Seq2SeqOutput",
    "EncoderDecoder",
    "LMOutput",
    "DecoderOnlyLM",
    "greedy_decode",
    "greedy_generate",
    "num_parameters",
]

PAD_ID, BOS_ID, EOS_ID = (SPECIAL_TOKENS.index(t) for t in ("<pad>", "<bos>", "<eos>"))


def _final_norm(d_model: int, norm_first: bool, final_norm: bool | None, eps: float):
    """Pre-norm stacks end with a layer norm (their last residual sum is never normalized)."""
    wanted = norm_first if final_norm is None else final_norm
    return nn.LayerNorm(d_model, eps=eps) if wanted else None


@torch.no_grad()
def _copy_final_norm(ours: nn.LayerNorm | None, theirs: nn.LayerNorm | None) -> None:
    if (ours is None) != (theirs is None):
        raise ValueError(
            f"final norm mismatch: ours {'present' if ours is not None else 'absent'}, torch's "
            f"{'present' if theirs is not None else 'absent'} (set final_norm accordingly)"
        )
    if ours is not None:
        ours.weight.copy_(theirs.weight)
        ours.bias.copy_(theirs.bias)


class TokenEmbedding(nn.Module):
    """Token ids ``(batch, seq)`` -> vectors ``(batch, seq, d_model)``, scaled by
    :math:`\\sqrt{d_{model}}` ("we multiply those weights by :math:`\\sqrt{d_{model}}`",
    section 3.4). The table starts with entries of standard deviation :math:`d_{model}^{-0.5}`
    (as in fairseq), so the scaled vectors have entries of size about 1, like the positional
    encoding added next: neither drowns the other."""

    def __init__(self, vocab_size: int, d_model: int) -> None:
        super().__init__()
        self.vocab_size = checks.positive_int(vocab_size, "vocab_size")
        self.d_model = checks.positive_int(d_model, "d_model")
        self.embedding = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = checks.token_ids(ids, "ids", self.vocab_size)
        return self.embedding(ids) * math.sqrt(self.d_model)


class Encoder(nn.Module):
    """``num_layers`` encoder blocks: ``(batch, src_len, d_model) -> (batch, src_len, d_model)``.

    ``final_norm`` (default: ``norm_first``) adds a layer norm after the last block, as
    ``torch.nn.Transformer`` always does.
    """

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        num_heads: int,
        d_ff: int,
        norm_first: bool = False,
        final_norm: bool | None = None,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        checks.positive_int(num_layers, "num_layers")
        self.d_model = d_model
        self.layers = nn.ModuleList(
            EncoderBlock(d_model, num_heads, d_ff, norm_first, activation, layer_norm_eps)
            for _ in range(num_layers)
        )
        self.norm = _final_norm(d_model, norm_first, final_norm, layer_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``x`` ``(batch, src_len, d_model)``; ``key_padding_mask`` ``(batch, src_len)``,
        ``True`` for a real token. Returns the output ``(batch, src_len, d_model)`` and one
        self-attention tensor ``(batch, heads, src_len, src_len)`` per layer."""
        weights = []
        for layer in self.layers:
            x, w = layer(x, key_padding_mask=key_padding_mask, causal=causal)
            weights.append(w)
        return (self.norm(x) if self.norm is not None else x), weights

    def load_from_torch(self, encoder: nn.TransformerEncoder) -> Encoder:
        """Copy a ``torch.nn.TransformerEncoder`` (same sizes and options); returns self."""
        if not isinstance(encoder, nn.TransformerEncoder):
            raise ValueError(
                f"encoder: expected a torch.nn.TransformerEncoder, got {type(encoder).__name__}"
            )
        if len(encoder.layers) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} layers, got {len(encoder.layers)}")
        for ours, theirs in zip(self.layers, encoder.layers, strict=True):
            ours.load_from_torch(theirs)
        _copy_final_norm(self.norm, encoder.norm)
        return self


class Decoder(nn.Module):
    """``num_layers`` decoder blocks: target ``(batch, tgt_len, d_model)`` and memory
    ``(batch, src_len, d_model)`` -> ``(batch, tgt_len, d_model)``."""

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        num_heads: int,
        d_ff: int,
        norm_first: bool = False,
        final_norm: bool | None = None,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        checks.positive_int(num_layers, "num_layers")
        self.d_model = d_model
        self.layers = nn.ModuleList(
            DecoderBlock(d_model, num_heads, d_ff, norm_first, activation, layer_norm_eps)
            for _ in range(num_layers)
        )
        self.norm = _final_norm(d_model, norm_first, final_norm, layer_norm_eps)

    def forward(
        self,
        y: torch.Tensor,
        memory: torch.Tensor,
        causal: bool = True,
        key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Returns ``(output (batch, tgt_len, d_model), self_weights, cross_weights)``, one
        ``(batch, heads, tgt_len, tgt_len)`` and one ``(batch, heads, tgt_len, src_len)``
        tensor per layer. Masks are boolean, ``True`` = real token / may attend."""
        like = self.layers[0].self_attn.w_q.weight
        expected = f"(batch, tgt_len, d_model) = (batch, tgt_len, {self.d_model})"
        y = checks.as_tensor(y, "y", like, expected, ndim=3, last_dim=self.d_model)
        self_weights, cross_weights = [], []
        for layer in self.layers:
            y, sw, cw = layer(
                y, memory, causal=causal, self_key_padding_mask=key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
            )  # fmt: skip
            self_weights.append(sw)
            cross_weights.append(cw)
        return (self.norm(y) if self.norm is not None else y), self_weights, cross_weights

    def load_from_torch(self, decoder: nn.TransformerDecoder) -> Decoder:
        """Copy a ``torch.nn.TransformerDecoder`` (same sizes and options); returns self."""
        if not isinstance(decoder, nn.TransformerDecoder):
            raise ValueError(
                f"decoder: expected a torch.nn.TransformerDecoder, got {type(decoder).__name__}"
            )
        if len(decoder.layers) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} layers, got {len(decoder.layers)}")
        for ours, theirs in zip(self.layers, decoder.layers, strict=True):
            ours.load_from_torch(theirs)
        _copy_final_norm(self.norm, decoder.norm)
        return self


def _record(
    weights: list[torch.Tensor], query_tokens: Sequence[str], key_tokens: Sequence[str],
    batch_index: int, kind: str,
) -> AttentionRecord:
    q_len, k_len = weights[0].shape[-2:]
    return AttentionRecord.from_layers(
        weights, list(query_tokens)[:q_len], list(key_tokens)[:k_len], batch_index, kind
    )


@dataclass(frozen=True)
class Seq2SeqOutput:
    """What :class:`EncoderDecoder` returns.

    ``logits`` ``(batch, tgt_len, tgt_vocab)``; per layer, ``encoder_attention``
    ``(batch, heads, src_len, src_len)``, ``decoder_attention`` ``(batch, heads, tgt_len,
    tgt_len)`` and ``cross_attention`` ``(batch, heads, tgt_len, src_len)``.
    """

    logits: torch.Tensor
    encoder_attention: list[torch.Tensor]
    decoder_attention: list[torch.Tensor]
    cross_attention: list[torch.Tensor]

    def records(
        self, src_tokens: Sequence[str], tgt_tokens: Sequence[str], batch_index: int = 0
    ) -> dict[str, AttentionRecord]:
        """The three attentions of sentence ``batch_index`` as :class:`AttentionRecord` s:
        ``"encoder"`` (self), ``"decoder"`` (self) and ``"cross"`` (decoder queries over
        encoder keys). Token lists must cover the (padded) lengths."""
        return {
            "encoder": _record(self.encoder_attention, src_tokens, src_tokens, batch_index, "self"),
            "decoder": _record(self.decoder_attention, tgt_tokens, tgt_tokens, batch_index, "self"),
            "cross": _record(self.cross_attention, tgt_tokens, src_tokens, batch_index, "cross"),
        }


class EncoderDecoder(nn.Module):
    """The Transformer of "Attention Is All You Need": embed, encode, decode, project.

    ``forward(src_ids (batch, src_len), tgt_ids (batch, tgt_len))`` returns a
    :class:`Seq2SeqOutput` whose logits at position :math:`t` predict target token
    :math:`t+1` (teacher forcing: ``tgt_ids`` starts with ``<bos>``). Padding (``pad_id``) is
    masked in every attention. ``share_embeddings=True`` uses one matrix for the source and
    target embeddings and the output projection (the vocabularies must then be one).
    ``causal=False`` removes the decoder's causal mask — only for the experiment showing why
    it is needed.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 64,
        num_heads: int = 4,
        d_ff: int = 128,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 2,
        max_len: int = 64,
        norm_first: bool = False,
        final_norm: bool | None = None,
        share_embeddings: bool = False,
        causal: bool = True,
        pad_id: int = PAD_ID,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        checks.positive_int(src_vocab_size, "src_vocab_size")
        checks.positive_int(tgt_vocab_size, "tgt_vocab_size")
        self.max_len = checks.positive_int(max_len, "max_len")
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError(
                "share_embeddings needs one vocabulary: src_vocab_size == tgt_vocab_size, got "
                f"{src_vocab_size} and {tgt_vocab_size}"
            )
        self.d_model, self.pad_id, self.causal = d_model, pad_id, bool(causal)
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.src_embed = TokenEmbedding(src_vocab_size, d_model)
        self.tgt_embed = self.src_embed if share_embeddings else TokenEmbedding(tgt_vocab_size,
                                                                                 d_model)
        self.positions = SinusoidalPositionalEncoding(max_len, d_model)
        stack = {"d_model": d_model, "num_heads": num_heads, "d_ff": d_ff,
                 "norm_first": norm_first, "final_norm": final_norm, "activation": activation}
        self.encoder = Encoder(num_encoder_layers, **stack)
        self.decoder = Decoder(num_decoder_layers, **stack)
        self.generator = nn.Linear(d_model, tgt_vocab_size)
        if share_embeddings:
            self.generator.weight = self.tgt_embed.embedding.weight

    # -- the stack on vectors: torch.nn.Transformer's interface -----------------------------
    def _check_vectors(self, x: object, name: str) -> torch.Tensor:
        d = self.src_embed.d_model
        expected = f"(batch, {name}_len, d_model) = (batch, {name}_len, {d})"
        return checks.as_tensor(x, name, self.src_embed.embedding.weight, expected, ndim=3,
                                last_dim=d)  # fmt: skip

    def transform(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        src_key_padding_mask: torch.Tensor | None = None,
        tgt_key_padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Encoder then decoder on vectors ``src`` ``(batch, src_len, d_model)`` and ``tgt``
        ``(batch, tgt_len, d_model)``; like ``torch.nn.Transformer(src, tgt, tgt_is_causal)``.

        Returns ``(output (batch, tgt_len, d_model), encoder_attention, decoder_attention,
        cross_attention)``. Padding masks are boolean, ``True`` = real token.
        """
        src, tgt = self._check_vectors(src, "src"), self._check_vectors(tgt, "tgt")
        memory, enc_w = self.encoder(src, key_padding_mask=src_key_padding_mask)
        out, dec_w, cross_w = self.decoder(
            tgt, memory, causal=self.causal, key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=src_key_padding_mask,
        )  # fmt: skip
        return out, enc_w, dec_w, cross_w

    def load_from_torch(self, transformer: nn.Transformer) -> EncoderDecoder:
        """Copy the encoder and decoder of a ``torch.nn.Transformer`` (``batch_first=True``,
        same sizes, ``final_norm=True``: torch always ends both stacks with a norm); returns
        self. Embeddings and output projection are not part of torch's module."""
        if not isinstance(transformer, nn.Transformer):
            name = type(transformer).__name__
            raise ValueError(f"transformer: expected a torch.nn.Transformer, got {name}")
        if not transformer.batch_first:
            raise ValueError("transformer: expected a torch.nn.Transformer with batch_first=True")
        self.encoder.load_from_torch(transformer.encoder)
        self.decoder.load_from_torch(transformer.decoder)
        return self

    # -- ids in, logits out ---------------------------------------------------------------
    def _embed(self, embed: TokenEmbedding, ids: torch.Tensor) -> torch.Tensor:
        return self.positions(embed(ids))

    def check_src(self, src_ids: object) -> torch.Tensor:
        return checks.token_ids(src_ids, "src_ids", self.src_vocab_size, self.max_len)

    def encode(self, src_ids: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``src_ids`` ``(batch, src_len)`` -> memory ``(batch, src_len, d_model)`` and the
        encoder's self-attention per layer."""
        src_ids = self.check_src(src_ids)
        return self.encoder(self._embed(self.src_embed, src_ids),
                            key_padding_mask=src_ids != self.pad_id)

    def decode(
        self, tgt_ids: torch.Tensor, memory: torch.Tensor, src_ids: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Logits ``(batch, tgt_len, tgt_vocab)`` for ``tgt_ids`` ``(batch, tgt_len)`` given
        ``memory`` from :meth:`encode`, and the decoder's self- and cross-attention."""
        tgt_ids = checks.token_ids(tgt_ids, "tgt_ids", self.tgt_vocab_size, self.max_len)
        src_ids = self.check_src(src_ids)
        if tgt_ids.shape[0] != src_ids.shape[0]:
            raise ValueError(
                "src_ids (batch, src_len) and tgt_ids (batch, tgt_len) must share batch, got "
                f"{tuple(src_ids.shape)} and {tuple(tgt_ids.shape)}"
            )
        out, self_w, cross_w = self.decoder(
            self._embed(self.tgt_embed, tgt_ids), memory, causal=self.causal,
            key_padding_mask=tgt_ids != self.pad_id,
            memory_key_padding_mask=src_ids != self.pad_id,
        )  # fmt: skip
        return self.generator(out), self_w, cross_w

    def forward(self, src_ids: torch.Tensor, tgt_ids: torch.Tensor) -> Seq2SeqOutput:
        memory, enc_w = self.encode(src_ids)
        logits, dec_w, cross_w = self.decode(tgt_ids, memory, src_ids)
        return Seq2SeqOutput(logits, enc_w, dec_w, cross_w)


@dataclass(frozen=True)
class LMOutput:
    """What :class:`DecoderOnlyLM` returns: ``logits`` ``(batch, seq, vocab)`` and one causal
    self-attention tensor ``(batch, heads, seq, seq)`` per layer."""

    logits: torch.Tensor
    attention: list[torch.Tensor]

    def record(self, tokens: Sequence[str], batch_index: int = 0) -> AttentionRecord:
        """The self-attention of sentence ``batch_index`` as an :class:`AttentionRecord`."""
        return _record(self.attention, tokens, tokens, batch_index, "self")


class DecoderOnlyLM(nn.Module):
    """A small GPT-style language model: embeddings + sinusoidal positions, ``num_layers``
    blocks of causal self-attention and feed-forward (no encoder, so no cross-attention),
    pre-norm with a final norm by default, and a projection tied to the embedding matrix.

    ``forward(ids (batch, seq))`` -> :class:`LMOutput`; the logits at position :math:`t`
    predict token :math:`t+1`. The stack (:meth:`transform`) equals a
    ``torch.nn.TransformerEncoder`` run with a causal mask (:meth:`load_from_torch`).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        num_heads: int = 4,
        d_ff: int = 256,
        num_layers: int = 2,
        max_len: int = 512,
        norm_first: bool = True,
        final_norm: bool | None = None,
        pad_id: int = PAD_ID,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        self.vocab_size = checks.positive_int(vocab_size, "vocab_size")
        self.max_len = checks.positive_int(max_len, "max_len")
        self.d_model, self.pad_id = d_model, pad_id
        self.embed = TokenEmbedding(vocab_size, d_model)
        self.positions = SinusoidalPositionalEncoding(max_len, d_model)
        self.blocks = Encoder(num_layers, d_model, num_heads, d_ff, norm_first, final_norm,
                              activation)
        self.generator = nn.Linear(d_model, vocab_size, bias=False)
        self.generator.weight = self.embed.embedding.weight

    def transform(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The blocks with causal self-attention on vectors ``(batch, seq, d_model)``."""
        return self.blocks(x, key_padding_mask=key_padding_mask, causal=True)

    def load_from_torch(self, encoder: nn.TransformerEncoder) -> DecoderOnlyLM:
        """Copy the blocks of a ``torch.nn.TransformerEncoder`` (to be run with a causal
        mask); returns self."""
        self.blocks.load_from_torch(encoder)
        return self

    def forward(self, ids: torch.Tensor) -> LMOutput:
        ids = checks.token_ids(ids, "ids", self.vocab_size, self.max_len)
        out, weights = self.transform(self.positions(self.embed(ids)), ids != self.pad_id)
        return LMOutput(self.generator(out), weights)


def num_parameters(model: nn.Module) -> int:
    """The number of distinct trainable numbers in ``model`` (a shared matrix counts once)."""
    checks.instance_of(model, "model", nn.Module)
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def greedy_decode(
    model: EncoderDecoder,
    src_ids: torch.Tensor,
    max_len: int,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
) -> torch.Tensor:
    """Translate ``src_ids`` ``(batch, src_len)``: start from ``<bos>``, append the most probable
    token, repeat until every sequence has produced ``<eos>`` or ``max_len`` tokens.

    Returns ``(batch, out_len)`` generated ids (without ``<bos>``, with the ``<eos>``), padded
    with ``pad_id`` after a sequence's ``<eos>``; ``out_len <= max_len``. The source is encoded
    once; the decoder reruns on the whole prefix at every step (no KV cache).
    """
    if not isinstance(model, EncoderDecoder):
        raise ValueError(f"model must be an EncoderDecoder, got {type(model).__name__}")
    checks.positive_int(max_len, "max_len")
    if max_len + 1 > model.max_len:
        raise ValueError(f"max_len must be < the model's max_len = {model.max_len}, got {max_len}")
    src_ids = model.check_src(src_ids)
    was_training = model.training
    model.eval()
    memory, _ = model.encode(src_ids)
    tgt = autoregressive_decode(
        lambda tgt, _new: model.decode(tgt, memory, src_ids)[0][:, -1],
        torch.full((src_ids.shape[0], 1), bos_id, dtype=torch.long), max_len,
        eos_id=eos_id, pad_id=model.pad_id,
    )  # fmt: skip
    model.train(was_training)
    return tgt[:, 1:]


@torch.no_grad()
def greedy_generate(
    model: DecoderOnlyLM, prompt_ids: torch.Tensor, max_new_tokens: int, eos_id: int = EOS_ID
) -> torch.Tensor:
    """Continue ``prompt_ids`` ``(batch, prompt_len)`` with the most probable token at each step
    until ``<eos>`` or ``max_new_tokens``. Returns ``(batch, prompt_len + new)`` ids (padding
    after a sequence's ``<eos>``). Reruns the model on the whole sequence at every step."""
    if not isinstance(model, DecoderOnlyLM):
        raise ValueError(f"model must be a DecoderOnlyLM, got {type(model).__name__}")
    checks.positive_int(max_new_tokens, "max_new_tokens")
    ids = checks.token_ids(prompt_ids, "prompt_ids", model.vocab_size, model.max_len)
    if ids.shape[1] + max_new_tokens > model.max_len:
        raise ValueError(
            f"prompt_len + max_new_tokens must be <= max_len = {model.max_len}, got "
            f"{ids.shape[1]} + {max_new_tokens}"
        )
    was_training = model.training
    model.eval()
    ids = autoregressive_decode(
        lambda ids, _new: model(ids).logits[:, -1], ids, max_new_tokens, eos_id=eos_id,
        pad_id=model.pad_id,
    )  # fmt: skip
    model.train(was_training)
    return ids
