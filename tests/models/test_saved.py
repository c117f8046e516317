"""Loading a run's model back: the weights round-trip; no weights, damaged weights, weights of another model
and a damaged vocabulary are each one line."""

from __future__ import annotations

import pytest
import torch

from dlpractice.checkpoint import save_weights
from dlpractice.errors import DlpError
from dlpractice.models.saved import WEIGHTS, load_run_model, read_run_json


def mlp(hidden: int = 4) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.Dropout(0.5), torch.nn.Linear(hidden, 2))


@pytest.fixture
def run_dir(tmp_path):
    torch.manual_seed(0)
    save_weights(tmp_path / WEIGHTS, mlp())
    return tmp_path


def test_the_weights_come_back_in_eval_mode(run_dir):
    torch.manual_seed(0)
    trained = mlp()
    torch.manual_seed(1)  # another initialisation: only loading can make it equal
    model = load_run_model(run_dir, mlp())
    assert not model.training
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_no_weights_yet_is_one_line(tmp_path):
    with pytest.raises(DlpError, match=f"run {tmp_path.name} has no trained weights"):
        load_run_model(tmp_path, mlp())


def test_truncated_weights_are_one_line(run_dir):
    path = run_dir / WEIGHTS
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DlpError, match="unreadable \\(truncated or damaged\\)"):
        load_run_model(run_dir, mlp())


def test_weights_of_another_model_say_what_differs(run_dir):
    with pytest.raises(DlpError, match=r"does not fit .* 0.weight is \(4, 3\), the model's \(8, 3\)") as err:
        load_run_model(run_dir, mlp(hidden=8))
    assert "\n" not in str(err.value)
    with pytest.raises(DlpError, match=r"2 tensors missing \(3.bias, 3.weight\); 2 unknown tensors"):
        deeper = torch.nn.Sequential(*mlp()[:2], torch.nn.Identity(), torch.nn.Linear(4, 2))  # 3.*, not 2.*
        load_run_model(run_dir, deeper)


def test_run_json_missing_or_damaged(tmp_path):
    (tmp_path / "vocab.json").write_text('["a", "b"]')
    assert read_run_json(tmp_path, "vocab.json") == ["a", "b"]
    with pytest.raises(DlpError, match="has no other.json"):
        read_run_json(tmp_path, "other.json")
    (tmp_path / "vocab.json").write_text('["a", ')
    with pytest.raises(DlpError, match="vocab.json is unreadable"):
        read_run_json(tmp_path, "vocab.json")
