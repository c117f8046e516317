"""What the checks share: comparisons whose failure says in one line what was expected, and by how much
the learner's value is off."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

DIFFERENCE_LINES = ("Greatest absolute difference", "Max absolute difference", "The values for attribute")


def difference(report: str) -> str:
    """The informative line of torch's or NumPy's comparison report (the size of the error, or a shape
    or dtype that differs)."""
    lines = [line.strip() for line in report.splitlines() if line.strip()]
    for wanted in (lambda line: line.startswith(DIFFERENCE_LINES), lambda line: "shapes" in line):
        found = [line for line in lines if wanted(line)]
        if found:
            line = found[0]
            return line[1:-1] if line.startswith("(") and line.endswith(")") else line
    return lines[0] if lines else "values differ"


def assert_close(actual, expected, expected_what: str, **tolerances) -> None:
    """`actual` equals `expected` within `tolerances` (torch's rules for tensors, NumPy's otherwise), else
    an AssertionError whose first line is `expected_what` and the size of the error."""
    try:
        if isinstance(expected, torch.Tensor):
            if not isinstance(actual, torch.Tensor):
                raise AssertionError(f"got a {type(actual).__name__}, not a torch.Tensor")
            torch.testing.assert_close(actual, expected, **tolerances)
        else:
            np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), **tolerances)
    except AssertionError as err:
        raise AssertionError(f"{expected_what} ({difference(str(err))})") from None


def check_against_torch(
    scratch_fn: Callable,
    torch_fn: Callable[..., torch.Tensor],
    arrays: Sequence[np.ndarray],
    atol: float = 1e-6,
    tensor: type | None = None,
) -> None:
    """Same float64 inputs through the scratch engine and through PyTorch: outputs and input gradients must
    agree. `tensor` is the Tensor class under test (a workspace's own when graded there; default the
    package's).

    The output is weighted by random numbers before backward, so every upstream gradient differs."""
    if tensor is None:
        from dlpractice.scratch import Tensor as tensor
    ours = [tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = scratch_fn(*ours), torch_fn(*theirs)
    assert_close(
        out.data, ref.detach().numpy(), "the forward value should equal PyTorch's", atol=atol, rtol=1e-6
    )
    weights = np.random.default_rng(1).standard_normal(out.shape)
    (out * weights).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.grad is not None, f"no gradient reached input {i}: backward must fill .grad of every input"
        assert_close(
            a.grad, b.grad.numpy(), f"the gradient of input {i} should equal PyTorch's", atol=atol, rtol=1e-6
        )


def cell_matches_torch(impl, cell: str) -> None:
    """Unroll the written-out recurrent cell (`impl.RNNCell`, ...) over a batch: the same outputs as
    torch.nn.RNN/LSTM/GRU given the same weights (labs l4 to l6)."""
    torch.manual_seed(0)
    cell_cls = getattr(impl, f"{cell.upper()}Cell")
    torch_cls = getattr(torch.nn, cell.upper())
    reference = torch_cls(5, 7, num_layers=1, batch_first=True)
    ours = cell_cls(5, 7)
    ours.load_state_dict({k.removesuffix("_l0"): v for k, v in reference.state_dict().items()})
    x = torch.randn(3, 6, 5)  # (B, T, E)
    expected, _ = reference(x)  # (B, T, H)
    state = ours.init_state(3, x.device)
    outs = []
    for t in range(6):
        h, state, _ = ours.step(x[:, t], state)
        outs.append(h)
    assert_close(
        torch.stack(outs, 1),
        expected,
        f"the hidden states over 6 steps should equal torch.nn.{cell.upper()}'s with the same weights "
        "(PyTorch's gate order and equations)",
        atol=1e-5,
        rtol=0,
    )
