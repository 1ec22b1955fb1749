import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segkit.losses.base import serial_on_cpu
from segkit.losses.boundary_weights import (
    TRUNCATION_TOLERANCE,
    boundary_mask,
    boundary_weights,
    truncated_squared_distance,
    truncation_radius,
)


def blob_target(batch: int, classes: int, size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    low = torch.randn(batch, classes, size // 8, size // 8, generator=generator)
    target = F.interpolate(low, size=(size, size), mode="bilinear").argmax(1)
    holes = torch.randn(batch, 1, size // 16, size // 16, generator=generator)
    target[F.interpolate(holes, size=(size, size), mode="bilinear")[:, 0] > 1.0] = 255
    return target


def brute_force_squared_distance(boundary: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(boundary)
    grid_y, grid_x = np.indices(boundary.shape)
    if len(ys) == 0:
        return np.full(boundary.shape, np.inf)
    d2 = (grid_y[..., None] - ys) ** 2 + (grid_x[..., None] - xs) ** 2
    return d2.min(axis=-1).astype(float)


def test_boundary_mask_marks_both_sides_and_ignores_ignore_pixels():
    target = torch.tensor([[[0, 0, 0, 1],
                            [0, 0, 0, 1],
                            [0, 255, 0, 1]]])
    valid = target != 255
    expected = torch.tensor([[[0, 0, 1, 1],
                              [0, 0, 1, 1],
                              [0, 0, 1, 1]]], dtype=torch.bool)
    assert torch.equal(boundary_mask(target, valid), expected)
    # labels under ignored pixels are never read: overwriting them with another class changes nothing
    assert torch.equal(boundary_mask(target.masked_fill(~valid, 1), valid), expected)


def test_truncated_distance_matches_brute_force_within_radius_and_exceeds_it_beyond():
    target = blob_target(2, 4, 24, seed=0)
    boundary = boundary_mask(target, target != 255)
    radius = 4
    result = truncated_squared_distance(boundary, radius)
    for image in range(2):
        exact = brute_force_squared_distance(boundary[image].numpy())
        got = result[image].numpy()
        near = exact <= radius**2
        assert near.any() and (~near).any()
        np.testing.assert_array_equal(got[near], exact[near])
        assert (got[~near] > radius**2).all()


@pytest.mark.parametrize("radius", [1, 5, 12, 19])
def test_truncated_distance_matches_scipy_edt(radius):
    ndimage = pytest.importorskip("scipy.ndimage")
    target = blob_target(3, 5, 96, seed=radius)
    boundary = boundary_mask(target, target != 255)
    result = truncated_squared_distance(boundary, radius).numpy()
    for image in range(3):
        exact = np.rint(ndimage.distance_transform_edt(~boundary[image].numpy()) ** 2)
        near = exact <= radius**2
        np.testing.assert_array_equal(result[image][near], exact[near])
        assert (result[image][~near] > radius**2).all()


def test_batch_images_do_not_see_each_others_boundaries():
    target = blob_target(3, 4, 32, seed=3)
    target[1] = 0  # no boundary at all in the middle image
    valid = target != 255
    together = boundary_weights(target, valid, 2.0, 3.0)
    for image in range(3):
        alone = boundary_weights(target[image:image + 1], valid[image:image + 1], 2.0, 3.0)
        assert torch.equal(together[image:image + 1], alone)
    assert torch.equal(together[1], valid[1].float())


def test_weights_are_one_plus_wb_on_boundaries_one_far_away_and_zero_on_ignore():
    target = torch.zeros(1, 40, 40, dtype=torch.long)
    target[:, :, 20:] = 1
    target[:, :3, :3] = 255
    valid = target != 255
    sigma, w_b = 2.0, 3.0
    weights = boundary_weights(target, valid, w_b, sigma)
    assert torch.allclose(weights[0, 10:, 19:21], torch.tensor(1.0 + w_b))
    assert torch.equal(weights[0, 10:, :5], torch.ones(30, 5))
    assert torch.equal(weights[0, :3, :3], torch.zeros(3, 3))
    # three columns left of the edge pixel at x=19: d = 3
    assert torch.allclose(weights[0, 10, 16], torch.tensor(1.0 + w_b * math.exp(-9 / (2 * sigma**2))))


def test_truncation_radius_is_the_smallest_within_tolerance():
    for sigma in (0.5, 1.0, 3.0, 7.5):
        radius = truncation_radius(sigma)
        assert math.exp(-radius**2 / (2 * sigma**2)) <= TRUNCATION_TOLERANCE
        assert math.exp(-(radius - 1) ** 2 / (2 * sigma**2)) > TRUNCATION_TOLERANCE


def test_serial_section_restores_the_thread_count_even_on_errors():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), serial_on_cpu(torch.device("cpu")):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
