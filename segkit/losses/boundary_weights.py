"""Boundary weight maps from ground-truth masks, as batched tensor ops on the masks' device.

A pixel is a *boundary pixel* when it is valid and one of its 4-neighbours is valid with a different label,
so both sides of a class edge are marked and ignore pixels never create edges. The weight map is
``w = 1 + w_b * exp(-d^2 / (2 sigma^2))`` with ``d`` the Euclidean distance to the nearest boundary pixel.

The distance is an exact squared Euclidean distance transform *truncated* at a radius ``R``: separable,
first the vertical distance to the nearest boundary pixel in the same column (clamped at ``R + 1``), then
``d^2 = min over |dx| <= R of g(x + dx)^2 + dx^2``. Every boundary pixel within ``R`` of a pixel lies in that
(2R+1)^2 window, so ``d`` is exact whenever ``d <= R``; beyond ``R`` the weight is taken to be exactly 1.
``R`` is chosen so the dropped term ``w_b * exp(-R^2 / (2 sigma^2))`` is below ``TRUNCATION_TOLERANCE * w_b``.
On the CPU the ~70 small ops run on one intra-op thread (``serial_on_cpu`` explains why).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from segkit.losses.base import serial_on_cpu

TRUNCATION_TOLERANCE = 1e-3


def truncation_radius(sigma: float, tolerance: float = TRUNCATION_TOLERANCE) -> int:
    """Smallest integer R with ``exp(-R^2 / (2 sigma^2)) <= tolerance`` (about 3.7 sigma for 1e-3)."""
    return math.ceil(sigma * math.sqrt(2.0 * math.log(1.0 / tolerance)))


def boundary_mask(target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` bool: valid pixels with a valid 4-neighbour of another class (labels at invalid pixels
    are never read as edges, so a target whose ignored pixels were overwritten with a class works too)."""
    edge = torch.zeros_like(valid)
    for dim in (1, 2):
        size = target.shape[dim] - 1
        first, second = target.narrow(dim, 0, size), target.narrow(dim, 1, size)
        differs = (first != second).logical_and_(valid.narrow(dim, 0, size))
        differs.logical_and_(valid.narrow(dim, 1, size))
        edge.narrow(dim, 0, size).logical_or_(differs)
        edge.narrow(dim, 1, size).logical_or_(differs)
    return edge


def truncated_squared_distance(boundary: torch.Tensor, radius: int) -> torch.Tensor:
    """``(B, H, W)`` squared distance to the nearest True pixel, exact where it is ``<= radius^2``.

    Where the true distance exceeds ``radius`` the result is some value ``> radius^2``, which callers treat
    as "far". Integer maps (int16 when they fit) and preallocated buffers: on the CPU, allocating a fresh
    2-D map per shift costs more than the arithmetic.
    """
    far = radius + 1
    dtype = torch.int16 if 2 * far * far <= torch.iinfo(torch.int16).max else torch.int32
    height, width = boundary.shape[-2:]
    # Pass 1: g = vertical distance to the nearest boundary pixel in the same column, at most `far`.
    # Min-plus steps of 1, 2, 4, ... reach every distance up to 2^k - 1 exactly (sums of distinct powers),
    # and every value is the length of some vertical path, so none falls below the true distance.
    steps = [2**k for k in range(radius.bit_length())]
    shape = (boundary.shape[0], height + 2 * steps[-1], width)
    padded = torch.full(shape, far, dtype=dtype, device=boundary.device)
    column = padded[:, steps[-1]:steps[-1] + height]
    column.masked_fill_(boundary, 0)
    scratch = torch.empty(boundary.shape, dtype=dtype, device=boundary.device)
    for step in steps:
        above, below = steps[-1] - step, steps[-1] + step
        torch.minimum(padded[:, above:above + height], padded[:, below:below + height], out=scratch)
        torch.minimum(column, scratch.add_(step), out=column)
    # Pass 2: d^2 = min over |dx| <= radius of g(x + dx)^2 + dx^2.
    result = column * column
    padded = F.pad(result, (radius, radius), value=far * far)
    for dx in range(1, radius + 1):
        left = padded[..., radius - dx:radius - dx + width]
        right = padded[..., radius + dx:radius + dx + width]
        torch.minimum(left, right, out=scratch)
        torch.minimum(result, scratch.add_(dx * dx), out=result)
    return result


@torch.no_grad()
def boundary_weights(target: torch.Tensor, valid: torch.Tensor, boundary_weight: float,
                     sigma: float) -> torch.Tensor:
    """``(B, H, W)`` float32 weights: ``1 + w_b exp(-d^2 / 2 sigma^2)`` on valid pixels, 0 on ignored ones."""
    radius = truncation_radius(sigma)
    with serial_on_cpu(target.device):
        squared = truncated_squared_distance(boundary_mask(target, valid), radius)
        # Squared distances are small integers, so one lookup replaces a chain of float ops on the map;
        # the table is also where the truncation lives: entries beyond radius^2 are exactly 1.
        d2 = torch.arange((radius + 1) ** 2 + 1, dtype=torch.float32, device=target.device)
        table = torch.where(d2 <= radius**2, 1.0 + boundary_weight * torch.exp(d2 * (-0.5 / sigma**2)), 1.0)
        return table.index_select(0, squared.flatten().int()).view_as(squared).mul_(valid)
