from pathlib import Path

import numpy as np
import pytest
import torch

from dlpractice.checkpoint import TrainState, capture_rng, read_checkpoint, save_checkpoint
from dlpractice.errors import DlpError


def make_state() -> TrainState:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5)
    return TrainState(
        step=7,
        model=model.state_dict(),
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(),
        batch_rng=torch.Generator().manual_seed(3).get_state(),
        rng=capture_rng(),
        extra={"history": [{"step": 7, "train_loss": 1.5}]},
    )


def test_round_trip(tmp_path: Path):
    state = make_state()
    back = read_checkpoint(save_checkpoint(tmp_path / "c.safetensors", state))
    assert back.step == 7 and back.extra == state.extra
    for key, value in state.model.items():
        assert torch.equal(back.model[key], value)
    assert torch.equal(back.optimizer["state"][0]["exp_avg"], state.optimizer["state"][0]["exp_avg"])
    assert back.optimizer["param_groups"][0]["lr"] == state.optimizer["param_groups"][0]["lr"]
    assert back.scheduler["last_epoch"] == state.scheduler["last_epoch"]
    assert torch.equal(back.batch_rng, state.batch_rng)
    assert np.array_equal(back.rng["numpy"][1], state.rng["numpy"][1])
    assert back.rng["python"] == state.rng["python"]


def test_truncated_checkpoint_is_refused(tmp_path: Path):
    path = save_checkpoint(tmp_path / "c.safetensors", make_state())
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DlpError, match="unreadable"):
        read_checkpoint(path)


def test_tampered_checkpoint_is_refused(tmp_path: Path):
    path = save_checkpoint(tmp_path / "c.safetensors", make_state())
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside a tensor
    path.write_bytes(bytes(data))
    with pytest.raises(DlpError, match="integrity check"):
        read_checkpoint(path)


def test_not_a_checkpoint(tmp_path: Path):
    path = tmp_path / "c.safetensors"
    path.write_text("hello")
    with pytest.raises(DlpError):
        read_checkpoint(path)


def test_write_is_atomic(tmp_path: Path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, make_state())
    save_checkpoint(path, make_state())
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temp files left behind
