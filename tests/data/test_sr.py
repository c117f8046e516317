"""Super-resolution data: MATLAB-style bicubic against PIL's, the real loader on tiny PNGs, aligned patches"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlpractice.data.sr import (
    N_REAL_VAL,
    PatchBatches,
    SRImages,
    imresize,
    load_sr,
    modcrop,
    resize_matrix,
)
from dlpractice.errors import DlpError


def test_resize_weights_sum_to_one_and_keep_a_flat_image_flat() -> None:
    for n_in, n_out in ((40, 10), (10, 40), (37, 9)):
        assert np.allclose(resize_matrix(n_in, n_out).sum(1), 1)
    flat = np.full((16, 20, 3), 123, np.uint8)
    assert (imresize(flat, 0.25) == 123).all() and imresize(flat, 4).shape == (64, 80, 3)


@pytest.mark.parametrize("scale", [0.25, 4])
def test_bicubic_matches_pil_away_from_the_borders(scale: float) -> None:
    """PIL's bicubic is the same antialiased Keys kernel (a = -0.5); only the borders differ: MATLAB
    mirrors the image there, PIL renormalises the cut kernel. Compared in float (PIL mode F) per channel."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    h, w = round(48 * scale), round(64 * scale)
    rows, cols = resize_matrix(48, h), resize_matrix(64, w)
    ours = np.stack([rows @ image[..., c].astype(np.float64) @ cols.T for c in range(3)], axis=-1)
    pil = np.stack(
        [
            np.asarray(Image.fromarray(image[..., c].astype(np.float32)).resize((w, h), Image.BICUBIC))
            for c in range(3)
        ],
        axis=-1,
    )
    margin = 3 if scale < 1 else 12  # output pixels whose kernel reaches past the border
    inside = (slice(margin, -margin), slice(margin, -margin))
    assert np.abs(ours[inside] - pil[inside]).max() < 1e-3
    assert np.array_equal(imresize(image, scale), np.clip(np.round(ours), 0, 255).astype(np.uint8))


def write_pngs(folder: Path, n: int, side: tuple[int, int], seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*side, 3), dtype=np.uint8)).save(folder / f"img{i:02d}.png")


def test_real_loader_reads_bsd68_set5_set14_pngs_and_makes_lr_inputs(tmp_path: Path) -> None:
    write_pngs(tmp_path / "sr" / "BSD68", N_REAL_VAL + 3, (34, 41), 0)
    write_pngs(tmp_path / "sr" / "Set5", 2, (30, 30), 1)
    write_pngs(tmp_path / "sr" / "Set14", 1, (22, 26), 2)
    data = load_sr("auto", 4, tmp_path)
    assert data.source == "real"
    assert {split: len(images) for split, images in data.hr.items()} == {
        "train": 3,
        "val": N_REAL_VAL,
        "set5": 2,
        "set14": 1,
    }
    assert data.hr["train"][0].shape == (32, 40, 3) and data.lr["train"][0].shape == (8, 10, 3)
    assert data.names["set5"] == ["img00", "img01"]
    original = np.asarray(Image.open(tmp_path / "sr" / "Set14" / "img00.png"))
    assert np.array_equal(data.hr["set14"][0], modcrop(original, 4))
    assert np.array_equal(data.lr["set14"][0], imresize(modcrop(original, 4), 0.25))


def test_missing_real_data_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(DlpError, match=r"BSD68 not found: put its PNG images .* in .*sr/BSD68"):
        load_sr("real", 4, tmp_path)
    assert load_sr("auto", 4, tmp_path).source == "embedded"


def test_patches_are_aligned_and_augmented_alike() -> None:
    """HR made of constant 4x4 blocks: every LR pixel must equal its block, whatever flip or turn."""
    rng = np.random.default_rng(0)
    lr = [rng.integers(0, 256, (12, 15, 3), dtype=np.uint8) for _ in range(2)]
    hr = [np.kron(image, np.ones((4, 4, 1), np.uint8)) for image in lr]
    data = SRImages({"train": hr, "val": hr[:1]}, {"train": lr, "val": lr[:1]}, {}, 4, "test", "test")
    batches = PatchBatches(data, lr_patch=6, val_patch=8)
    lr_batch, hr_batch = batches.train_batch(16, torch.Generator().manual_seed(0))
    assert lr_batch.shape == (16, 3, 6, 6) and hr_batch.shape == (16, 3, 24, 24)
    assert torch.equal(hr_batch[:, :, ::4, ::4], lr_batch)
    assert torch.equal(hr_batch[:, :, 3::4, 3::4], lr_batch)
    (val_lr, val_hr), *rest = batches.eval_batches("val")
    assert not rest and val_lr.shape == (1, 3, 8, 8) and torch.equal(val_hr[:, :, ::4, ::4], val_lr)
    with pytest.raises(DlpError, match="smaller than the 20-pixel training patch"):
        PatchBatches(data, lr_patch=20)
