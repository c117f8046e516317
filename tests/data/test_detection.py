"""Detection data: the generated shapes task (seeded, 8 classes, boxes on the visible pixels), and the
Penn-Fudan and VOC loaders on tiny copies written here in their real formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlpractice.data import detection as data
from dlpractice.errors import DlpError


def test_generated_images_are_seeded_and_their_boxes_fit_inside() -> None:
    x, targets = data.generate_shapes(40, seed=3)
    again, same = data.generate_shapes(40, seed=3)
    assert np.array_equal(x, again) and np.array_equal(targets, same)
    assert x.shape == (40, 3, 64, 64) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    rows = targets[targets[..., 0] >= 0]
    assert set(rows[:, 0].astype(int)) == set(range(len(data.SHAPE_CLASSES))) and len(data.SHAPE_CLASSES) >= 8
    assert (rows[:, 3] > rows[:, 1]).all() and (rows[:, 4] > rows[:, 2]).all()
    assert rows[:, 1:].min() >= 0 and rows[:, 1:].max() <= 64
    widths = rows[:, 3] - rows[:, 1]
    assert np.median(widths) < 16  # small objects: the task is meant to be hard
    assert (targets[..., 0] >= 0).sum(1).min() >= 1


def test_a_shape_hidden_behind_later_ones_gets_a_box_of_its_visible_part_or_none() -> None:
    owner = np.full((20, 20), -1)
    owner[2:12, 2:12] = 0  # shape 0: 100 pixels drawn ...
    owner[2:12, 7:12] = 1  # ... shape 1 hides its right half: 50 still show
    owner[14:18, 14:18] = 2  # shape 2: 16 of its 100 pixels show, less than a third
    rows = data.visible_rows(owner, kinds=[4, 6, 1], areas=[100, 50, 100])
    assert rows.tolist() == [[4, 2, 2, 7, 12], [6, 7, 2, 12, 12]]


def test_every_class_draws_a_distinct_shape() -> None:
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float64) + 0.5
    masks = [data.shape_mask(kind, xx - 32, yy - 32, 8.0) for kind in range(len(data.SHAPE_CLASSES))]
    for kind, mask in enumerate(masks):
        assert 20 < mask.sum() < 17 * 17, f"{data.SHAPE_CLASSES[kind]} draws {mask.sum()} pixels"
    assert len({m.tobytes() for m in masks}) == len(masks)


def write_penn_fudan(root: Path) -> None:
    folder = root / "PennFudanPed"
    (folder / "PNGImages").mkdir(parents=True)
    (folder / "PedMasks").mkdir()
    for k in range(4):
        Image.fromarray(np.full((40, 80, 3), 50 * k, np.uint8)).save(
            folder / "PNGImages" / f"FudanPed{k:05d}.png"
        )
        mask = np.zeros((40, 80), np.uint8)
        mask[10:30, 4:20] = 1  # person 1: x 4-19, y 10-29
        mask[5:35, 60:70] = 2
        Image.fromarray(mask).save(folder / "PedMasks" / f"FudanPed{k:05d}_mask.png")


def test_penn_fudan_boxes_enclose_each_person_and_scale_with_the_image(tmp_path: Path) -> None:
    write_penn_fudan(tmp_path)
    splits = data.load_penn_fudan(tmp_path, side=32, seed=0)
    assert splits.classes == ("person",) and splits.source == "real"
    assert sum(len(x) for x in splits.x.values()) == 4
    rows = np.concatenate(list(splits.targets.values()))[0]
    # mask columns 4..19 and rows 10..29 of an 80 x 40 image, resized to 32 x 32
    assert rows[0].tolist() == pytest.approx([0, 4 * 32 / 80, 10 * 32 / 40, 20 * 32 / 80, 30 * 32 / 40])
    assert rows[1].tolist() == pytest.approx([0, 60 * 0.4, 5 * 0.8, 70 * 0.4, 35 * 0.8])


VOC_XML = """<annotation><filename>{name}.jpg</filename><size><width>100</width><height>50</height></size>
<object><name>dog</name><difficult>0</difficult><bndbox><xmin>11</xmin><ymin>6</ymin><xmax>60</xmax><ymax>45</ymax></bndbox></object>
<object><name>cat</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>
<object><name>person</name><bndbox><xmin>70</xmin><ymin>1</ymin><xmax>100</xmax><ymax>50</ymax></bndbox></object>
</annotation>"""


def write_voc(root: Path, names=("000001", "000002", "000003")) -> Path:
    folder = root / "VOCdevkit" / "VOC2007"
    (folder / "Annotations").mkdir(parents=True)
    (folder / "JPEGImages").mkdir()
    for name in names:
        (folder / "Annotations" / f"{name}.xml").write_text(VOC_XML.format(name=name))
        Image.fromarray(np.zeros((50, 100, 3), np.uint8)).save(folder / "JPEGImages" / f"{name}.jpg")
    return folder


def test_voc_objects_are_read_with_zero_based_corners_and_difficult_ones_left_out(tmp_path: Path) -> None:
    write_voc(tmp_path)
    splits = data.load_voc(tmp_path, side=50, seed=0)
    assert len(splits.classes) == 20
    rows = np.concatenate(list(splits.targets.values()))[0]
    dog, person = data.VOC_CLASSES.index("dog"), data.VOC_CLASSES.index("person")
    assert rows[:, 0].tolist() == [dog, person]  # the difficult cat is not there
    assert rows[0, 1:].tolist() == pytest.approx([10 * 0.5, 5, 60 * 0.5, 45])


def test_missing_or_broken_real_data_is_one_line_saying_where_it_goes(tmp_path: Path) -> None:
    with pytest.raises(DlpError, match="Penn-Fudan.*PennFudanPed"):
        data.load_penn_fudan(tmp_path)
    with pytest.raises(DlpError, match="PASCAL VOC.*VOC2007"):
        data.load_voc(tmp_path)
    folder = write_voc(tmp_path, names=("000001",))
    (folder / "Annotations" / "000001.xml").write_text("<annotation><object>")
    with pytest.raises(DlpError, match="not a VOC annotation"):
        data.load_voc(tmp_path)
