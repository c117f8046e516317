"""Generated segmentation scenes and the Oxford-IIIT Pets loader (on a tiny copy in the real layout)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dlpractice.data import scenes
from dlpractice.errors import DlpError


def test_scenes_are_seeded_and_shaped_like_the_lab_expects() -> None:
    x, y = scenes.generate_scenes(20, seed=3)
    assert x.shape == (20, 3, 64, 64) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    assert y.shape == (20, 64, 64) and y.dtype == np.int64
    again = scenes.generate_scenes(20, seed=3)
    assert np.array_equal(x, again[0]) and np.array_equal(y, again[1])
    assert not np.array_equal(y, scenes.generate_scenes(20, seed=4)[1])


def test_every_class_appears_and_shapes_cover_a_fair_share_of_pixels() -> None:
    _, y = scenes.generate_scenes(100, seed=0)
    shares = np.bincount(y.reshape(-1), minlength=len(scenes.SCENE_CLASSES)) / y.size
    assert len(scenes.SCENE_CLASSES) >= 5  # background and at least four shapes
    assert np.all(shares[1:] > 0.02) and 0.5 < shares[0] < 0.95
    assert np.mean([len(np.unique(m)) >= 3 for m in y]) > 0.7  # most scenes hold two shape classes or more


def test_colour_does_not_give_the_class_away() -> None:
    """Mean colour per class is near grey: a shape's class must be read from its outline."""
    x, y = scenes.generate_scenes(100, seed=1)
    pixels = x.transpose(0, 2, 3, 1)  # (N, H, W, 3)
    means = np.array([pixels[y == c].mean(0) for c in range(1, 5)])  # (4, 3)
    assert np.abs(means - 0.5).max() < 0.08


def test_splits_are_disjoint_draws() -> None:
    data = scenes.scene_splits(10, 4, 6, seed=0)
    assert {k: len(v) for k, v in data.x.items()} == {"train": 10, "val": 4, "test": 6}
    assert not np.array_equal(data.x["train"][:4], data.x["val"])
    assert data.describe()["data_source"] == "embedded"


def write_tiny_pets(root, n: int = 10) -> None:
    """n pets in the published layout: images/NAME.jpg, annotations/trimaps/NAME.png (1 pet, 2 bg, 3 edge)."""
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        name = f"Abyssinian_{i + 1}"
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(
            root / "images" / f"{name}.jpg"
        )
        trimap = np.full((40, 50), 2, np.uint8)
        trimap[10:30, 10:40] = 3
        trimap[12:28, 12:38] = 1
        Image.fromarray(trimap).save(root / "annotations" / "trimaps" / f"{name}.png")


def test_pets_loader_reads_the_published_layout(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DLP_OFFLINE", "1")
    write_tiny_pets(tmp_path / "oxford-iiit-pet")
    data = scenes.load_pets(tmp_path, side=32)
    assert data.classes == ("background", "pet", "border") and data.source == "real"
    assert sum(len(v) for v in data.x.values()) == 10 and len(data.x["train"]) == 7
    assert data.x["test"].shape[1:] == (3, 32, 32) and data.y["test"].shape[1:] == (32, 32)
    mask = data.y["train"][0]
    assert set(np.unique(mask)) == {0, 1, 2}
    assert mask[16, 16] == 1 and mask[0, 0] == 0  # the pet's middle; the corner is background
    assert len(scenes.load_pets(tmp_path, side=32, limit=4).x["train"]) == 2


def test_missing_pets_or_a_damaged_trimap_is_a_one_line_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DLP_OFFLINE", "1")
    with pytest.raises(DlpError, match="annotations.tar.gz.*oxford-iiit-pet"):
        scenes.load_pets(tmp_path)
    write_tiny_pets(tmp_path / "oxford-iiit-pet", n=1)
    Image.fromarray(np.full((40, 50), 9, np.uint8)).save(
        tmp_path / "oxford-iiit-pet" / "annotations" / "trimaps" / "Abyssinian_1.png"
    )
    with pytest.raises(DlpError, match="not a Pets trimap"):
        scenes.load_pets(tmp_path)
