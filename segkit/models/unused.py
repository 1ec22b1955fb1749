"""Remove the submodules whose parameters no output of a network depends on.

Libraries keep layers a segmentation network never uses (a classifier's head conv, encoder stages past the
depth a decoder asks for, a ViT's final norm). Under DDP a parameter without a gradient is an error (unless
``find_unused_parameters``, which costs a graph walk every step), and it inflates parameter counts. Which
parameters are used is read from the autograd graph of one forward, so no per-encoder table is needed.
"""

from __future__ import annotations

import torch
from torch import nn


def reached_parameters(output: torch.Tensor) -> set[int]:
    """ids of the leaf tensors (parameters) the autograd graph of ``output`` reaches."""
    found: set[int] = set()
    visited: set[object] = set()
    stack = [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in visited:
            continue
        visited.add(node)
        if hasattr(node, "variable"):  # AccumulateGrad: a leaf tensor
            found.add(id(node.variable))
        stack.extend(next_node for next_node, _ in node.next_functions)
    return found


def prune_unused(model: nn.Module, size: tuple[int, int]) -> list[str]:
    """Replace every largest submodule whose parameters are all unused by ``nn.Identity``; their names.

    One eval-mode forward of a zero image of ``size`` (so BatchNorm statistics are untouched) decides.
    """
    params = list(model.parameters())
    was_training, flags = model.training, [p.requires_grad for p in params]
    model.eval()
    try:
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            out = model(torch.zeros(1, 3, *size, device=params[0].device, dtype=params[0].dtype))
        used = reached_parameters(out)
    finally:
        model.train(was_training)
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
    pruned: list[str] = []
    for name, module in list(model.named_modules()):
        if not name or any(name.startswith(f"{done}.") for done in pruned):
            continue
        own = list(module.parameters())
        if own and not any(id(p) in used for p in own):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, nn.Identity())
            pruned.append(name)
    return pruned
