"""Multi-head attention, in torch.

"Attention Is All You Need" (section 3.2.2) runs :math:`h` attentions side by side, each on its
own learned projection of the queries, keys and values, and mixes their results:

.. math::

    \\mathrm{MultiHead}(Q, K, V)
    = \\mathrm{Concat}(\\mathrm{head}_1, \\dots, \\mathrm{head}_h)\\, W^O,
    \\qquad \\mathrm{head}_i = \\mathrm{Attention}(Q W_i^Q, K W_i^K, V W_i^V)

with :math:`d_{head} = d_{model} / h`. Here the :math:`h` projections :math:`W_i^Q` are stored
as one ``(d_model, d_model)`` matrix (``w_q``) whose output is split into heads by
:meth:`~MultiHeadAttention.split_heads`; the same for keys and values. That is exactly what
``torch.nn.MultiheadAttention`` does, so its weights can be copied in
(:meth:`MultiHeadAttention.load_from_torch`).

Masks follow the book's convention everywhere: boolean, ``True`` means "may attend" (as in
:mod:`transformer_tutorial.attention`). torch's ``nn.MultiheadAttention`` uses the opposite
convention for boolean masks (``True`` means "blocked"): to pass one of its masks here, use
``~mask``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MultiHeadAttention", "combine_masks"]


def _as_tensor(x: object, name: str, like: torch.Tensor) -> torch.Tensor:
    """``x`` as a floating tensor with the dtype and device of ``like``."""
    if isinstance(x, torch.Tensor):
        if not torch.is_floating_point(x):
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        return x
    try:
        return torch.as_tensor(x, dtype=like.dtype, device=like.device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be an array of numbers: {err}") from None


def _as_bool_mask(mask: object, name: str) -> torch.Tensor:
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise ValueError(
            f"{name} must be boolean (True = may attend), got dtype {mask.dtype}; "
            "torch's boolean masks mean the opposite (True = blocked): pass ~mask"
        )
    return mask


def combine_masks(
    batch: int,
    num_heads: int,
    q_len: int,
    k_len: int,
    mask: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
    causal: bool = False,
    device: torch.device | None = None,
) -> torch.Tensor | None:
    """One boolean "may attend" mask that broadcasts to ``(batch, heads, q_len, k_len)``.

    ``mask``: ``(q_len, k_len)``, ``(batch, q_len, k_len)`` or ``(batch, heads, q_len, k_len)``;
    ``key_padding_mask``: ``(batch, k_len)`` (or ``(batch, 1, k_len)``, what
    :func:`transformer_tutorial.attention.padding_mask` returns), ``True`` for a real token;
    ``causal``: query :math:`i` may attend key :math:`j` only if :math:`j \\le i` (top-left
    aligned, like ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)``).
    All three are combined with a logical AND. Returns ``None`` when nothing is masked.
    """
    allowed: torch.Tensor | None = None
    if mask is not None:
        mask = _as_bool_mask(mask, "mask")
        expected = (
            f"(q_len, k_len) = ({q_len}, {k_len}), (batch, q_len, k_len) = "
            f"({batch}, {q_len}, {k_len}) or (batch, heads, q_len, k_len) = "
            f"({batch}, {num_heads}, {q_len}, {k_len})"
        )
        if mask.ndim == 2 and tuple(mask.shape) == (q_len, k_len):
            allowed = mask[None, None]
        elif mask.ndim == 3 and tuple(mask.shape) == (batch, q_len, k_len):
            allowed = mask[:, None]
        elif mask.ndim == 4 and tuple(mask.shape) == (batch, num_heads, q_len, k_len):
            allowed = mask
        else:
            raise ValueError(f"mask must have shape {expected}, got {tuple(mask.shape)}")
        allowed = allowed.to(device)
    if key_padding_mask is not None:
        kpm = _as_bool_mask(key_padding_mask, "key_padding_mask")
        if kpm.ndim == 3 and kpm.shape[1] == 1:
            kpm = kpm[:, 0]
        if tuple(kpm.shape) != (batch, k_len):
            raise ValueError(
                f"key_padding_mask must have shape (batch, k_len) = ({batch}, {k_len}), "
                f"True for a real token, got {tuple(kpm.shape)}"
            )
        kpm = kpm[:, None, None, :].to(device)
        allowed = kpm if allowed is None else allowed & kpm
    if causal:
        tri = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril()[None, None]
        allowed = tri if allowed is None else allowed & tri
    return allowed


class MultiHeadAttention(nn.Module):
    """Multi-head (scaled dot-product) attention with projections ``w_q, w_k, w_v, w_o``.

    :math:`\\mathrm{MultiHead}(Q, K, V) = \\mathrm{Concat}(\\mathrm{head}_1, \\dots,
    \\mathrm{head}_h) W^O`, :math:`\\mathrm{head}_i = \\mathrm{softmax}(Q_i K_i^\\top /
    \\sqrt{d_{head}}) V_i`. No dropout: this module is for reading, not for training recipes.
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("num_heads", num_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if d_model % num_heads != 0:
            raise ValueError(
                f"d_model must be divisible by num_heads (d_head = d_model / num_heads), "
                f"got d_model={d_model}, num_heads={num_heads}"
            )
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, num_heads={self.num_heads}, d_head={self.d_head}"

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, d_model) -> (batch, heads, seq, d_head)``.

        Feature ``h * d_head + j`` of ``x`` becomes feature ``j`` of head ``h``.
        """
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must have shape (batch, seq, d_model) = (batch, seq, {self.d_model}), "
                f"got {tuple(x.shape)}"
            )
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.num_heads, self.d_head).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, heads, seq, d_head) -> (batch, seq, d_model)``: the Concat of the heads."""
        if x.ndim != 4 or x.shape[1] != self.num_heads or x.shape[-1] != self.d_head:
            raise ValueError(
                f"x must have shape (batch, heads, seq, d_head) = "
                f"(batch, {self.num_heads}, seq, {self.d_head}), got {tuple(x.shape)}"
            )
        batch, _, seq, _ = x.shape
        return x.transpose(1, 2).reshape(batch, seq, self.d_model)

    def _check_input(self, x: object, name: str, length: str) -> torch.Tensor:
        x = _as_tensor(x, name, self.w_q.weight)
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"{name} must have shape (batch, {length}, d_model) = "
                f"(batch, {length}, {self.d_model}), got {tuple(x.shape)}"
            )
        if 0 in x.shape:
            raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
        return x

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``query`` to ``key``/``value`` (self-attention when they are omitted).

        Shapes: ``query`` ``(batch, q_len, d_model)``; ``key`` and ``value``
        ``(batch, k_len, d_model)`` (cross-attention: another sequence, e.g. the encoder
        output). Masks (boolean, ``True`` = may attend; see :func:`combine_masks`):
        ``mask`` ``(q_len, k_len)`` / ``(batch, q_len, k_len)`` / ``(batch, heads, q_len, k_len)``;
        ``key_padding_mask`` ``(batch, k_len)``, ``True`` for a real token (the opposite of
        torch's ``key_padding_mask``); ``causal=True`` adds the causal mask.

        Returns ``(output, weights)``: ``(batch, q_len, d_model)`` and the per-head weights
        ``(batch, heads, q_len, k_len)``. A query whose every key is masked gets zero weights
        and a zero context vector (its output is then just the bias of ``w_o``), never NaN.
        """
        query = self._check_input(query, "query", "q_len")
        key = query if key is None else self._check_input(key, "key", "k_len")
        value = key if value is None else self._check_input(value, "value", "k_len")
        if key.shape[0] != query.shape[0] or value.shape[:2] != key.shape[:2]:
            raise ValueError(
                "query (batch, q_len, d_model), key and value (batch, k_len, d_model) must "
                f"share batch, and key and value k_len; got query {tuple(query.shape)}, "
                f"key {tuple(key.shape)}, value {tuple(value.shape)}"
            )
        batch, q_len, _ = query.shape
        k_len = key.shape[1]
        allowed = combine_masks(
            batch, self.num_heads, q_len, k_len, mask, key_padding_mask, causal, query.device
        )

        q = self.split_heads(self.w_q(query))  # (batch, heads, q_len, d_head)
        k = self.split_heads(self.w_k(key))  # (batch, heads, k_len, d_head)
        v = self.split_heads(self.w_v(value))  # (batch, heads, k_len, d_head)

        scores = (q / math.sqrt(self.d_head)) @ k.transpose(-2, -1)  # (batch, heads, q, k)
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))
            # Rows with no allowed key: softmax of all -inf would be NaN; give them weight 0.
            any_allowed = allowed.any(dim=-1, keepdim=True)
            scores = scores.masked_fill(~any_allowed, 0.0)
            weights = torch.softmax(scores, dim=-1) * any_allowed
        else:
            weights = torch.softmax(scores, dim=-1)
        context = weights @ v  # (batch, heads, q_len, d_head)
        return self.w_o(self.merge_heads(context)), weights

    @torch.no_grad()
    def load_from_torch(self, module: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a ``torch.nn.MultiheadAttention`` into this module; returns self.

        torch stacks :math:`W^Q, W^K, W^V` as ``in_proj_weight`` ``(3 d_model, d_model)`` (or
        keeps them apart as ``q_proj_weight``...), and :math:`W^O` as ``out_proj``.
        """
        if not isinstance(module, nn.MultiheadAttention):
            raise ValueError(f"expected a torch.nn.MultiheadAttention, got {type(module).__name__}")
        if module.embed_dim != self.d_model or module.num_heads != self.num_heads:
            raise ValueError(
                f"expected embed_dim={self.d_model}, num_heads={self.num_heads}; "
                f"got embed_dim={module.embed_dim}, num_heads={module.num_heads}"
            )
        if module.kdim != self.d_model or module.vdim != self.d_model:
            raise ValueError(f"expected kdim = vdim = d_model = {self.d_model}")
        if module.bias_k is not None or module.add_zero_attn:
            raise ValueError("add_bias_kv and add_zero_attn are not supported")
        has_bias = module.in_proj_bias is not None
        if has_bias != (self.w_q.bias is not None):
            raise ValueError(f"bias mismatch: torch module has bias={has_bias}")
        if module.in_proj_weight is not None:
            wq, wk, wv = module.in_proj_weight.chunk(3, dim=0)
        else:
            wq, wk, wv = module.q_proj_weight, module.k_proj_weight, module.v_proj_weight
        for lin, w in ((self.w_q, wq), (self.w_k, wk), (self.w_v, wv)):
            lin.weight.copy_(w)
        if has_bias:
            for lin, b in zip(
                (self.w_q, self.w_k, self.w_v), module.in_proj_bias.chunk(3), strict=True
            ):
                lin.bias.copy_(b)
        self.w_o.weight.copy_(module.out_proj.weight)
        if self.w_o.bias is not None:
            self.w_o.bias.copy_(module.out_proj.bias)
        return self

    @classmethod
    def from_torch(cls, module: nn.MultiheadAttention) -> MultiHeadAttention:
        """A new :class:`MultiHeadAttention` with the configuration and weights of ``module``."""
        if not isinstance(module, nn.MultiheadAttention):
            raise ValueError(f"expected a torch.nn.MultiheadAttention, got {type(module).__name__}")
        new = cls(module.embed_dim, module.num_heads, bias=module.in_proj_bias is not None)
        new = new.to(dtype=module.out_proj.weight.dtype, device=module.out_proj.weight.device)
        return new.load_from_torch(module)
