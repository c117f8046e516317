"""Tables for lab p6: a generated "loan" table whose true log-odds are known, or the real UCI Adult census.

Embedded (generated, never real): eight applicant features, drawn independently except one, and an approval
label drawn from a logistic model whose weights are known: log-odds = b + sum_i w_i x_i. So every
explanation can be scored against the truth: for a model that learned the log-odds, the Shapley value of
feature i against a background set is w_i (x_i - mean of the background's x_i). Age has weight 0 (it is
there to be ignored). A protected attribute (group 1 in about 35 % of rows) never enters the label nor
the model, but the neighbourhood score is a proxy for it (its mean is 20 points lower in group 1), so a
model that never sees the group still approves group 1 less often.
Real: the UCI Adult census (Kohavi, 1996), adult.data (32,561 rows: train and validation) and adult.test
(16,281 rows: test) from the UCI archive; label income > 50K, protected attribute sex (group 1: female),
never a model input; eight features: age, years of education, hours a week, log capital gain and loss,
married, a professional occupation, self-employed. No true weights exist for it.
Both are standardised with the training split's mean and standard deviation (what the models read).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlpractice.data.fetch import RealFile, find_local, locate
from dlpractice.errors import DlpError

SPLIT_SEED = 42
ADULT_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult"
ADULT_FILES = {
    "train": RealFile(
        "adult.data",
        f"{ADULT_URL}/adult.data",
        "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
        ("adult/adult.data", "adult.data"),
    ),
    "test": RealFile(
        "adult.test",
        f"{ADULT_URL}/adult.test",
        "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
        ("adult/adult.test", "adult.test"),
    ),
}
ADULT_COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
)
ADULT_FEATURES = (
    "age",
    "education_years",
    "hours_per_week",
    "log_capital_gain",
    "log_capital_loss",
    "married",
    "professional",
    "self_employed",
)
PROFESSIONAL = {"Exec-managerial", "Prof-specialty"}

# The generated loans: feature -> (mean, std) of the population, and the true log-odds per std.
LOAN_FEATURES = {
    "income_k": (55.0, 18.0),
    "debt_to_income_pct": (30.0, 10.0),
    "credit_history_years": (12.0, 7.0),
    "late_payments": (1.0, 1.0),
    "loan_amount_k": (20.0, 8.0),
    "years_employed": (6.0, 6.0),
    "age": (45.0, 14.0),
    "neighbourhood_score": (53.0, 14.0),
}
LOAN_EFFECTS = np.array([1.0, -0.9, 0.6, -0.8, -0.4, 0.3, 0.0, 0.5])  # log-odds per population std
LOAN_INTERCEPT = 0.3
GROUP_SHARE = 0.35
PROXY_GAP = 20.0  # points of neighbourhood score that group 1 lacks on average


@dataclass(frozen=True)
class Table:
    """Standardised features, labels and protected groups per split ("train", "val", "test")."""

    x: dict[str, np.ndarray]  # (N, F) float32
    y: dict[str, np.ndarray]  # (N,) int64, 1 = approved / income > 50K
    group: dict[str, np.ndarray]  # (N,) int64, the protected attribute: never a model input
    features: tuple[str, ...]
    group_names: tuple[str, str]
    true_weights: np.ndarray | None  # (F,) true log-odds per standardised unit; None for real data
    source: str  # "embedded" or "real"
    origin: str

    def describe(self) -> dict[str, str | int]:
        return {
            "data_source": self.source,
            "data_origin": self.origin,
            "split_seed": SPLIT_SEED,
            **{f"n_{split}": len(y) for split, y in self.y.items()},
        }


def generate_loans(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n applicants (n, 8) in their own units, labels drawn from the true logistic model, groups."""
    rng = np.random.default_rng(seed)
    group = (rng.random(n) < GROUP_SHARE).astype(np.int64)
    mean, std = (np.array(v) for v in zip(*LOAN_FEATURES.values(), strict=True))
    x = mean + std * rng.standard_normal((n, len(mean)))
    x[:, 3] = rng.poisson(mean[3], n)  # late payments are counts (Poisson: mean = variance = 1)
    # the proxy: group 1 lives where the score is lower; the gap moves the population mean to 53
    x[:, 7] = 60.0 - PROXY_GAP * group + 12.0 * rng.standard_normal(n)
    x[:, [0, 4]] = np.maximum(x[:, [0, 4]], 1.0)
    x[:, [1, 2, 5]] = np.maximum(x[:, [1, 2, 5]], 0.0)
    log_odds = LOAN_INTERCEPT + (x - mean) / std @ LOAN_EFFECTS
    y = (rng.random(n) < 1 / (1 + np.exp(-log_odds))).astype(np.int64)
    return x, y, group


def loan_weights() -> np.ndarray:
    """The true log-odds per unit of each feature (n_features,)."""
    std = np.array([s for _, s in LOAN_FEATURES.values()])
    return LOAN_EFFECTS / std


def parse_adult(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (N, 8), labels (N,) and sex (1 = female) from adult.data or adult.test (whose first line
    is a comment and whose labels end in a full stop). Rows with too few fields are skipped."""
    features, labels, sex = [], [], []
    for fields in csv.reader(io.StringIO(text), skipinitialspace=True):
        if len(fields) != len(ADULT_COLUMNS) or fields[0].startswith("|"):
            continue
        row = dict(zip(ADULT_COLUMNS, fields, strict=True))
        features.append(
            [
                float(row["age"]),
                float(row["education_num"]),
                float(row["hours_per_week"]),
                np.log1p(float(row["capital_gain"])),
                np.log1p(float(row["capital_loss"])),
                float(row["marital_status"].startswith("Married-")),
                float(row["occupation"] in PROFESSIONAL),
                float(row["workclass"].startswith("Self-emp")),
            ]
        )
        labels.append(int(row["income"].rstrip(".") == ">50K"))
        sex.append(int(row["sex"] == "Female"))
    if not labels:
        raise DlpError("no Adult census rows found: is this adult.data or adult.test?")
    return np.array(features), np.array(labels, dtype=np.int64), np.array(sex, dtype=np.int64)


def split_indices(n: int, fractions: tuple[float, ...]) -> list[np.ndarray]:
    """A seeded shuffle of range(n) cut into len(fractions) + 1 parts (the last takes the rest)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    cuts = np.cumsum([round(f * n) for f in fractions])
    return np.split(order, cuts)


def standardised(
    x: dict[str, np.ndarray], y: dict[str, np.ndarray], group: dict[str, np.ndarray], **info
) -> Table:
    """The table with every split scaled by the training split's mean and std (a constant column: 1)."""
    mean, std = x["train"].mean(0), x["train"].std(0)
    std = np.where(std > 0, std, 1.0)
    scaled = {split: ((v - mean) / std).astype(np.float32) for split, v in x.items()}
    weights = info.pop("weights", None)
    true = None if weights is None else (weights * std).astype(np.float64)  # per unit -> per std
    return Table(scaled, y, group, true_weights=true, **info)


def loan_table(n: int) -> Table:
    """n generated applicants, split 60/20/20."""
    x, y, group = generate_loans(n, SPLIT_SEED)
    parts = dict(zip(("train", "val", "test"), split_indices(n, (0.6, 0.2)), strict=True))
    return standardised(
        {s: x[i] for s, i in parts.items()},
        {s: y[i] for s, i in parts.items()},
        {s: group[i] for s, i in parts.items()},
        features=tuple(LOAN_FEATURES),
        group_names=("group 0", "group 1"),
        weights=loan_weights(),
        source="embedded",
        origin="generated: loan applicants, logistic label with known weights (not real data)",
    )


def adult_table(directory: str | Path | None = None) -> Table:
    """adult.data split 90/10 into train and validation; adult.test is the test split."""
    paths = {split: locate(spec, directory) for split, spec in ADULT_FILES.items()}
    train_x, train_y, train_g = parse_adult(paths["train"].read_text(encoding="utf-8"))
    test_x, test_y, test_g = parse_adult(paths["test"].read_text(encoding="utf-8"))
    val, train = split_indices(len(train_y), (0.1,))
    return standardised(
        {"train": train_x[train], "val": train_x[val], "test": test_x},
        {"train": train_y[train], "val": train_y[val], "test": test_y},
        {"train": train_g[train], "val": train_g[val], "test": test_g},
        features=ADULT_FEATURES,
        group_names=("male", "female"),
        source="real",
        origin=f"UCI Adult census: {paths['train'].parent}",
    )


def load_table(source: str, n_generated: int, directory: str | Path | None = None) -> Table:
    """Real Adult (`real`, or `auto` when its files are on disk) or the generated loans (`embedded`)."""
    if source not in ("embedded", "real", "auto"):
        raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")
    if source == "auto":
        on_disk = all(find_local(spec, directory) for spec in ADULT_FILES.values())
        source = "real" if on_disk else "embedded"
    return adult_table(directory) if source == "real" else loan_table(n_generated)
