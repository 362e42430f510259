"""The other parts of a Transformer block, and the blocks themselves, in torch.

* :class:`FeedForward`: :math:`\\mathrm{FFN}(x) = \\max(0, x W_1 + b_1) W_2 + b_2`, applied to
  every position on its own ("Attention Is All You Need", section 3.3; GELU optional).
* :class:`SwiGLU`: the gated feed-forward network of LLaMA-style decoders,
  :math:`(\\mathrm{SiLU}(x W_{gate}) \\odot x W_{up}) W_{down}`.
* :class:`AddNorm`: the residual connection plus layer normalization around a sublayer,
  post-norm :math:`\\mathrm{LayerNorm}(x + \\mathrm{Sublayer}(x))` (the original paper) or
  pre-norm :math:`x + \\mathrm{Sublayer}(\\mathrm{LayerNorm}(x))` (GPT-2 and most models since).
* :class:`EncoderBlock`: self-attention, then the feed-forward network, each wrapped in AddNorm.
* :class:`DecoderBlock`: causal self-attention, cross-attention over the encoder output
  ("memory"), then the feed-forward network, each wrapped in AddNorm.

With weights copied in (``load_from_torch``) the blocks equal ``torch.nn.TransformerEncoderLayer``
and ``torch.nn.TransformerDecoderLayer`` (``batch_first=True``, dropout off). There is no
dropout here. Masks are boolean, ``True`` = may attend (see :mod:`transformer_tutorial.multihead`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from transformer_tutorial import checks
from transformer_tutorial.multihead import MultiHeadAttention

__all__ = [
    "FeedForward",
    "SwiGLU",
    "AddNorm",
    "EncoderBlock",
    "DecoderBlock",
    "layer_norm_steps",
    "encoder_block_steps",
    "seeded_encoder_layer",
]

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu}


def _check_activation(activation: str) -> str:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    return activation


def _check_x(x: object, like: torch.Tensor, d_model: int, name: str = "x") -> torch.Tensor:
    """``x`` as a finite tensor ``(batch, seq, d_model)`` of ``like``'s dtype."""
    expected = f"(batch, seq, d_model) = (batch, seq, {d_model})"
    return checks.as_tensor(x, name, like, expected, ndim=3, last_dim=d_model)


def _torch_activation_name(layer: nn.Module) -> str:
    """'relu' or 'gelu' for a torch Transformer layer, from its ``activation`` attribute."""
    act = layer.activation
    if act is F.relu or isinstance(act, nn.ReLU):
        return "relu"
    if act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        return "gelu"
    raise ValueError(f"only relu and exact gelu activations can be copied, got {act!r}")


@torch.no_grad()
def _copy_linear(ours: nn.Linear, theirs: nn.Linear) -> None:
    if ours.weight.shape != theirs.weight.shape or (ours.bias is None) != (theirs.bias is None):
        raise ValueError(
            f"linear layer mismatch: ours {tuple(ours.weight.shape)} bias={ours.bias is not None}, "
            f"torch {tuple(theirs.weight.shape)} bias={theirs.bias is not None}"
        )
    ours.weight.copy_(theirs.weight)
    if ours.bias is not None:
        ours.bias.copy_(theirs.bias)


@torch.no_grad()
def _copy_norm(ours: nn.LayerNorm, theirs: nn.LayerNorm) -> None:
    if ours.normalized_shape != theirs.normalized_shape or ours.eps != theirs.eps:
        raise ValueError(
            f"layer norm mismatch: ours {ours.normalized_shape} eps={ours.eps}, "
            f"torch {theirs.normalized_shape} eps={theirs.eps}"
        )
    if (ours.bias is None) != (theirs.bias is None):
        raise ValueError("layer norm mismatch: one has a bias (shift), the other not")
    ours.weight.copy_(theirs.weight)
    if ours.bias is not None:
        ours.bias.copy_(theirs.bias)


class FeedForward(nn.Module):
    """Position-wise feed-forward network, ``(batch, seq, d_model) -> (batch, seq, d_model)``.

    :math:`\\mathrm{FFN}(x) = \\max(0, x W_1 + b_1) W_2 + b_2` (ReLU; or GELU), with
    :math:`W_1` ``(d_model, d_ff)`` in ``linear1`` and :math:`W_2` ``(d_ff, d_model)`` in
    ``linear2``. Each position is transformed on its own: no information moves between tokens.
    """

    def __init__(self, d_model: int, d_ff: int, activation: str = "relu", bias: bool = True):
        super().__init__()
        self.d_model = checks.positive_int(d_model, "d_model")
        self.d_ff = checks.positive_int(d_ff, "d_ff")
        self.activation = _check_activation(activation)
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_x(x, self.linear1.weight, self.d_model)
        return self.linear2(_ACTIVATIONS[self.activation](self.linear1(x)))


class SwiGLU(nn.Module):
    """Gated feed-forward network (Shazeer 2020; LLaMA, SmolLM2), ``(batch, seq, d_model) ->
    (batch, seq, d_model)``.

    :math:`\\mathrm{FFN}_{\\mathrm{SwiGLU}}(x) = (\\mathrm{SiLU}(x W_{gate}) \\odot x W_{up})
    W_{down}`, :math:`\\mathrm{SiLU}(z) = z\\,\\sigma(z)`. Two matrices go up to ``d_ff``
    (``w_gate``, ``w_up``), their product gates element by element, ``w_down`` comes back.
    No biases. Like :class:`FeedForward`, each position is transformed on its own.
    """

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.d_model = checks.positive_int(d_model, "d_model")
        self.d_ff = checks.positive_int(d_ff, "d_ff")
        self.w_gate = nn.Linear(d_model, d_ff, bias=False)
        self.w_up = nn.Linear(d_model, d_ff, bias=False)
        self.w_down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_x(x, self.w_gate.weight, self.d_model)
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))


class AddNorm(nn.Module):
    """Residual connection and layer normalization around a sublayer.

    Post-norm (``norm_first=False``, the original paper): :math:`\\mathrm{LayerNorm}(x +
    \\mathrm{Sublayer}(x))`. Pre-norm (``norm_first=True``): :math:`x +
    \\mathrm{Sublayer}(\\mathrm{LayerNorm}(x))`. ``x``: ``(batch, seq, d_model)``.
    LayerNorm normalizes each token's ``d_model`` features to mean 0 and variance 1, then
    applies the learned scale and shift (``self.norm.weight``, ``self.norm.bias``).
    """

    def __init__(
        self, d_model: int, norm_first: bool = False, eps: float = 1e-5, bias: bool = True
    ) -> None:
        super().__init__()
        self.d_model = checks.positive_int(d_model, "d_model")
        eps = checks.positive_number(eps, "eps (layer_norm_eps)")
        self.norm_first = bool(norm_first)
        self.norm = nn.LayerNorm(d_model, eps=eps, bias=bias)

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"

    def forward(
        self,
        x: torch.Tensor,
        sublayer: Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, ...]],
        trace: dict[str, torch.Tensor] | None = None,
        names: tuple[str, str, str] = ("x", "sublayer", "output"),
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Apply ``sublayer`` with the residual connection and the norm.

        If ``sublayer`` returns a tuple ``(output, *extra)`` (attention returns
        ``(output, weights)``), the result is ``(new_x, *extra)``; otherwise ``new_x``.
        ``trace``: a dict that receives the intermediates, named after ``names`` = (input,
        sublayer, result), e.g. ``("x", "attention", "h")``: pre-norm ``LN(x)``, ``attention``,
        ``h``; post-norm ``attention``, ``x + attention``, ``h``.
        """
        x = _check_x(x, self.norm.weight, self.d_model)
        if not callable(sublayer):
            raise ValueError(f"sublayer must be callable, got {type(sublayer).__name__}")
        normed = self.norm(x) if self.norm_first else x
        out = sublayer(normed)
        extra: tuple[torch.Tensor, ...] = ()
        if isinstance(out, tuple):
            out, *rest = out
            extra = tuple(rest)
        if out.shape != x.shape:
            raise ValueError(
                f"the sublayer must keep the shape (batch, seq, d_model) = {tuple(x.shape)}, "
                f"got {tuple(out.shape)}"
            )
        if self.norm_first:
            new_x = x + out
            steps = {f"LN({names[0]})": normed, names[1]: out, names[2]: new_x}
        else:
            total = x + out
            new_x = self.norm(total)
            steps = {names[1]: out, f"{names[0]} + {names[1]}": total, names[2]: new_x}
        if trace is not None:
            trace.update(steps)
        return (new_x, *extra) if extra else new_x


class EncoderBlock(nn.Module):
    """One encoder layer: self-attention then feed-forward, each inside :class:`AddNorm`.

    Post-norm: :math:`h = \\mathrm{LN}(x + \\mathrm{MHA}(x, x, x))`,
    :math:`y = \\mathrm{LN}(h + \\mathrm{FFN}(h))`. Pre-norm (``norm_first=True``):
    :math:`h = x + \\mathrm{MHA}(\\mathrm{LN}(x))`, :math:`y = h + \\mathrm{FFN}(\\mathrm{LN}(h))`.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        norm_first: bool = False,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, bias=bias)
        self.add_norm1 = AddNorm(d_model, norm_first, layer_norm_eps, bias=bias)
        self.feed_forward = FeedForward(d_model, d_ff, activation, bias=bias)
        self.add_norm2 = AddNorm(d_model, norm_first, layer_norm_eps, bias=bias)
        self.d_model = d_model
        self.norm_first = bool(norm_first)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        causal: bool = False,
        trace: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(batch, seq, d_model)`` -> ``(output (batch, seq, d_model),
        weights (batch, heads, seq, seq))``.

        ``mask`` ``(seq, seq)`` / ``(batch, seq, seq)`` / ``(batch, heads, seq, seq)`` and
        ``key_padding_mask`` ``(batch, seq)`` are boolean, ``True`` = may attend / real token.
        ``trace``: a dict that receives every intermediate (see :func:`encoder_block_steps`).
        """
        x = _check_x(x, self.self_attn.w_q.weight, self.d_model)
        if trace is not None:
            trace["x"] = x
        h, weights = self.add_norm1(
            x,
            lambda h: self.self_attn(
                h, mask=mask, key_padding_mask=key_padding_mask, causal=causal
            ),
            trace, ("x", "attention", "h"),
        )  # fmt: skip
        return self.add_norm2(h, self.feed_forward, trace, ("h", "ffn", "output")), weights

    def load_from_torch(self, layer: nn.TransformerEncoderLayer) -> EncoderBlock:
        """Copy the weights of a ``torch.nn.TransformerEncoderLayer``; returns self.

        The configurations (sizes, ``norm_first``, activation, eps) must agree.
        """
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise ValueError(
                f"layer: expected a torch.nn.TransformerEncoderLayer, got {type(layer).__name__}"
            )
        _check_same_config(self, layer)
        self.self_attn.load_from_torch(layer.self_attn)
        _copy_linear(self.feed_forward.linear1, layer.linear1)
        _copy_linear(self.feed_forward.linear2, layer.linear2)
        _copy_norm(self.add_norm1.norm, layer.norm1)
        _copy_norm(self.add_norm2.norm, layer.norm2)
        return self

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> EncoderBlock:
        """A new :class:`EncoderBlock` with the configuration and weights of ``layer``."""
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise ValueError(
                f"layer: expected a torch.nn.TransformerEncoderLayer, got {type(layer).__name__}"
            )
        block = cls(**_torch_config(layer))
        block = block.to(dtype=layer.linear1.weight.dtype, device=layer.linear1.weight.device)
        return block.load_from_torch(layer)


class DecoderBlock(nn.Module):
    """One decoder layer: causal self-attention, cross-attention, feed-forward, each in AddNorm.

    Post-norm: :math:`h_1 = \\mathrm{LN}(x + \\mathrm{MHA}(x, x, x; \\text{causal}))`,
    :math:`h_2 = \\mathrm{LN}(h_1 + \\mathrm{MHA}(h_1, m, m))`,
    :math:`y = \\mathrm{LN}(h_2 + \\mathrm{FFN}(h_2))` with :math:`m` the encoder output
    ("memory"); pre-norm moves each LN inside the residual branch as in :class:`AddNorm`.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        norm_first: bool = False,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, bias=bias)
        self.add_norm1 = AddNorm(d_model, norm_first, layer_norm_eps, bias=bias)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, bias=bias)
        self.add_norm2 = AddNorm(d_model, norm_first, layer_norm_eps, bias=bias)
        self.feed_forward = FeedForward(d_model, d_ff, activation, bias=bias)
        self.add_norm3 = AddNorm(d_model, norm_first, layer_norm_eps, bias=bias)
        self.d_model = d_model
        self.norm_first = bool(norm_first)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        causal: bool = True,
        self_mask: torch.Tensor | None = None,
        self_key_padding_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode ``x`` ``(batch, tgt_len, d_model)`` attending to ``memory`` ``(batch, src_len,
        d_model)``.

        Returns ``(output (batch, tgt_len, d_model), self_weights (batch, heads, tgt_len,
        tgt_len), cross_weights (batch, heads, tgt_len, src_len))``. ``causal=True`` (default)
        masks future target positions; ``self_mask`` / ``self_key_padding_mask`` (for the
        target) and ``memory_mask`` ``(tgt_len, src_len)`` / ``memory_key_padding_mask``
        ``(batch, src_len)`` are boolean, ``True`` = may attend / real token.
        """
        x = _check_x(x, self.self_attn.w_q.weight, self.d_model)
        memory = _check_x(memory, self.self_attn.w_q.weight, self.d_model, "memory")
        if memory.shape[0] != x.shape[0]:
            raise ValueError(
                f"x (batch, tgt_len, d_model) and memory (batch, src_len, d_model) must share "
                f"batch; got x {tuple(x.shape)} and memory {tuple(memory.shape)}"
            )
        x, self_weights = self.add_norm1(
            x,
            lambda h: self.self_attn(
                h, mask=self_mask, key_padding_mask=self_key_padding_mask, causal=causal
            ),
        )
        x, cross_weights = self.add_norm2(
            x,
            lambda h: self.cross_attn(
                h, memory, memory, mask=memory_mask, key_padding_mask=memory_key_padding_mask
            ),
        )
        x = self.add_norm3(x, self.feed_forward)
        return x, self_weights, cross_weights

    def load_from_torch(self, layer: nn.TransformerDecoderLayer) -> DecoderBlock:
        """Copy the weights of a ``torch.nn.TransformerDecoderLayer``; returns self.

        torch names the cross-attention ``multihead_attn``; the configurations must agree.
        """
        if not isinstance(layer, nn.TransformerDecoderLayer):
            raise ValueError(
                f"layer: expected a torch.nn.TransformerDecoderLayer, got {type(layer).__name__}"
            )
        _check_same_config(self, layer)
        self.self_attn.load_from_torch(layer.self_attn)
        self.cross_attn.load_from_torch(layer.multihead_attn)
        _copy_linear(self.feed_forward.linear1, layer.linear1)
        _copy_linear(self.feed_forward.linear2, layer.linear2)
        _copy_norm(self.add_norm1.norm, layer.norm1)
        _copy_norm(self.add_norm2.norm, layer.norm2)
        _copy_norm(self.add_norm3.norm, layer.norm3)
        return self

    @classmethod
    def from_torch(cls, layer: nn.TransformerDecoderLayer) -> DecoderBlock:
        """A new :class:`DecoderBlock` with the configuration and weights of ``layer``."""
        if not isinstance(layer, nn.TransformerDecoderLayer):
            raise ValueError(
                f"layer: expected a torch.nn.TransformerDecoderLayer, got {type(layer).__name__}"
            )
        block = cls(**_torch_config(layer))
        block = block.to(dtype=layer.linear1.weight.dtype, device=layer.linear1.weight.device)
        return block.load_from_torch(layer)


def _torch_config(layer: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer) -> dict:
    """The constructor arguments of our block that match a torch Transformer layer."""
    return {
        "d_model": layer.self_attn.embed_dim,
        "num_heads": layer.self_attn.num_heads,
        "d_ff": layer.linear1.out_features,
        "norm_first": layer.norm_first,
        "activation": _torch_activation_name(layer),
        "layer_norm_eps": layer.norm1.eps,
        "bias": layer.linear1.bias is not None,
    }


def _check_same_config(
    block: EncoderBlock | DecoderBlock,
    layer: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer,
) -> None:
    theirs = _torch_config(layer)
    ours = {
        "d_model": block.d_model,
        "num_heads": block.self_attn.num_heads,
        "d_ff": block.feed_forward.d_ff,
        "norm_first": block.norm_first,
        "activation": block.feed_forward.activation,
        "layer_norm_eps": block.add_norm1.norm.eps,
        "bias": block.feed_forward.linear1.bias is not None,
    }
    diff = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
    if diff:
        raise ValueError(f"configuration mismatch (ours, torch's): {diff}")


@torch.no_grad()
def layer_norm_steps(x: torch.Tensor, norm: nn.LayerNorm) -> dict[str, torch.Tensor]:
    """Layer normalization of each token, step by step, with ``norm``'s scale and shift.

    :math:`\\mathrm{LayerNorm}(x) = \\gamma \\odot \\frac{x - \\mu}{\\sqrt{\\sigma^2 +
    \\epsilon}} + \\beta`, with :math:`\\mu` and :math:`\\sigma^2` the mean and (biased)
    variance of the token's own ``d_model`` features. ``x``: ``(..., d_model)``. Returns
    ``mean`` and ``variance`` ``(..., 1)``, ``standardized`` (mean 0, variance 1 per token,
    before the learned scale :math:`\\gamma` and shift :math:`\\beta`) and ``output``, both
    ``(..., d_model)``; ``output`` equals ``norm(x)``.
    """
    if not isinstance(norm, nn.LayerNorm) or len(norm.normalized_shape) != 1:
        raise ValueError("norm must be an nn.LayerNorm over the last axis (d_model,)")
    d_model = norm.normalized_shape[0]
    x = checks.as_tensor(
        x, "x", norm.weight if norm.weight is not None else torch.empty(0),
        f"(..., d_model) = (..., {d_model})", last_dim=d_model,
    )  # fmt: skip
    mean = x.mean(dim=-1, keepdim=True)
    variance = x.var(dim=-1, unbiased=False, keepdim=True)
    standardized = (x - mean) / torch.sqrt(variance + norm.eps)
    output = standardized
    if norm.weight is not None:
        output = output * norm.weight
    if norm.bias is not None:
        output = output + norm.bias
    return {"mean": mean, "variance": variance, "standardized": standardized, "output": output}


@torch.no_grad()
def encoder_block_steps(block: EncoderBlock, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every intermediate of ``block`` on ``x`` ``(batch, seq, d_model)``, all that shape.

    Post-norm (the original): ``x``, ``attention`` = MHA(x), ``x + attention``,
    ``h`` = LN(x + attention), ``ffn`` = FFN(h), ``h + ffn``, ``output`` = LN(h + ffn).
    Pre-norm: ``x``, ``LN(x)``, ``attention`` = MHA(LN(x)), ``h`` = x + attention, ``LN(h)``,
    ``ffn`` = FFN(LN(h)), ``output`` = h + ffn. ``output`` is ``block(x)[0]``: the steps are
    recorded by the block's own forward pass (its ``trace`` argument), not computed again.
    """
    checks.instance_of(block, "block", EncoderBlock)
    steps: dict[str, torch.Tensor] = {}
    block(_check_x(x, block.self_attn.w_q.weight, block.d_model), trace=steps)
    return steps


def seeded_encoder_layer(
    d_model: int, num_heads: int, d_ff: int, norm_first: bool = False, seed: int = 0
) -> nn.TransformerEncoderLayer:
    """A ``torch.nn.TransformerEncoderLayer`` (``batch_first``, no dropout, ReLU) with seeded
    weights, in eval mode.

    torch starts every bias at 0 and every layer norm at :math:`\\gamma = 1, \\beta = 0`,
    which would hide a bias or a scale used wrongly; here they get seeded random values too
    (biases :math:`\\mathcal{N}(0, 0.1^2)`, :math:`\\gamma = 1 + \\mathcal{N}(0, 0.2^2)`,
    :math:`\\beta = \\mathcal{N}(0, 0.2^2)`). Copy it into an :class:`EncoderBlock` with
    ``EncoderBlock.from_torch``. The global torch random state is left untouched.
    """
    for name, value in (("d_model", d_model), ("num_heads", num_heads), ("d_ff", d_ff)):
        checks.positive_int(value, name)
    if d_model % num_heads:
        raise ValueError(
            f"d_model must be divisible by num_heads, got d_model={d_model}, num_heads={num_heads}"
        )
    seed = checks.non_negative_int(seed, "seed")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = nn.TransformerEncoderLayer(
            d_model, num_heads, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first
        )
    with torch.no_grad():
        for name, param in layer.named_parameters():
            if name.startswith("norm") and name.endswith("weight"):
                param.copy_(1.0 + 0.2 * torch.randn(param.shape, generator=generator))
            elif name.startswith("norm"):
                param.copy_(0.2 * torch.randn(param.shape, generator=generator))
            elif name.endswith("bias"):
                param.copy_(0.1 * torch.randn(param.shape, generator=generator))
    return layer.eval()
