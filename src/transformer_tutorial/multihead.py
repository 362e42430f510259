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

:func:`scaled_dot_product_attention` is the one attention core in torch: every head of
:class:`MultiHeadAttention` and :class:`GroupedQueryAttention` goes through it, and
:func:`multihead_steps` is a trace of that same forward pass.

:class:`GroupedQueryAttention` is the variant of today's decoders (LLaMA, SmolLM2): several
query heads share one key/value head, queries and keys are rotated by RoPE, and the keys and
values of earlier tokens can be kept in a KV cache.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transformer_tutorial import checks
from transformer_tutorial.attention import causal_mask
from transformer_tutorial.positional import apply_rotary

__all__ = [
    "scaled_dot_product_attention",
    "MultiHeadAttention",
    "combine_masks",
    "multihead_steps",
    "regroup_heads",
    "max_abs_difference",
    "repeat_kv",
    "GroupedQueryAttention",
]


def _as_bool_mask(mask: object, name: str) -> torch.Tensor:
    try:
        mask = torch.as_tensor(mask)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a boolean array (True = may attend): {err}") from None
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
    ``causal`` needs ``q_len == k_len`` (self-attention): it is
    :func:`~transformer_tutorial.attention.causal_mask`.
    """
    for name, value in (("batch", batch), ("num_heads", num_heads), ("q_len", q_len),
                        ("k_len", k_len)):  # fmt: skip
        checks.positive_int(value, name)
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
        if q_len != k_len:
            raise ValueError(
                f"causal=True is for self-attention (q_len == k_len), got q_len={q_len}, "
                f"k_len={k_len}"
            )
        tri = torch.from_numpy(causal_mask(q_len)).to(device)[None, None]
        allowed = tri if allowed is None else allowed & tri
    return allowed


def _check_heads(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(
            f"{name} must be a float tensor (batch, heads, seq, d_head), got {checks.shape_of(x)}"
        )
    return x


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    allowed: torch.Tensor | None = None,
    need_weights: bool = True,
    trace: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:math:`\\mathrm{head}_i = \\mathrm{softmax}(Q_i K_i^\\top / \\sqrt{d_{head}})\\, V_i`
    for every head at once: the torch form of
    :func:`transformer_tutorial.attention.scaled_dot_product_attention`.

    Shapes: ``q`` ``(batch, heads, q_len, d_head)``, ``k`` and ``v`` ``(batch, heads, k_len,
    d_head)``. ``allowed``: boolean, broadcasting to ``(batch, heads, q_len, k_len)``,
    ``True`` = may attend (:func:`combine_masks`). A query whose every key is masked gets
    zero weights and a zero context vector, never NaN.

    Returns ``(context (batch, heads, q_len, d_head), weights (batch, heads, q_len, k_len))``.
    ``need_weights=False`` hands the same equation to torch's fused kernel
    (``torch.nn.functional.scaled_dot_product_attention``), which never returns (and on CPU
    never stores whole) the weights: ``weights`` is then ``None``. ``trace``: a dict that
    receives ``scores`` (before the mask), ``weights`` and ``head_i`` (the context).
    """
    q, k, v = _check_heads(q, "q"), _check_heads(k, "k"), _check_heads(v, "v")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            "q (batch, heads, q_len, d_head) and k (batch, heads, k_len, d_head) must share "
            "d_head, k and v must share k_len; got q "
            f"{tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    is_mask = isinstance(allowed, torch.Tensor) and allowed.dtype == torch.bool
    if allowed is not None and not is_mask:
        raise ValueError(
            f"allowed must be a boolean tensor (True = may attend), got {checks.shape_of(allowed)}"
        )
    checks.instance_of(need_weights, "need_weights", bool)
    if trace is not None:
        checks.instance_of(trace, "trace", dict)
    any_allowed = None if allowed is None else allowed.any(dim=-1, keepdim=True)
    if not need_weights and trace is None:
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        if any_allowed is not None:  # NaN rows (no allowed key) become 0
            context = context.masked_fill(~any_allowed, 0.0)
        return context, None
    scores = (q / math.sqrt(q.shape[-1])) @ k.transpose(-2, -1)  # (batch, heads, q, k)
    if trace is not None:
        trace["scores"] = scores.clone()
    # No branch on the values (torch.export traces this for the in-browser model); in place,
    # then freed: at 8,192 tokens one (heads, seq, seq) array is 2.4 GB.
    if allowed is not None:
        scores.masked_fill_(~allowed, float("-inf"))
        # Rows with no allowed key: softmax of all -inf would be NaN; give them weight 0.
        scores.masked_fill_(~any_allowed, 0.0)
    weights = torch.softmax(scores, dim=-1)
    del scores
    if any_allowed is not None:  # in place unless autograd keeps the softmax's output
        weights = weights * any_allowed if weights.requires_grad else weights.mul_(any_allowed)
    context = weights @ v  # (batch, heads, q_len, d_head)
    if trace is not None:
        trace["weights"], trace["head_i"] = weights, context
    return context, weights


class MultiHeadAttention(nn.Module):
    """Multi-head (scaled dot-product) attention with projections ``w_q, w_k, w_v, w_o``.

    :math:`\\mathrm{MultiHead}(Q, K, V) = \\mathrm{Concat}(\\mathrm{head}_1, \\dots,
    \\mathrm{head}_h) W^O`, :math:`\\mathrm{head}_i = \\mathrm{softmax}(Q_i K_i^\\top /
    \\sqrt{d_{head}}) V_i`. No dropout: this module is for reading, not for training recipes.
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        d_model = checks.positive_int(d_model, "d_model")
        num_heads = checks.positive_int(num_heads, "num_heads")
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
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must have shape (batch, seq, d_model) = (batch, seq, {self.d_model}), "
                f"got {checks.shape_of(x)}"
            )
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.num_heads, self.d_head).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, heads, seq, d_head) -> (batch, seq, d_model)``: the Concat of the heads."""
        if (
            not isinstance(x, torch.Tensor)
            or x.ndim != 4
            or x.shape[1] != self.num_heads
            or x.shape[-1] != self.d_head
        ):
            raise ValueError(
                f"x must have shape (batch, heads, seq, d_head) = "
                f"(batch, {self.num_heads}, seq, {self.d_head}), got {checks.shape_of(x)}"
            )
        batch, _, seq, _ = x.shape
        return x.transpose(1, 2).reshape(batch, seq, self.d_model)

    def _check_input(self, x: object, name: str, length: str) -> torch.Tensor:
        expected = f"(batch, {length}, d_model) = (batch, {length}, {self.d_model})"
        return checks.as_tensor(x, name, self.w_q.weight, expected, ndim=3, last_dim=self.d_model)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = True,
        trace: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
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
        ``need_weights=False``: torch's fused kernel computes the heads and ``weights`` is
        ``None`` (see :func:`scaled_dot_product_attention`).

        ``trace``: a dict that receives every intermediate, named as in the book (see
        :func:`multihead_steps`).
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

        projected = {"Q": self.w_q(query), "K": self.w_k(key), "V": self.w_v(value)}
        heads = {name: self.split_heads(t) for name, t in projected.items()}
        context, weights = scaled_dot_product_attention(
            heads["Q"], heads["K"], heads["V"], allowed, need_weights, trace
        )  # (batch, heads, q_len, d_head), (batch, heads, q_len, k_len)
        concat = self.merge_heads(context)
        output = self.w_o(concat)
        if trace is not None:
            trace["X"] = query
            for name in ("Q", "K", "V"):
                trace[f"{name} = X W^{name}"] = projected[name]
                trace[f"{name}_i"] = heads[name]
            trace["Concat"], trace["output"] = concat, output
        return output, weights

    @torch.no_grad()
    def load_from_torch(self, module: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a ``torch.nn.MultiheadAttention`` into this module; returns self.

        torch stacks :math:`W^Q, W^K, W^V` as ``in_proj_weight`` ``(3 d_model, d_model)`` (or
        keeps them apart as ``q_proj_weight``...), and :math:`W^O` as ``out_proj``.
        """
        if not isinstance(module, nn.MultiheadAttention):
            name = type(module).__name__
            raise ValueError(f"module: expected a torch.nn.MultiheadAttention, got {name}")
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
            name = type(module).__name__
            raise ValueError(f"module: expected a torch.nn.MultiheadAttention, got {name}")
        new = cls(module.embed_dim, module.num_heads, bias=module.in_proj_bias is not None)
        new = new.to(dtype=module.out_proj.weight.dtype, device=module.out_proj.weight.device)
        return new.load_from_torch(module)


def max_abs_difference(a: object, b: object) -> float:
    """:math:`\\max |a - b|` over all entries of two arrays or tensors of the same shape.

    How the book reports that two computations agree (ours against a reference).
    """
    a = checks.as_float_array(a, "a")
    b = checks.as_float_array(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("a and b must not be empty")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must hold finite numbers (no NaN or inf)")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


@torch.no_grad()
def multihead_steps(mha: MultiHeadAttention, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every intermediate of multi-head self-attention on ``x`` ``(batch, seq, d_model)``.

    In order, with the names used by the book and their shapes:
    ``X`` (batch, seq, d_model); ``Q = X W^Q``, ``K = X W^K``, ``V = X W^V`` (batch, seq,
    d_model); ``Q_i``, ``K_i``, ``V_i`` split into heads (batch, heads, seq, d_head);
    ``scores`` :math:`Q_i K_i^\\top / \\sqrt{d_{head}}` (batch, heads, seq, seq); ``weights``
    their softmax (batch, heads, seq, seq); ``head_i`` = weights · V_i (batch, heads, seq,
    d_head); ``Concat`` (batch, seq, d_model); ``output`` = Concat · W^O (batch, seq, d_model).
    ``output`` and ``weights`` are what ``mha(x)`` returns: the steps are recorded by the
    module's own forward pass (its ``trace`` argument), not computed again.
    """
    checks.instance_of(mha, "mha", MultiHeadAttention)
    trace: dict[str, torch.Tensor] = {}
    mha(mha._check_input(x, "x", "seq"), trace=trace)
    order = ("X", "Q = X W^Q", "K = X W^K", "V = X W^V", "Q_i", "K_i", "V_i", "scores",
             "weights", "head_i", "Concat", "output")  # fmt: skip
    return {name: trace[name] for name in order}


def regroup_heads(mha: MultiHeadAttention, num_heads: int) -> MultiHeadAttention:
    """A copy of ``mha`` with the same weights :math:`W^Q, W^K, W^V, W^O` split into
    ``num_heads`` heads instead.

    With fewer heads, each head's scores are the sum of the scores of the heads it merges
    (over a longer :math:`d_{head}`, so also divided by a larger :math:`\\sqrt{d_{head}}`):
    one softmax then has to serve all their patterns at once.
    """
    checks.instance_of(mha, "mha", MultiHeadAttention)
    new = MultiHeadAttention(mha.d_model, num_heads, bias=mha.w_q.bias is not None)
    new = new.to(dtype=mha.w_q.weight.dtype, device=mha.w_q.weight.device)
    new.load_state_dict(mha.state_dict())
    return new


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """``(batch, kv_heads, seq, d_head) -> (batch, kv_heads * groups, seq, d_head)``.

    Query head :math:`h` uses key/value head :math:`\\lfloor h / \\text{groups} \\rfloor`
    (Hugging Face's ``repeat_kv``, torch's ``scaled_dot_product_attention(enable_gqa=True)``).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have shape (batch, kv_heads, seq, d_head), got {shape}")
    groups = checks.positive_int(groups, "groups")
    return x.repeat_interleave(groups, dim=1)


class GroupedQueryAttention(nn.Module):
    """Causal grouped-query attention with rotary positions and an optional KV cache.

    ``num_heads`` query heads, ``num_kv_heads`` key/value heads (``num_heads`` a multiple of
    it): the ``num_heads / num_kv_heads`` query heads of a group share one key and one value
    head (Ainslie et al., 2023), so the KV cache is that many times smaller. Per query head
    :math:`h`, with :math:`g(h)` its group,

    .. math::

        \\mathrm{head}_h = \\mathrm{softmax}\\!\\left(\\frac{\\mathrm{RoPE}(Q_h)\\,
        \\mathrm{RoPE}(K_{g(h)})^\\top}{\\sqrt{d_{head}}} + M\\right) V_{g(h)}

    with :math:`M` the causal mask; then :math:`\\mathrm{Concat}(\\mathrm{head}_1, \\dots)
    W^O` as in :class:`MultiHeadAttention`. RoPE (:func:`~transformer_tutorial.positional.
    apply_rotary`, base ``rope_base``) rotates queries and keys by their absolute positions.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        num_kv_heads: int,
        rope_base: float = 10000.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        d_model = checks.positive_int(d_model, "d_model")
        num_heads = checks.positive_int(num_heads, "num_heads")
        num_kv_heads = checks.positive_int(num_kv_heads, "num_kv_heads")
        if d_model % num_heads:
            raise ValueError(
                f"d_model must be divisible by num_heads (d_head = d_model / num_heads), "
                f"got d_model={d_model}, num_heads={num_heads}"
            )
        if num_heads % num_kv_heads:
            raise ValueError(
                f"num_heads must be a multiple of num_kv_heads (each key/value head serves a "
                f"group of query heads), got num_heads={num_heads}, num_kv_heads={num_kv_heads}"
            )
        self.d_model = d_model
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.groups = num_heads // num_kv_heads
        self.d_head = d_model // num_heads
        self.rope_base = checks.positive_number(rope_base, "rope_base")
        kv_dim = num_kv_heads * self.d_head
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, kv_dim, bias=bias)
        self.w_v = nn.Linear(d_model, kv_dim, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, num_heads={self.num_heads}, "
            f"num_kv_heads={self.num_kv_heads}, d_head={self.d_head}, rope_base={self.rope_base:g}"
        )

    def _split(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        """``(batch, seq, heads * d_head) -> (batch, heads, seq, d_head)``."""
        batch, seq, _ = x.shape
        return x.view(batch, seq, heads, self.d_head).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Attend causally from ``x`` ``(batch, seq, d_model)`` to itself and the cached past.

        ``past_key_value``: the rotated keys and the values of the ``past`` earlier tokens,
        each ``(batch, kv_heads, past, d_head)``; ``x`` then holds positions ``past ..
        past + seq - 1``. Returns ``(output (batch, seq, d_model), weights (batch, heads, seq,
        past + seq), (keys, values))`` where the last item, each ``(batch, kv_heads, past +
        seq, d_head)``, is the updated cache entry for this layer.
        """
        expected = f"(batch, seq, d_model) = (batch, seq, {self.d_model})"
        x = checks.as_tensor(x, "x", self.w_q.weight, expected, ndim=3, last_dim=self.d_model)
        batch, seq, _ = x.shape
        past = 0
        if past_key_value is not None:
            if not (
                isinstance(past_key_value, tuple | list)
                and len(past_key_value) == 2
                and all(isinstance(t, torch.Tensor) and t.ndim == 4 for t in past_key_value)
            ):
                raise ValueError(
                    "past_key_value must be a pair of tensors (keys, values), each (batch, "
                    "kv_heads, past, d_head)"
                )
            past_k, past_v = past_key_value
            expected = (batch, self.num_kv_heads, past_k.shape[2], self.d_head)
            if past_k.shape != expected or past_v.shape != expected:
                raise ValueError(
                    f"past keys and values must have shape (batch, kv_heads, past, d_head) = "
                    f"{expected}, got {tuple(past_k.shape)} and {tuple(past_v.shape)}"
                )
            past = past_k.shape[2]
        positions = torch.arange(past, past + seq, device=x.device)
        q = apply_rotary(self._split(self.w_q(x), self.num_heads), positions, self.rope_base)
        k = apply_rotary(self._split(self.w_k(x), self.num_kv_heads), positions, self.rope_base)
        v = self._split(self.w_v(x), self.num_kv_heads)
        if past_key_value is not None:
            k = torch.cat((past_k, k), dim=2)
            v = torch.cat((past_v, v), dim=2)

        # Query i sits at position past + i and may attend keys 0 .. past + i.
        allowed = torch.from_numpy(causal_mask(seq, past)).to(x.device)
        context, weights = scaled_dot_product_attention(
            q, repeat_kv(k, self.groups), repeat_kv(v, self.groups), allowed
        )  # (batch, heads, seq, d_head), (batch, heads, seq, past + seq)
        output = self.w_o(context.transpose(1, 2).reshape(batch, seq, self.d_model))
        return output, weights, (k, v)
