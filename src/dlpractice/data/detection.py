"""Detection data for lab v5: a hard generated task of small overlapping shapes; Penn-Fudan and VOC loaders.

Generated (embedded): 64x64 RGB images, each a textured, cluttered background (data/scenes.py: a colour
gradient, stripes, pixel noise and small blobs of any colour) with 3-7 shapes of 8 classes (circle, ring,
square, frame, triangle, cross, star, crescent), small (4-18 pixels across), rotated and coloured at random
and drawn in turn, so later shapes hide parts of earlier ones. A shape's box is the bounding box of its
visible pixels; a shape less than a third visible (or under 8 pixels) gets no box and stays as clutter.
Colours say nothing about the class, and rings, frames and crescents differ from circles and squares by a
few pixels only: an easy version of this task (large, separate shapes) saturates at mAP 0.99 in minutes on
a CPU, this one does not. Seeded: the same seed gives the same images.

Real (in the data directory, never downloaded):
- Penn-Fudan pedestrians (Wang et al., 2007), extracted as `PennFudanPed/PNGImages/*.png` with
  `PennFudanPed/PedMasks/*_mask.png` (one id per person, 0 = background): a person's box encloses its mask.
- PASCAL VOC (Everingham et al., 2010), extracted as `VOCdevkit/VOC2007/` (or VOC2012) with
  `Annotations/*.xml` and `JPEGImages/*.jpg`: 20 classes; objects marked difficult are left out.
Images are resized to a square side (aspect ratio not kept) and their boxes scaled with them.
Simplified: one seeded 70/15/15 split of all annotated images, not VOC's official lists.

Every split holds images (N, 3, S, S) float32 in [0, 1] and targets (N, M, 5) float32 rows
(class, x0, y0, x1, y1) in pixels, padded with class -1 to the most objects an image has (M).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlpractice.data.fetch import data_dir
from dlpractice.data.scenes import background
from dlpractice.errors import DlpError

SHAPE_CLASSES = ("circle", "ring", "square", "frame", "triangle", "cross", "star", "crescent")
PERSON_CLASSES = ("person",)
VOC_CLASSES = (
    *("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow"),
    *("diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train"),
    "tvmonitor",
)
MAX_SHAPES = 7
MIN_VISIBLE = 1 / 3  # a shape less visible than this is clutter, not an object
PENN_FUDAN_URL = "https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip"
VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar"


@dataclass
class DetectionSplits:
    """Images (N, 3, S, S) and padded targets (N, M, 5) per split; class names; which source."""

    x: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    classes: tuple[str, ...]
    source: str

    def describe(self) -> dict[str, object]:
        return {
            "data_source": self.source,
            "n_train": len(self.x["train"]),
            "n_val": len(self.x["val"]),
            "n_test": len(self.x["test"]),
            "side": int(self.x["train"].shape[-1]),
            "objects_per_test_image": round(float((self.targets["test"][..., 0] >= 0).sum(1).mean()), 2),
        }


def pad_targets(per_image: list[np.ndarray], slots: int | None = None) -> np.ndarray:
    """Lists of (K, 5) rows -> (N, M, 5) float32 padded with class -1; M = the most any image has."""
    slots = slots or max(1, *(len(rows) for rows in per_image))
    out = np.full((len(per_image), slots, 5), -1.0, np.float32)
    for i, rows in enumerate(per_image):
        out[i, : len(rows)] = rows
    return out


def shape_mask(kind: int, u: np.ndarray, v: np.ndarray, size: float) -> np.ndarray:
    """Pixels inside a shape of class `kind`, in its own frame (u, v) centred on it; size = half-width."""
    r = np.hypot(u, v)
    name = SHAPE_CLASSES[kind]
    if name == "circle":
        return r < size
    if name == "ring":
        return (r < size) & (r > 0.55 * size)
    if name in ("square", "frame"):
        inside = np.maximum(np.abs(u), np.abs(v)) < 0.85 * size
        return inside & (np.maximum(np.abs(u), np.abs(v)) > 0.45 * size) if name == "frame" else inside
    if name == "triangle":  # inside three half-planes whose normals are 120 degrees apart
        angles = np.pi / 2 + np.array([0, 2 * np.pi / 3, -2 * np.pi / 3])
        return np.all([u * np.cos(a) + v * np.sin(a) < 0.55 * size for a in angles], axis=0)
    if name == "cross":
        arm = size / 3
        return ((np.abs(u) < size) & (np.abs(v) < arm)) | ((np.abs(v) < size) & (np.abs(u) < arm))
    if name == "star":  # five points: the radius swings between 0.45 and 1 of the size with the angle
        return r < size * (0.725 + 0.275 * np.cos(5 * np.arctan2(v, u)))
    return (r < size) & (np.hypot(u - 0.45 * size, v) > 0.75 * size)  # crescent: a disc minus a shifted one


def draw_image(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, side: int):
    """One image (S, S, 3) in [0, 1] and its (K, 5) targets (class, x0, y0, x1, y1)."""
    image = background(yy, xx, rng, side)
    owner = np.full((side, side), -1)  # which shape each pixel shows last
    kinds, areas = [], []
    for k in range(int(rng.integers(3, MAX_SHAPES + 1))):
        kind = int(rng.integers(len(SHAPE_CLASSES)))
        cy, cx = rng.uniform(0.08, 0.92, 2) * side
        size, angle = rng.uniform(2, 9), rng.uniform(0, 2 * np.pi)
        u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
        v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
        inside = shape_mask(kind, u, v, size)
        image[inside] = rng.uniform(0, 1, 3) + rng.normal(0, 0.05, (int(inside.sum()), 3))
        owner[inside] = k
        kinds.append(kind)
        areas.append(int(inside.sum()))
    return np.clip(image, 0, 1), visible_rows(owner, kinds, areas)


def visible_rows(owner: np.ndarray, kinds: list[int], areas: list[int]) -> np.ndarray:
    """(K, 5) rows of the shapes still visible enough in the `owner` map (S, S) of shape indices (-1: none):
    each one's box encloses its visible pixels, in pixel edges."""
    rows = []
    for k, (kind, area) in enumerate(zip(kinds, areas)):
        ys, xs = np.nonzero(owner == k)
        if len(ys) >= 8 and len(ys) >= MIN_VISIBLE * area:
            rows.append([kind, xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.array(rows, np.float32).reshape(-1, 5)


def generate_shapes(n: int, seed: int, side: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """n images (n, 3, S, S) float32 and their targets (n, MAX_SHAPES, 5)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64) + 0.5
    images = np.empty((n, 3, side, side), np.float32)
    targets = []
    for i in range(n):
        image, rows = draw_image(rng, yy, xx, side)
        images[i] = image.transpose(2, 0, 1)
        targets.append(rows)
    return images, pad_targets(targets, MAX_SHAPES)


def shape_splits(n_train: int, n_val: int, n_test: int, seed: int, side: int = 64) -> DetectionSplits:
    """Three disjoint generated splits, each from its own seed (seed, seed + 1, seed + 2)."""
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    drawn = {name: generate_shapes(n, seed + k, side) for k, (name, n) in enumerate(sizes.items())}
    return DetectionSplits(
        {k: v[0] for k, v in drawn.items()}, {k: v[1] for k, v in drawn.items()}, SHAPE_CLASSES, "embedded"
    )


def resized(path: Path, side: int, mode: str = "RGB") -> tuple[np.ndarray, tuple[int, int]]:
    """An image file resized to (3, S, S) float32 in [0, 1], and its original (width, height)."""
    from PIL import Image

    with Image.open(path) as picture:
        size = picture.size
        pixels = np.asarray(picture.convert(mode).resize((side, side), Image.BILINEAR), np.float32) / 255
    return pixels.transpose(2, 0, 1), size


def scale_rows(rows: np.ndarray, size: tuple[int, int], side: int) -> np.ndarray:
    """(K, 5) rows in the original's pixels -> the resized image's pixels."""
    scaled = rows.astype(np.float32).copy()
    scaled[:, [1, 3]] *= side / size[0]
    scaled[:, [2, 4]] *= side / size[1]
    return scaled


def split_real(x: np.ndarray, targets: np.ndarray, classes, seed: int, limit: int) -> DetectionSplits:
    """A seeded 70/15/15 split of (at most `limit`, 0 = all) real images."""
    order = np.random.default_rng(seed).permutation(len(x))[: limit or None]
    cut = [int(len(order) * 0.7), int(len(order) * 0.85)]
    parts = dict(zip(("train", "val", "test"), np.split(order, cut)))
    return DetectionSplits(
        {k: x[i] for k, i in parts.items()}, {k: targets[i] for k, i in parts.items()}, classes, "real"
    )


def find_folder(directory: str | Path | None, places: tuple[str, ...], needs: tuple[str, ...], what: str):
    """The first `place` in the data directory holding every sub-folder in `needs`, or a one-line error."""
    root = data_dir(directory)
    for place in places if root else ():
        if all((root / place / need).is_dir() for need in needs):
            return root / place
    where = root / places[0] if root else f"<data dir>/{places[0]} (set DLP_DATA_DIR or --data-dir)"
    raise DlpError(f"{what} not found: extract it into {where} (it should hold {' and '.join(needs)}/)")


def mask_boxes(mask_path: Path) -> np.ndarray:
    """(K, 5) person rows from a Penn-Fudan instance mask: each id's bounding box, in pixel edges."""
    from PIL import Image

    ids = np.asarray(Image.open(mask_path))
    rows = []
    for person in np.unique(ids[ids > 0]):
        ys, xs = np.nonzero(ids == person)
        rows.append([0, xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return np.array(rows, np.float32).reshape(-1, 5)


def load_penn_fudan(
    directory: str | Path | None = None, side: int = 64, limit: int = 0, seed: int = 0
) -> DetectionSplits:
    folder = find_folder(
        directory,
        ("PennFudanPed", "penn-fudan", "."),
        ("PNGImages", "PedMasks"),
        f"Penn-Fudan ({PENN_FUDAN_URL})",
    )
    names = sorted(p.stem for p in (folder / "PNGImages").glob("*.png") if not p.name.startswith("."))
    names = [n for n in names if (folder / "PedMasks" / f"{n}_mask.png").is_file()]
    if not names:
        raise DlpError(f"{folder} holds no image with a mask (PNGImages/NAME.png, PedMasks/NAME_mask.png)")
    images, targets = [], []
    for name in names:
        pixels, size = resized(folder / "PNGImages" / f"{name}.png", side)
        images.append(pixels)
        targets.append(scale_rows(mask_boxes(folder / "PedMasks" / f"{name}_mask.png"), size, side))
    return split_real(np.stack(images), pad_targets(targets), PERSON_CLASSES, seed, limit)


def voc_rows(xml_path: Path) -> np.ndarray:
    """(K, 5) rows of one VOC annotation; VOC's corners are 1-based pixel indices, both inclusive."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise DlpError(f"{xml_path} is not a VOC annotation (XML): {err}") from None
    rows = []
    for obj in root.iter("object"):
        name = obj.findtext("name", "").strip()
        if name not in VOC_CLASSES:
            raise DlpError(f"{xml_path}: unknown VOC class {name!r}")
        if obj.findtext("difficult", "0").strip() == "1":
            continue
        box = obj.find("bndbox")
        x0, y0, x1, y1 = (float(box.findtext(key)) for key in ("xmin", "ymin", "xmax", "ymax"))
        rows.append([VOC_CLASSES.index(name), x0 - 1, y0 - 1, x1, y1])
    return np.array(rows, np.float32).reshape(-1, 5)


def load_voc(
    directory: str | Path | None = None, side: int = 64, limit: int = 0, seed: int = 0
) -> DetectionSplits:
    places = tuple(f"{base}VOC{year}" for base in ("VOCdevkit/", "") for year in ("2007", "2012"))
    folder = find_folder(directory, places, ("Annotations", "JPEGImages"), f"PASCAL VOC ({VOC_URL})")
    names = sorted(p.stem for p in (folder / "Annotations").glob("*.xml") if not p.name.startswith("."))
    names = [n for n in names if (folder / "JPEGImages" / f"{n}.jpg").is_file()]
    if not names:
        raise DlpError(
            f"{folder} holds no image with an annotation (JPEGImages/NAME.jpg, Annotations/NAME.xml)"
        )
    images, targets = [], []
    for name in names:
        pixels, size = resized(folder / "JPEGImages" / f"{name}.jpg", side)
        images.append(pixels)
        targets.append(scale_rows(voc_rows(folder / "Annotations" / f"{name}.xml"), size, side))
    return split_real(np.stack(images), pad_targets(targets), VOC_CLASSES, seed, limit)
