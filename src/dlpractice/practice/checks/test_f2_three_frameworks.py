"""Checks of lab f2: the PyTorch training loop reproduces the NumPy one step for step."""

from __future__ import annotations

import pytest

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("f2.1")
def test_torch_loop_matches_the_scratch_engine(impl) -> None:
    """Same weights, same batches, plain SGD: the same losses and final weights as the NumPy loop."""
    from dlpractice.data.digits import load_digits

    cfg = impl.Config(hidden=8, epochs=1, batch_size=64)
    data = load_digits("embedded")
    weights = impl.initial_weights(64, 8, 10, seed=0)
    batches = impl.batch_order(len(data.x_train), cfg, seed=0)
    ours, our_losses = impl.train_numpy(data, "digits", weights, batches, cfg)
    theirs, their_losses = impl.train_torch(data, "digits", weights, batches, cfg)
    assert_close(
        their_losses,
        our_losses,
        "the PyTorch loop should give the NumPy loop's loss at every step "
        "(torch.optim.SGD at cfg.lr, float64, the same batches in the same order)",
        atol=1e-10,
    )
    assert_close(theirs, ours, "the final weights should equal the NumPy loop's", atol=1e-10)
