"""Rendered 3D scenes with true depth and rectified stereo pairs, by NumPy ray casting (lab v7).

A scene is a textured ground plane, a back wall and a few spheres and boxes (turned about the vertical)
standing on the ground, lit by one distant light. A pinhole camera at the origin looks down +z; every pixel's
ray has z-component 1, so the distance along it to the first surface hit is the pixel's depth Z. The right
camera of a rectified pair is the same camera moved `baseline` along x, so a left pixel at depth Z is seen
`f * baseline / Z` pixels further left in the right image: that is its true disparity (occluded pixels
included). Textures are solid (a function of the 3D point), so both views see the same surface pattern; some
objects are almost plain, as real walls are. Each view gets its own exposure and sensor noise. Everything is
vectorised over scenes and pixels (1,500 stereo pairs of 64 x 128 took 28 s on one busy core) and seeded.
Simplified: no shadows, reflections or anti-aliasing; boxes turn about the vertical axis only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_SPHERES, N_BOXES, N_WAVES = 3, 3, 6
N_OBJECTS = 2 + N_SPHERES + N_BOXES  # ground, wall, spheres, boxes
FAR = np.float32(1e9)  # "no hit"


@dataclass
class RenderedScenes:
    """Left images (N, 3, H, W) in [0, 1], depth (N, H, W) metres and, for a stereo pair, the right images
    and the left view's true disparity (N, H, W) in pixels."""

    left: np.ndarray
    depth: np.ndarray
    right: np.ndarray | None = None
    disparity: np.ndarray | None = None


@dataclass
class SceneParams:
    """Every random choice of a batch of N scenes (one row each), drawn once so both views agree."""

    ground: np.ndarray  # (N,) camera height above the ground plane y = -ground
    wall: np.ndarray  # (N,) depth of the back wall z = wall
    spheres: np.ndarray  # (N, S, 4) centre x, y, z and radius
    boxes: np.ndarray  # (N, K, 7) centre x, y, z, half-sizes x, y, z, turn about y (radians)
    colours: np.ndarray  # (N, O, 2, 3) two colours per object, mixed by its texture
    waves: np.ndarray  # (N, O, W, 4) wave vector (3) and phase of each texture wave
    contrast: np.ndarray  # (N, O) texture sharpness; near 0 is a plain surface
    light: np.ndarray  # (N, 3) unit direction towards the light


def draw_params(n: int, rng: np.random.Generator) -> SceneParams:
    ground = rng.uniform(1.0, 2.0, n)
    wall = rng.uniform(8.0, 20.0, n)
    radius = rng.uniform(0.3, 1.3, (n, N_SPHERES))
    sphere_z = 2.5 + rng.uniform(0, 1, (n, N_SPHERES)) * (wall[:, None] - 4)
    sphere_x = rng.uniform(-0.6, 0.6, (n, N_SPHERES)) * sphere_z  # inside a 60-degree field of view
    spheres = np.stack([sphere_x, radius - ground[:, None], sphere_z, radius], axis=-1)
    half = rng.uniform(0.25, 1.2, (n, N_BOXES, 3))
    box_z = 2.5 + rng.uniform(0, 1, (n, N_BOXES)) * (wall[:, None] - 4)
    box_x = rng.uniform(-0.6, 0.6, (n, N_BOXES)) * box_z
    turn = rng.uniform(0, np.pi / 2, (n, N_BOXES))
    boxes = np.stack([box_x, half[..., 1] - ground[:, None], box_z, *half.transpose(2, 0, 1), turn], axis=-1)
    colours = rng.uniform(0.05, 0.95, (n, N_OBJECTS, 2, 3))
    direction = rng.normal(size=(n, N_OBJECTS, N_WAVES, 3))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    frequency = np.exp(rng.uniform(np.log(1.5), np.log(25.0), (n, N_OBJECTS, N_WAVES, 1)))  # radians/metre
    phase = rng.uniform(0, 2 * np.pi, (n, N_OBJECTS, N_WAVES, 1))
    contrast = np.where(rng.uniform(size=(n, N_OBJECTS)) < 0.15, 0.05, rng.uniform(0.5, 4.0, (n, N_OBJECTS)))
    light = np.stack([rng.uniform(-0.6, 0.6, n), rng.uniform(0.4, 1.0, n), -rng.uniform(0.3, 1.0, n)], -1)
    light /= np.linalg.norm(light, axis=-1, keepdims=True)
    waves = np.concatenate([direction * frequency, phase], -1)
    drawn = (ground, wall, spheres, boxes, colours, waves, contrast, light)
    return SceneParams(*(value.astype(np.float32) for value in drawn))


def pixel_rays(height: int, width: int, focal: float) -> np.ndarray:
    """(H*W, 3) ray directions through pixel centres, z-component 1 (so distance along a ray is depth)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    x = (u + 0.5 - width / 2) / focal
    y = -(v + 0.5 - height / 2) / focal  # image rows go down, y goes up
    return np.stack([x, y, np.ones_like(x)], axis=-1).reshape(-1, 3)


def hit_spheres(origin: np.ndarray, rays: np.ndarray, spheres: np.ndarray) -> np.ndarray:
    """Nearest hit distance (N, S, P) of rays (P, 3) from origin (N, 1, 1, 3) on spheres (N, S, 4)."""
    centre, radius = spheres[:, :, None, :3], spheres[:, :, None, 3]  # (N, S, 1, 3), (N, S, 1)
    oc = origin - centre  # (N, S, 1, 3)
    a = (rays * rays).sum(-1)  # (P,)
    b = 2 * (oc * rays).sum(-1)  # (N, S, P)
    c = (oc * oc).sum(-1) - radius**2  # (N, S, 1)
    disc = b * b - 4 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)  # the nearer root: the camera is outside every sphere
    return np.where((disc > 0) & (t > 1e-3), t, FAR)


def turn_about_y(v: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Vectors v (..., 3) turned about y by the angle of this cosine and sine (broadcast like v[..., 0])."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return np.stack(
        [cos * x + sin * z, np.broadcast_to(y, np.broadcast(x, cos).shape), cos * z - sin * x], -1
    )


def hit_boxes(origin: np.ndarray, rays: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Nearest hit distance (N, K, P) on boxes (N, K, 7) turned about y: slabs in each box's own frame."""
    cos, sin = np.cos(boxes[..., 6])[..., None], np.sin(boxes[..., 6])[..., None]  # (N, K, 1)
    o = turn_about_y(origin - boxes[:, :, None, :3], cos, -sin)  # (N, K, 1, 3)
    d = turn_about_y(rays[None, None], cos, -sin)  # (N, K, P, 3)
    half = boxes[:, :, None, 3:6]
    inverse = 1 / np.where(np.abs(d) < 1e-9, 1e-9, d)
    t1, t2 = (-half - o) * inverse, (half - o) * inverse
    near = np.minimum(t1, t2).max(-1)  # (N, K, P): the ray is inside every slab between near and far
    far = np.maximum(t1, t2).min(-1)
    return np.where((near <= far) & (near > 1e-3), near, FAR)


def surface_normals(params: SceneParams, nearest: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Unit normals (N, P, 3) of the surfaces hit: object `nearest` (N, P) at `point` (N, P, 3)."""
    rows = np.arange(len(nearest))[:, None]
    normal = np.zeros_like(point)
    normal[..., 1] = nearest == 0  # the ground faces up
    normal[..., 2] = -1.0 * (nearest == 1)  # the wall faces the camera
    sphere = params.spheres[rows, np.clip(nearest - 2, 0, N_SPHERES - 1)]  # (N, P, 4)
    on_sphere = ((nearest >= 2) & (nearest < 2 + N_SPHERES))[..., None]
    normal = np.where(on_sphere, (point - sphere[..., :3]) / sphere[..., 3:], normal)
    box = params.boxes[rows, np.clip(nearest - 2 - N_SPHERES, 0, N_BOXES - 1)]  # (N, P, 7)
    cos, sin = np.cos(box[..., 6]), np.sin(box[..., 6])
    local = turn_about_y(point - box[..., :3], cos, -sin) / box[..., 3:6]  # the hit face: |local| = 1
    axis = np.abs(local).argmax(-1)
    face = np.eye(3, dtype=point.dtype)[axis] * np.sign(np.take_along_axis(local, axis[..., None], -1))
    return np.where((nearest >= 2 + N_SPHERES)[..., None], turn_about_y(face, cos, sin), normal)


def shade(params: SceneParams, origin: np.ndarray, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour (N, P, 3) and depth (N, P) of the nearest surface along each ray, seen from `origin` (N, 3)."""
    n, p = len(params.ground), len(rays)
    o = origin[:, None, None, :].astype(np.float32)  # (N, 1, 1, 3)
    with np.errstate(divide="ignore"):
        ground_t = np.where(rays[:, 1] < 0, (-params.ground[:, None] - o[:, 0, 0, 1:2]) / rays[:, 1], FAR)
    wall_t = np.broadcast_to(params.wall[:, None] - o[:, 0, 0, 2:3], (n, p))  # rays have z-component 1
    t = np.concatenate(
        [
            ground_t[:, None],
            wall_t[:, None],
            hit_spheres(o, rays, params.spheres),
            hit_boxes(o, rays, params.boxes),
        ],
        axis=1,
    )  # (N, O, P)
    nearest = t.argmin(1)  # (N, P): every ray meets the wall at the latest
    depth = np.take_along_axis(t, nearest[:, None], 1)[:, 0]
    point = o[:, 0, 0, None] + depth[..., None] * rays  # (N, P, 3)
    rows = np.arange(n)[:, None]
    waves = params.waves[rows, nearest]  # (N, P, W, 4)
    pattern = np.sin(np.einsum("npwk,npk->npw", waves[..., :3], point) + waves[..., 3]).sum(-1) / np.sqrt(
        N_WAVES
    )
    mix = 0.5 + 0.5 * np.tanh(params.contrast[rows, nearest] * pattern)  # (N, P)
    colours = params.colours[rows, nearest]  # (N, P, 2, 3)
    albedo = colours[..., 0, :] + mix[..., None] * (colours[..., 1, :] - colours[..., 0, :])
    normal = surface_normals(params, nearest, point)
    lambert = np.clip((normal * params.light[:, None]).sum(-1), 0, 1)
    return albedo * (0.35 + 0.65 * lambert[..., None]), depth


def render(
    n: int, height: int, width: int, seed: int, stereo: bool = False, max_disparity: float = 32.0
) -> RenderedScenes:
    """N scenes seen by a camera of focal length `width` pixels (a 53-degree field of view); a stereo pair's
    baseline puts the nearest point of each scene at a random disparity up to `max_disparity` pixels."""
    rng = np.random.default_rng(seed)
    params = draw_params(n, rng)
    focal = float(width)
    rays = pixel_rays(height, width, focal)
    colour, depth = shade(params, np.zeros((n, 3)), rays)
    scenes = RenderedScenes(
        finish(colour, height, width, rng), depth.reshape(n, height, width).astype(np.float32)
    )
    if stereo:
        nearest_disparity = rng.uniform(0.35, 1.0, n) * max_disparity
        baseline = nearest_disparity * depth.min(1) / focal  # (N,) metres
        origin = np.stack([baseline, np.zeros(n), np.zeros(n)], -1)
        right, _ = shade(params, origin, rays)
        scenes.right = finish(right, height, width, rng)
        scenes.disparity = (focal * baseline[:, None, None] / scenes.depth).astype(np.float32)
    return scenes


def finish(colour: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(N, P, 3) radiance -> (N, 3, H, W) float32 image: a random exposure per image and sensor noise."""
    n = len(colour)
    exposure = rng.uniform(0.8, 1.2, (n, 1, 1))
    noisy = colour * exposure + rng.normal(0, 0.01, colour.shape)
    return np.clip(noisy, 0, 1).reshape(n, height, width, 3).transpose(0, 3, 1, 2).astype(np.float32)


def render_batched(
    n: int,
    height: int,
    width: int,
    seed: int,
    stereo: bool = False,
    max_disparity: float = 32.0,
    chunk: int = 128,
) -> RenderedScenes:
    """render() in chunks of scenes (each its own seed) so memory stays small for thousands of scenes."""
    parts = [
        render(min(chunk, n - start), height, width, seed * 100_003 + i, stereo, max_disparity)
        for i, start in enumerate(range(0, n, chunk))
    ]
    return RenderedScenes(
        *(join([getattr(part, name) for part in parts]) for name in ("left", "depth", "right", "disparity"))
    )


def join(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    return None if arrays[0] is None else np.concatenate(arrays)
