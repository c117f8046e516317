"""data/tabular.py: the generated loans have the weights they claim and a proxy for the group; the Adult
reader parses tiny files in the census format (the real lookup code runs, checksums patched)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from dlpractice.data import tabular
from dlpractice.data.fetch import RealFile
from dlpractice.errors import DlpError

ADULT_ROWS = [
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, "
    "40, United-States, <=50K",
    "50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband, White, Male, "
    "0, 0, 13, United-States, >50K",
    "38, Private, 215646, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, White, Female, 0, 1902, "
    "40, United-States, <=50K",
    "31, ?, 45781, Masters, 14, Never-married, ?, Not-in-family, White, Female, 14084, 0, 50, ?, >50K",
]


def test_loans_follow_their_true_logistic_model() -> None:
    from sklearn.linear_model import LogisticRegression

    table = tabular.loan_table(20000)
    x, y = table.x["train"], table.y["train"]
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(0), 1, atol=1e-4)
    fitted = LogisticRegression(C=100.0, max_iter=1000).fit(x, y).coef_[0]
    np.testing.assert_allclose(fitted, table.true_weights, atol=0.12)  # the label uses these weights
    assert table.true_weights[table.features.index("age")] == 0


def test_the_group_is_no_feature_but_the_neighbourhood_stands_in_for_it() -> None:
    table = tabular.loan_table(5000)
    x, group = table.x["train"], table.group["train"]
    assert x.shape[1] == len(table.features) == 8 and "group" not in table.features
    proxy = np.corrcoef(x[:, table.features.index("neighbourhood_score")], group)[0, 1]
    assert proxy < -0.5, proxy
    approved = [table.y["train"][group == g].mean() for g in (0, 1)]
    assert approved[0] - approved[1] > 0.05, approved
    assert table.describe()["data_source"] == "embedded" and "generated" in table.origin


@pytest.fixture
def adult_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """adult.data (4 rows) and adult.test (a comment line, labels with a full stop) in a data directory,
    their checksums made the published ones."""
    folder = tmp_path / "adult"
    folder.mkdir()
    (folder / "adult.data").write_text("\n".join(ADULT_ROWS * 5) + "\n\n")
    test_rows = [row + "." for row in ADULT_ROWS]
    (folder / "adult.test").write_text("|1x3 Cross validator\n" + "\n".join(test_rows) + "\n")
    files = {}
    for split, spec in tabular.ADULT_FILES.items():
        digest = hashlib.sha256((folder / spec.name).read_bytes()).hexdigest()
        files[split] = RealFile(spec.name, spec.url, digest, spec.places)
    monkeypatch.setattr(tabular, "ADULT_FILES", files)
    return tmp_path


def test_adult_parses_features_labels_and_sex(adult_dir: Path) -> None:
    x, y, sex = tabular.parse_adult((adult_dir / "adult" / "adult.test").read_text())
    assert x.shape == (4, 8) and list(y) == [0, 1, 0, 1] and list(sex) == [0, 0, 1, 1]
    np.testing.assert_allclose(x[1], [50, 13, 13, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(x[3, 3], np.log1p(14084))


def test_real_adult_from_a_data_dir(adult_dir: Path) -> None:
    table = tabular.load_table("auto", 100, adult_dir)
    assert table.source == "real" and table.true_weights is None
    assert len(table.y["train"]) + len(table.y["val"]) == 20 and len(table.y["test"]) == 4
    assert table.group_names == ("male", "female")


def test_missing_real_adult_offline_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DlpError) as error:
        tabular.load_table("real", 100, tmp_path)  # conftest sets DLP_OFFLINE=1
    message = str(error.value)
    assert "\n" not in message and "adult.data not found and DLP_OFFLINE=1" in message
    assert str(tmp_path / "adult" / "adult.data") in message
    assert tabular.load_table("auto", 300, tmp_path).source == "embedded"
