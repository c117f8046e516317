"""Super-resolution data: MATLAB-style bicubic downscaling, image folders, and random LR/HR patch batches.

The benchmark convention (SRCNN, EDSR, ESRGAN papers): crop the high-resolution (HR) image to a multiple of
the scale, make the low-resolution (LR) input with MATLAB's `imresize(hr, 1/scale, 'bicubic')` (a cubic
kernel stretched by the scale, i.e. antialiased, mirrored at the borders) and round it to uint8. PIL's and
torch's bicubic differ from it, and the published numbers (bicubic Set5 x4 = 28.42 dB) depend on it, so
`imresize` below follows MATLAB's formulas: Keys' cubic with a = -0.5, weights normalised per output pixel.

Sources: real = BSD68 (training, 4 images held out for validation) and Set5 / Set14 (evaluation) in the data
directory under sr/; embedded = colour sample images shipped by scikit-image and matplotlib (training) and
three of them held out for evaluation (astronaut, coffee, chelsea).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlpractice.data.fetch import data_dir
from dlpractice.errors import DlpError

REAL_SETS = {"train": "BSD68", "set5": "Set5", "set14": "Set14"}
SR_URL = "https://github.com/majedelhelou/denoising_datasets (CBSD68/, CSet5/, CSet14/)"
N_REAL_VAL = 4  # BSD68 images held out for validation: Set5 and Set14 stay untouched until the end
EMBEDDED_TRAIN = (
    "skimage:hubble_deep_field.jpg",
    "skimage:ihc.png",
    "skimage:motorcycle_left.png",
    "skimage:camera.png",
    "skimage:brick.png",
    "skimage:grass.png",
    "skimage:gravel.png",
    "skimage:coins.png",
    "skimage:moon.png",
    "matplotlib:grace_hopper.jpg",
)
EMBEDDED_VAL = ("skimage:rocket.jpg",)
EMBEDDED_EVAL = ("skimage:astronaut.png", "skimage:coffee.png", "skimage:chelsea.png")


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = np.abs(x)
    near = (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
    far = (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of MATLAB's imresize on one axis; downscaling widens the kernel (antialias)."""
    scale = n_out / n_in
    width = 4.0 / min(scale, 1.0)  # the kernel's support in input pixels
    centre = (np.arange(n_out) + 0.5) / scale - 0.5  # output pixel centres in input coordinates (0-based)
    taps = np.floor(centre - width / 2)[:, None] + np.arange(int(np.ceil(width)) + 2)[None]  # (n_out, P)
    distance = (centre[:, None] - taps) * min(scale, 1.0)
    weights = cubic(distance)
    weights /= weights.sum(1, keepdims=True)
    # MATLAB mirrors the image at its borders (symmetric: ... 1 0 | 0 1 ... n-1 | n-1 n-2 ...)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])
    index = mirror[np.mod(taps.astype(np.int64), 2 * n_in)]
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.repeat(np.arange(n_out), taps.shape[1]), index.reshape(-1)), weights.reshape(-1))
    return matrix


def imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB's imresize(image, scale, 'bicubic') of a uint8 (H, W, 3) image, rounded back to uint8."""
    h, w = image.shape[:2]
    rows = resize_matrix(h, round(h * scale))  # (h', h)
    cols = resize_matrix(w, round(w * scale))  # (w', w)
    columns_done = np.tensordot(image.astype(np.float64), cols, axes=([1], [1]))  # (h, 3, w')
    out = np.tensordot(rows, columns_done, axes=([1], [0])).transpose(0, 2, 1)  # (h', w', 3)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Cut the bottom and right edges so that both sides divide by the scale."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Any uint8 image (grey, RGB, RGBA) as (H, W, 3)."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


@dataclass
class SRImages:
    """HR images (uint8 (H, W, 3), sides divisible by the scale) and their bicubic LR inputs, by split."""

    hr: dict[str, list[np.ndarray]]
    lr: dict[str, list[np.ndarray]]
    names: dict[str, list[str]]
    scale: int
    source: str
    origin: str

    def describe(self) -> dict[str, str | int]:
        sizes = ", ".join(f"{split} {len(images)}" for split, images in self.hr.items())
        return {"data_source": self.source, "data_origin": self.origin, "images": sizes}


def pair_up(
    images: dict[str, list[tuple[str, np.ndarray]]], scale: int, source: str, origin: str
) -> SRImages:
    """Crop each HR image to a multiple of the scale and make its LR input the benchmark way."""
    hr = {split: [modcrop(as_rgb(image), scale) for _, image in named] for split, named in images.items()}
    lr = {split: [imresize(image, 1 / scale) for image in images] for split, images in hr.items()}
    names = {split: [name for name, _ in named] for split, named in images.items()}
    return SRImages(hr, lr, names, scale, source, origin)


def read_png_folder(folder: Path) -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".bmp", ".jpg"))
    if not paths:
        raise DlpError(f"{folder} holds no PNG, BMP or JPEG image")
    return [(p.stem, as_rgb(np.asarray(Image.open(p).convert("RGB")))) for p in paths]


def find_sr_folder(name: str, directory: str | Path | None = None) -> Path:
    root = data_dir(directory)
    folder = root / "sr" / name if root else None
    if folder is None or not folder.is_dir():
        where = folder or f"<data dir>/sr/{name} (set DLP_DATA_DIR or --data-dir)"
        raise DlpError(f"{name} not found: put its PNG images from {SR_URL} in {where}")
    return folder


def load_real(scale: int, directory: str | Path | None = None) -> SRImages:
    """BSD68 (training; the last N_REAL_VAL images validate) and Set5 / Set14 (evaluation)."""
    folders = {split: find_sr_folder(name, directory) for split, name in REAL_SETS.items()}
    named = {split: read_png_folder(folder) for split, folder in folders.items()}
    train = named.pop("train")
    if len(train) <= N_REAL_VAL:
        raise DlpError(f"{folders['train']} holds {len(train)} images; training needs more than {N_REAL_VAL}")
    images = {"train": train[:-N_REAL_VAL], "val": train[-N_REAL_VAL:]} | named
    return pair_up(images, scale, "real", str(folders["train"].parent))


def read_sample(spec: str) -> tuple[str, np.ndarray]:
    """One packaged sample image, 'skimage:NAME' or 'matplotlib:NAME', read from the package's own files."""
    from PIL import Image

    package, name = spec.split(":")
    if package == "skimage":
        import skimage.data

        path = Path(skimage.data.__file__).parent / name  # the files shipped in the wheel, not the cache
    else:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / name
    return Path(name).stem, as_rgb(np.asarray(Image.open(path).convert("RGB")))


def load_embedded(scale: int) -> SRImages:
    """Package sample images: 10 to train on, 1 to validate, 3 held out to evaluate."""
    images = {
        "train": [read_sample(s) for s in EMBEDDED_TRAIN],
        "val": [read_sample(s) for s in EMBEDDED_VAL],
        "held_out": [read_sample(s) for s in EMBEDDED_EVAL],
    }
    return pair_up(images, scale, "embedded", "scikit-image and matplotlib sample images")


def load_sr(source: str, scale: int, directory: str | Path | None = None) -> SRImages:
    """`auto`: real when BSD68, Set5 and Set14 are all in the data directory, else embedded."""
    if source == "auto":
        root = data_dir(directory)
        found = root and all((root / "sr" / name).is_dir() for name in REAL_SETS.values())
        source = "real" if found else "embedded"
    if source == "real":
        return load_real(scale, directory)
    if source == "embedded":
        return load_embedded(scale)
    raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255


def to_image(x: torch.Tensor) -> np.ndarray:
    """float (3, H, W) in [0, 1] -> uint8 (H, W, 3), rounded as an image file would store it."""
    return (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


class PatchBatches:
    """fit()'s data: random aligned LR/HR patches with random flips and 90-degree turns for training;
    for validation, the centre patch of each validation image (fixed, so val losses compare across steps)."""

    def __init__(self, data: SRImages, lr_patch: int, val_patch: int = 48):
        self.scale, self.lr_patch = data.scale, lr_patch
        self.train = [(to_tensor(lr), to_tensor(hr)) for lr, hr in zip(data.lr["train"], data.hr["train"])]
        self.val = [
            self.centre(to_tensor(lr), to_tensor(hr), val_patch)
            for lr, hr in zip(data.lr["val"], data.hr["val"])
        ]
        too_small = [lr.shape[1:] for lr, _ in self.train if min(lr.shape[1:]) < lr_patch]
        if too_small:
            raise DlpError(f"LR images {too_small[:3]} are smaller than the {lr_patch}-pixel training patch")

    def centre(self, lr: torch.Tensor, hr: torch.Tensor, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
        patch = min(patch, *lr.shape[1:])
        top, left = (lr.shape[1] - patch) // 2, (lr.shape[2] - patch) // 2
        return self.crop(lr, hr, top, left, patch)

    def crop(self, lr: torch.Tensor, hr: torch.Tensor, top: int, left: int, patch: int):
        s = self.scale
        return lr[:, top : top + patch, left : left + patch], hr[
            :, s * top : s * (top + patch), s * left : s * (left + patch)
        ]

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = []
        for i in torch.randint(len(self.train), (batch_size,), generator=generator).tolist():
            lr, hr = self.train[i]
            top = int(torch.randint(lr.shape[1] - self.lr_patch + 1, (1,), generator=generator))
            left = int(torch.randint(lr.shape[2] - self.lr_patch + 1, (1,), generator=generator))
            flip = int(torch.randint(2, (1,), generator=generator))
            turns = int(torch.randint(4, (1,), generator=generator))
            pairs.append([augment(t, flip, turns) for t in self.crop(lr, hr, top, left, self.lr_patch)])
        return torch.stack([p[0] for p in pairs]), torch.stack(
            [p[1] for p in pairs]
        )  # (B, 3, p, p), (B, 3, sp, sp)

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        sides = {lr.shape for lr, _ in self.val}
        if len(sides) == 1:  # one batch when all centre patches have one size
            yield torch.stack([lr for lr, _ in self.val]), torch.stack([hr for _, hr in self.val])
        else:
            yield from ((lr[None], hr[None]) for lr, hr in self.val)


def augment(x: torch.Tensor, flip: int, turns: int) -> torch.Tensor:
    """A horizontal flip and `turns` quarter turns of a (3, H, W) patch: the 8 symmetries of a square."""
    x = x.flip(2) if flip else x
    return torch.rot90(x, turns, (1, 2))
