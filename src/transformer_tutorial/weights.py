"""Copying pretrained weights into the book's modules, name by name, with every check."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from transformer_tutorial import checks

__all__ = ["copy_parameters"]


@torch.no_grad()
def copy_parameters(
    module: nn.Module,
    names: Mapping[str, str],
    tensors: Mapping[str, np.ndarray | torch.Tensor],
    source: str = "the state dict",
) -> None:
    """Copy ``tensors[names[ours]]`` into each parameter ``ours`` of ``module`` (as float32).

    ``names`` must map every parameter of ``module`` and nothing else; a missing tensor or a
    shape that differs raises ``ValueError`` naming both sides, so nothing loads half-way
    unnoticed.
    """
    checks.instance_of(module, "module", torch.nn.Module)
    checks.instance_of(names, "names", dict)
    checks.instance_of(tensors, "tensors", dict)
    params = dict(module.named_parameters())
    if set(params) != set(names):
        raise ValueError(f"unmapped parameters: {sorted(set(params) ^ set(names))}")
    for ours, theirs in names.items():
        if theirs not in tensors:
            raise ValueError(f"{source} has no {theirs!r} (for our {ours!r})")
        # torch.tensor copies: the gguf reader's arrays are read-only memory maps.
        value = torch.tensor(np.asarray(tensors[theirs]), dtype=torch.float32)
        if value.shape != params[ours].shape:
            raise ValueError(
                f"{theirs} has shape {tuple(value.shape)}, expected {tuple(params[ours].shape)}"
            )
        params[ours].copy_(value)
