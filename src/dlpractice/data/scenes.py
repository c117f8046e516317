"""Segmentation data for lab v6: generated scenes of overlapping shapes, and an Oxford-IIIT Pets loader.

Generated (embedded): 64x64 RGB scenes, each a textured, cluttered background (a colour gradient, stripes,
noise and small background marks) with 2-5 shapes of 4 classes (circle, square, triangle, cross), each
rotated, sized and coloured at random and drawn in turn, so later shapes occlude earlier ones. The mask
gives every pixel its class (0 = background) as drawn last. Colours say nothing about the class: only the
shape does. Seeded: the same seed gives the same scenes.

Real: Oxford-IIIT Pets (Parkhi et al., 2012) as published, extracted into the data directory:
`oxford-iiit-pet/images/*.jpg` and `oxford-iiit-pet/annotations/trimaps/*.png` (trimap values 1 = pet,
2 = background, 3 = border). Images and masks are resized to a square side; the border becomes class 2
("border"), so the classes are background, pet, border. Simplified: no download (the archives are
791 MB and 19 MB; put their extracted contents in the data directory), one random split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlpractice.data.fetch import data_dir
from dlpractice.errors import DlpError

SCENE_CLASSES = ("background", "circle", "square", "triangle", "cross")
PET_CLASSES = ("background", "pet", "border")
PETS_URLS = (
    "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
    "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
)
PETS_PLACES = ("oxford-iiit-pet", "pets", ".")


@dataclass
class SegmentationSplits:
    """Images (N, 3, S, S) float32 in [0, 1] and masks (N, S, S) int64 class ids, per split."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    classes: tuple[str, ...]
    source: str

    def describe(self) -> dict[str, object]:
        return {
            "data_source": self.source,
            "n_train": len(self.x["train"]),
            "n_val": len(self.x["val"]),
            "n_test": len(self.x["test"]),
            "side": int(self.x["train"].shape[-1]),
        }


def shape_mask(kind: int, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """A (S, S) boolean mask of one shape of class `kind`, at a random place, size and rotation."""
    cy, cx = rng.uniform(0.15, 0.85, 2) * side
    size = rng.uniform(0.09, 0.2) * side  # half-width: from small to a fifth of the image
    angle = rng.uniform(0, 2 * np.pi)
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)  # coordinates in the shape's own frame
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    if kind == 1:  # circle
        return u**2 + v**2 < size**2
    if kind == 2:  # square
        return (np.abs(u) < size) & (np.abs(v) < size)
    if kind == 3:  # equilateral triangle: inside three half-planes whose normals are 120 degrees apart
        normals = [
            (np.cos(a), np.sin(a)) for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 - 2 * np.pi / 3)
        ]
        return np.all([u * a + v * b < size * 0.6 for a, b in normals], axis=0)
    arm = size / 3  # cross: two bars
    return ((np.abs(u) < size) & (np.abs(v) < arm)) | ((np.abs(v) < size) & (np.abs(u) < arm))


def background(yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """(S, S, 3) clutter: a colour gradient, faint stripes, pixel noise and small blobs of any colour."""
    corners = rng.uniform(0, 1, (2, 3))
    t = ((xx + yy) / (2 * side))[..., None]
    image = corners[0] * (1 - t) + corners[1] * t
    period, phase, angle = rng.uniform(4, 12), rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period + phase)
    image = image + 0.12 * stripes[..., None] + rng.normal(0, 0.05, image.shape)
    for _ in range(rng.integers(3, 8)):  # distractor blobs: small, so they are not mistaken for shapes
        cy, cx = rng.uniform(0, side, 2)
        radius = rng.uniform(1, 3.5)
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        image[blob] = rng.uniform(0, 1, 3)
    return image


def generate_scenes(n: int, seed: int, side: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """n scenes: images (n, 3, S, S) float32 in [0, 1], masks (n, S, S) int64 with SCENE_CLASSES ids."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64) + 0.5
    images = np.empty((n, 3, side, side), np.float32)
    masks = np.zeros((n, side, side), np.int64)
    for i in range(n):
        image = background(yy, xx, rng, side)
        for _ in range(rng.integers(2, 6)):
            kind = int(rng.integers(1, len(SCENE_CLASSES)))
            inside = shape_mask(kind, yy, xx, rng, side)
            colour = rng.uniform(0, 1, 3)
            image[inside] = colour + rng.normal(0, 0.04, (int(inside.sum()), 3))  # a little texture
            masks[i][inside] = kind
        images[i] = np.clip(image, 0, 1).transpose(2, 0, 1)
    return images, masks


def scene_splits(n_train: int, n_val: int, n_test: int, seed: int, side: int = 64) -> SegmentationSplits:
    """Three disjoint generated splits, each from its own seed (seed, seed + 1, seed + 2)."""
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    drawn = {name: generate_scenes(n, seed + k, side) for k, (name, n) in enumerate(sizes.items())}
    return SegmentationSplits(
        {k: v[0] for k, v in drawn.items()}, {k: v[1] for k, v in drawn.items()}, SCENE_CLASSES, "embedded"
    )


def find_pets(directory: str | Path | None = None) -> Path:
    """The extracted Pets folder (holding images/ and annotations/trimaps/) in the data directory."""
    root = data_dir(directory)
    for place in PETS_PLACES if root else ():
        folder = root / place
        if (folder / "images").is_dir() and (folder / "annotations" / "trimaps").is_dir():
            return folder
    where = root / PETS_PLACES[0] if root else "<data dir>/oxford-iiit-pet (set DLP_DATA_DIR or --data-dir)"
    raise DlpError(
        f"Oxford-IIIT Pets not found: extract {' and '.join(PETS_URLS)} into {where} "
        "(it should hold images/ and annotations/trimaps/)"
    )


def read_pet(image_path: Path, trimap_path: Path, side: int) -> tuple[np.ndarray, np.ndarray]:
    """One pet: (3, S, S) float32 image (bilinear) and (S, S) mask (nearest: class ids stay whole)."""
    from PIL import Image

    image = Image.open(image_path).convert("RGB").resize((side, side), Image.BILINEAR)
    trimap = np.asarray(Image.open(trimap_path).resize((side, side), Image.NEAREST))
    if not np.isin(trimap, (1, 2, 3)).all():
        raise DlpError(
            f"{trimap_path} is not a Pets trimap: values {sorted(np.unique(trimap))[:6]}, expected 1-3"
        )
    mask = np.select([trimap == 1, trimap == 3], [1, 2], 0)  # pet -> 1, border -> 2, background -> 0
    return np.asarray(image, np.float32).transpose(2, 0, 1) / 255, mask.astype(np.int64)


def load_pets(
    directory: str | Path | None = None, side: int = 64, limit: int = 0, seed: int = 0
) -> SegmentationSplits:
    """Pets with a trimap, resized to side x side, shuffled with `seed` and split 70/15/15."""
    folder = find_pets(directory)
    names = sorted(
        p.stem for p in (folder / "annotations" / "trimaps").glob("*.png") if not p.name.startswith(".")
    )
    names = [n for n in names if (folder / "images" / f"{n}.jpg").is_file()]
    if not names:
        raise DlpError(
            f"{folder} holds no image with a trimap (images/NAME.jpg, annotations/trimaps/NAME.png)"
        )
    order = np.random.default_rng(seed).permutation(len(names))
    chosen = [names[i] for i in order[: limit or None]]
    pairs = [
        read_pet(folder / "images" / f"{n}.jpg", folder / "annotations" / "trimaps" / f"{n}.png", side)
        for n in chosen
    ]
    x, y = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    cut = [int(len(x) * 0.7), int(len(x) * 0.85)]
    parts = dict(zip(("train", "val", "test"), np.split(np.arange(len(x)), cut)))
    return SegmentationSplits(
        {k: x[i] for k, i in parts.items()}, {k: y[i] for k, i in parts.items()}, PET_CLASSES, "real"
    )
