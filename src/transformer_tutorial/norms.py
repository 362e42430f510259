"""RMSNorm: the layer norm of LLaMA, SmolLM2 and most decoders since 2023.

Layer norm (chapter 6) subtracts each token's mean and divides by its standard deviation, then
scales and shifts. RMSNorm (Zhang & Sennrich, 2019) keeps only the division, by the root mean
square of the features, and the scale:

.. math::

    \\mathrm{RMSNorm}(x) = \\frac{x}{\\sqrt{\\frac{1}{d}\\sum_{i=1}^{d} x_i^2 + \\epsilon}}
    \\odot g

No mean to subtract and no shift to add: cheaper, and it trains as well.
"""

from __future__ import annotations

import torch
from torch import nn

from transformer_tutorial import checks

__all__ = ["RMSNorm"]


class RMSNorm(nn.Module):
    """Root-mean-square normalization over the last axis, ``(..., d_model) -> (..., d_model)``.

    :math:`\\mathrm{RMSNorm}(x) = x / \\sqrt{\\mathrm{mean}(x^2) + \\epsilon} \\odot g` with the
    learned gain :math:`g` in ``self.weight`` (initialized to ones). Computed in float32 (or
    float64 for float64 input) and cast back, as Hugging Face's ``LlamaRMSNorm`` does.
    """

    def __init__(self, d_model: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.d_model = checks.positive_int(d_model, "d_model")
        self.eps = checks.positive_number(eps, "eps")
        self.weight = nn.Parameter(torch.ones(d_model))

    def extra_repr(self) -> str:
        return f"{self.d_model}, eps={self.eps:g}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = f"(..., d_model) = (..., {self.d_model})"
        x = checks.as_tensor(x, "x", self.weight, expected, last_dim=self.d_model, keep_dtype=True)
        dtype = x.dtype
        h = x.to(torch.float64 if dtype == torch.float64 else torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)
