"""Queries, keys and values: three learned linear projections of the same token vectors.

Attention does not compare the embeddings :math:`X` directly. Each token's vector is mapped
three times, by three learned matrices,

.. math::

    Q = X W^Q, \\qquad K = X W^K, \\qquad V = X W^V,

so that what a token *looks for* (its query), what it *offers* to be found by (its key) and
what it *passes on* when attended to (its value) can differ. :class:`QKVProjection` holds the
three matrices; :meth:`QKVProjection.random` draws them the way a model is initialised before
training (the book's examples use such seeded random weights, not trained ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transformer_tutorial import checks

__all__ = ["QKVProjection", "project"]


def project(x: np.ndarray, weight: np.ndarray, name: str = "x") -> np.ndarray:
    """One linear projection without bias, :math:`Y = X W`.

    ``x``: ``(..., seq, d_in)``; ``weight``: ``(d_in, d_out)``; returns ``(..., seq, d_out)``.
    ``name`` names ``x`` in error messages.
    """
    name = checks.text(name, "name")
    weight = checks.float_array(weight, "weight", "(d_in, d_out)", ndim=2)
    x = checks.float_array(x, name, f"(..., seq, d_in={weight.shape[0]})", min_ndim=2)
    if x.shape[-1] != weight.shape[0]:
        raise ValueError(
            f"{name} must have shape (..., seq, d_model={weight.shape[0]}), got {x.shape}"
        )
    return x @ weight


@dataclass(frozen=True)
class QKVProjection:
    """The three projections of one attention: :math:`Q = XW^Q,\\ K = XW^K,\\ V = XW^V`.

    ``w_q`` and ``w_k``: ``(d_model, d_k)``; ``w_v``: ``(d_model, d_v)``. Calling the
    projection on ``x`` of shape ``(..., seq, d_model)`` returns ``(q, k, v)`` with shapes
    ``(..., seq, d_k)``, ``(..., seq, d_k)`` and ``(..., seq, d_v)``.

    Note the orientation: ``torch.nn.Linear`` stores the transpose, ``weight`` of shape
    ``(d_out, d_in)``, and computes :math:`x W^\\top`; so ``w_q`` is ``linear.weight.T``.
    """

    w_q: np.ndarray
    w_k: np.ndarray
    w_v: np.ndarray

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("w_q", "w_k", "w_v"):
            expected = "(d_model, d_v)" if name == "w_v" else "(d_model, d_k)"
            w = checks.float_array(getattr(self, name), name, expected, ndim=2)
            arrays[name] = w.copy()
            arrays[name].setflags(write=False)
        if arrays["w_q"].shape != arrays["w_k"].shape:
            raise ValueError(
                "w_q and w_k must both have shape (d_model, d_k): queries and keys are "
                f"compared by dot product; got {arrays['w_q'].shape} and {arrays['w_k'].shape}"
            )
        if arrays["w_v"].shape[0] != arrays["w_q"].shape[0]:
            raise ValueError(
                f"w_v must have shape (d_model={arrays['w_q'].shape[0]}, d_v), "
                f"got {arrays['w_v'].shape}"
            )
        for name, w in arrays.items():
            object.__setattr__(self, name, w)

    @classmethod
    def random(
        cls, d_model: int, d_k: int, d_v: int | None = None, seed: int = 0
    ) -> QKVProjection:
        """Seeded random weights, entries drawn from :math:`\\mathcal{N}(0, 1/d_{model})`.

        That variance keeps the size of the vectors: if the entries of ``x`` have variance 1
        (as after a layer norm), so do the entries of ``q``, ``k`` and ``v``. ``d_v`` defaults
        to ``d_k``.
        """
        d_model = checks.positive_int(d_model, "d_model")
        d_k = checks.positive_int(d_k, "d_k")
        d_v = d_k if d_v is None else checks.positive_int(d_v, "d_v")
        rng = np.random.default_rng(checks.non_negative_int(seed, "seed"))
        std = 1.0 / np.sqrt(d_model)
        return cls(
            rng.normal(0.0, std, (d_model, d_k)),
            rng.normal(0.0, std, (d_model, d_k)),
            rng.normal(0.0, std, (d_model, d_v)),
        )

    @property
    def d_model(self) -> int:
        return self.w_q.shape[0]

    @property
    def d_k(self) -> int:
        return self.w_q.shape[1]

    @property
    def d_v(self) -> int:
        return self.w_v.shape[1]

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:math:`(Q, K, V) = (XW^Q, XW^K, XW^V)` for ``x`` of shape ``(..., seq, d_model)``."""
        return project(x, self.w_q), project(x, self.w_k), project(x, self.w_v)
