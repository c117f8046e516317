"""The ray caster against geometry worked out by hand, and its stereo pairs against their own disparity."""

from __future__ import annotations

import numpy as np
import pytest

from dlpractice.data import render3d as r3


def test_rays_have_unit_depth_step_and_the_centre_looks_straight_ahead() -> None:
    rays = r3.pixel_rays(4, 6, focal=6.0)
    assert rays.shape == (24, 3) and np.all(rays[:, 2] == 1)
    assert rays[0, 0] < 0 < rays[0, 1]  # the top-left pixel looks left and up
    assert np.allclose(rays.reshape(4, 6, 3)[1:3, 2:4, :2].mean((0, 1)), 0)


def test_sphere_and_box_hits_agree_with_geometry_by_hand() -> None:
    origin = np.zeros((1, 1, 1, 3), np.float32)
    ahead = np.array([[0.0, 0.0, 1.0], [0.2, 0.0, 1.0], [5.0, 0.0, 1.0]], np.float32)
    sphere = np.array([[[0.0, 0.0, 6.0, 1.5]]], np.float32)
    t = r3.hit_spheres(origin, ahead, sphere)[0, 0]
    # the ray (0.2 s, 0, s) meets x^2 + (z - 6)^2 = 1.5^2 at the smaller root of 1.04 s^2 - 12 s + 33.75 = 0
    assert t[0] == pytest.approx(4.5) and t[1] == pytest.approx(min(np.roots([1.04, -12, 33.75])), rel=1e-5)
    assert t[2] == r3.FAR
    box = np.array([[[0.0, 0.0, 5.0, 1.0, 1.0, 0.5, 0.0]]], np.float32)
    assert r3.hit_boxes(origin, ahead, box)[0, 0, 0] == pytest.approx(4.5)
    turned = box.copy()
    turned[..., 6] = (
        np.pi / 4
    )  # the axis ray meets the 0.5-deep face at 45 degrees: 0.5 * sqrt(2) from the centre
    assert r3.hit_boxes(origin, ahead[:1], turned)[0, 0, 0] == pytest.approx(5 - 0.5 * np.sqrt(2), rel=1e-5)


def test_ground_depth_follows_camera_height_and_every_ray_stops_at_the_wall() -> None:
    scenes = r3.render(6, 32, 32, seed=3)
    assert scenes.left.shape == (6, 3, 32, 32) and scenes.depth.shape == (6, 32, 32)
    assert scenes.left.min() >= 0 and scenes.left.max() <= 1
    params = r3.draw_params(6, np.random.default_rng(3))
    assert np.all(scenes.depth <= params.wall[:, None, None] + 1e-4)
    bottom_ray = r3.pixel_rays(32, 32, 32.0)[-16]  # bottom row, near the middle
    ground_depth = params.ground / -bottom_ray[1]
    looks_at_ground = np.isclose(scenes.depth[:, -1, 16], ground_depth, rtol=1e-4)
    assert looks_at_ground.any(), "in some scene the bottom row should see the ground at h / |y|"
    assert np.all(scenes.depth[:, -1, 16] <= ground_depth + 1e-4)  # nothing is behind the ground


def test_stereo_disparity_points_at_the_same_surface_in_the_right_view() -> None:
    scenes = r3.render(4, 48, 96, seed=1, stereo=True, max_disparity=20)
    assert scenes.disparity.max() <= 20 + 1e-3 and scenes.disparity.min() > 0
    params = r3.draw_params(4, np.random.default_rng(1))
    baseline = scenes.disparity[:, 0, 0] * scenes.depth[:, 0, 0] / 96
    rays = r3.pixel_rays(48, 96, 96.0)
    _, right_depth = r3.shade(params, np.stack([baseline, 0 * baseline, 0 * baseline], -1), rays)
    right_depth = right_depth.reshape(4, 48, 96)
    rows, cols = np.mgrid[0:48, 0:96]
    target = np.rint(cols - scenes.disparity).astype(int)  # where each left pixel lands in the right image
    inside = target >= 0
    same = np.isclose(
        right_depth[np.arange(4)[:, None, None], rows, np.clip(target, 0, None)], scenes.depth, rtol=0.05
    )
    # occluded pixels and object edges (rounding) disagree; the rest sees the same surface at the same depth
    assert same[inside].mean() > 0.85


def test_rendering_is_seeded_and_chunking_changes_nothing_but_the_seeds() -> None:
    a = r3.render_batched(5, 16, 16, seed=2, chunk=2)
    b = r3.render_batched(5, 16, 16, seed=2, chunk=2)
    assert np.array_equal(a.left, b.left) and a.right is None and a.left.shape == (5, 3, 16, 16)
    assert not np.array_equal(a.left, r3.render_batched(5, 16, 16, seed=3, chunk=2).left)
