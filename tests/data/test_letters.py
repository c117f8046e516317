import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from dlpractice.data import letters
from dlpractice.errors import DlpError


@pytest.fixture(scope="module")
def small():
    return letters.load_letters(n_per_class=20, seed=3)


def test_shapes_types_and_range(small) -> None:
    n = 26 * 20
    assert len(small.x_train) + len(small.x_val) + len(small.x_test) == n
    for part in ("train", "val", "test"):
        x, y = small.arrays(part)
        assert x.dtype == np.float32 and x.shape[1:] == (28, 28)
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert y.dtype == np.int64 and set(np.unique(y)) <= set(range(26))
    assert len(np.unique(small.y_train)) == 26  # stratified: every letter in training
    assert letters.LETTERS[0] == "A" and letters.LETTERS[25] == "Z" and len(letters.LETTERS) == 26
    assert small.source == "embedded" and "DejaVu" in small.origin


def test_every_image_has_ink_inside_the_frame(small) -> None:
    x = small.x_train
    ink = (x > 0.5).sum(axis=(1, 2))
    assert ink.min() >= 8  # a glyph (a thin small "I" has ~14 pixels), not just noise
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    assert (border > 0.5).mean() < 0.02  # glyphs stay mostly inside the 28x28 frame


def test_seeded_same_pixels_and_other_seed_differs(small) -> None:
    again = letters.load_letters(n_per_class=20, seed=3)
    np.testing.assert_array_equal(again.x_train, small.x_train)
    other = letters.load_letters(n_per_class=20, seed=4)
    assert not np.allclose(other.x_train, small.x_train)


def test_letters_carry_their_class(small) -> None:
    # 1-nearest-neighbour on raw pixels from 12 images a letter: well above chance (1/26 = 3.8 %), yet
    # far from perfect, since size, face, rotation and shift vary (measured: 32 %)
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    clf = KNeighborsClassifier(n_neighbors=1).fit(flat(small.x_train), small.y_train)
    accuracy = clf.score(flat(small.x_test), small.y_test)
    assert 0.2 < accuracy < 0.9


def test_bad_count_is_one_line() -> None:
    with pytest.raises(DlpError, match="n_per_class must be at least 1"):
        letters.load_letters(n_per_class=0)
