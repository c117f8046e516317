"""One small 3D scene seen from many camera poses, by render3d's ray caster: the data of a tiny NeRF.

Three spheres and three boxes (render3d's objects, with its solid textures and one distant light) stand
around the origin; cameras on a sphere of radius `distance` above the horizon look at the origin. Each view
gives, per pixel, the camera position (the ray origin), the unit ray direction and the colour of the first
surface hit; rays that hit nothing show a plain background colour. Shading is Lambertian, so a point looks
the same from every view: a radiance field without view dependence can fit the scene exactly.
render3d's ground plane and back wall are pushed out of sight (its wall distance assumes forward-looking
rays). Simplified: no exposure changes or sensor noise; the scene is drawn from one seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlpractice.data.render3d import N_BOXES, N_SPHERES, SceneParams, draw_params, pixel_rays, shade

BACKGROUND = 1.0  # white, as in the NeRF paper's synthetic scenes
OUT_OF_SIGHT = 1e6  # where the ground and wall go; anything hit beyond BACKGROUND_DEPTH is background
BACKGROUND_DEPTH = 100.0


@dataclass
class Views:
    """V views of H x W pixels: colours (V, H, W, 3) in [0, 1], ray origins and unit directions (V, H, W, 3),
    and camera positions (V, 3)."""

    images: np.ndarray
    origins: np.ndarray
    directions: np.ndarray
    cameras: np.ndarray


def object_scene(seed: int) -> SceneParams:
    """render3d's random textures and colours with the spheres and boxes moved within ~1.3 of the origin."""
    rng = np.random.default_rng(seed)
    params = draw_params(1, rng)
    params.ground[:] = OUT_OF_SIGHT
    params.wall[:] = OUT_OF_SIGHT
    radius = rng.uniform(0.3, 0.55, N_SPHERES)
    params.spheres[0] = np.column_stack([rng.uniform(-0.8, 0.8, (N_SPHERES, 3)), radius])
    half = rng.uniform(0.2, 0.45, (N_BOXES, 3))
    turn = rng.uniform(0, np.pi / 2, N_BOXES)
    params.boxes[0] = np.column_stack([rng.uniform(-0.8, 0.8, (N_BOXES, 3)), half, turn])
    params.light[0] = np.array([0.4, 0.8, -0.45]) / np.linalg.norm([0.4, 0.8, -0.45])
    return params


def look_at(camera: np.ndarray) -> np.ndarray:
    """(3, 3) camera-to-world rotation whose columns are right, up and forward (towards the origin)."""
    forward = -camera / np.linalg.norm(camera)
    right = np.cross([0.0, 1.0, 0.0], forward)
    right /= np.linalg.norm(right)
    return np.column_stack([right, np.cross(forward, right), forward])


def orbit_cameras(n: int, distance: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) camera positions at random azimuths and elevations of 10 to 60 degrees."""
    azimuth = rng.uniform(0, 2 * np.pi, n)
    elevation = np.radians(rng.uniform(10, 60, n))
    return distance * np.column_stack(
        [np.cos(elevation) * np.sin(azimuth), np.sin(elevation), np.cos(elevation) * np.cos(azimuth)]
    )


def render_views(
    cameras: np.ndarray, size: int, seed: int, focal_ratio: float = 1.2, scene: SceneParams | None = None
) -> Views:
    """Each camera's view of the scene of `seed`: square images, `size` pixels a side, focal_ratio * size."""
    scene = object_scene(seed) if scene is None else scene
    camera_rays = pixel_rays(size, size, focal_ratio * size)  # (P, 3), camera frame, z forward
    camera_rays /= np.linalg.norm(camera_rays, axis=1, keepdims=True)
    images, directions = [], []
    for camera in cameras:
        rays = (camera_rays @ look_at(camera).T).astype(np.float32)  # (P, 3) world frame
        colour, depth = shade(scene, camera[None].astype(np.float32), rays)  # (1, P, 3), (1, P)
        images.append(np.where(depth[0, :, None] > BACKGROUND_DEPTH, BACKGROUND, np.clip(colour[0], 0, 1)))
        directions.append(rays)
    shape = (len(cameras), size, size, 3)
    origins = np.broadcast_to(cameras[:, None, None, :], shape)
    return Views(
        np.stack(images).reshape(shape).astype(np.float32),
        np.ascontiguousarray(origins, dtype=np.float32),
        np.stack(directions).reshape(shape),
        cameras.astype(np.float32),
    )
