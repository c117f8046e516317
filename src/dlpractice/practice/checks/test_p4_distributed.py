"""Checks of lab p4, in one process: the gradient all-reduce against a fake communicator, the data shards
against torch's DistributedSampler, and a pipeline stage against the unsplit model's gradients."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence

import pytest
import torch
from torch import nn
from torch.utils.data import DistributedSampler


@pytest.mark.exercise("p4.1")
def test_gradients_are_averaged_with_one_all_reduce(impl) -> None:
    """Three processes with gradients g, 2 g and 3 g: the average is 2 g, whatever the bucket's layout."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2), nn.Linear(2, 2))
    model(torch.randn(5, 4))[:, :1].sum().backward()
    model[3].weight.grad = None  # a parameter without a gradient (frozen, or unused) is left alone
    model[3].bias.grad = None
    mine = [p.grad.clone() if p.grad is not None else None for p in model.parameters()]
    calls: list[int] = []

    def all_reduce(tensor: torch.Tensor) -> None:  # the sum over the three processes: g + 2 g + 3 g
        calls.append(tensor.numel())
        tensor.mul_(6)

    impl.average_gradients(model.parameters(), 3, all_reduce)
    assert len(calls) == 1, (
        f"expected ONE all-reduce of a flat bucket of every gradient, got {len(calls)} calls: each message "
        "costs a fixed latency, which is why DDP packs gradients into buckets"
    )
    assert calls[0] == sum(g.numel() for g in mine if g is not None), (
        f"the bucket should hold every gradient ({sum(g.numel() for g in mine if g is not None)} numbers), "
        f"it held {calls[0]}"
    )
    for p, g in zip(model.parameters(), mine, strict=True):
        if g is None:
            assert p.grad is None, "a parameter without a gradient must stay without one"
            continue
        assert torch.allclose(p.grad, 2 * g), (
            "after the all-reduce (a SUM over processes) each gradient should be the mean: divide by "
            "world_size and copy the bucket's slice back into the parameter's .grad, in place"
        )


@pytest.mark.exercise("p4.2")
@pytest.mark.parametrize("n", [10, 11, 3, 2])
def test_shards_match_torch_distributed_sampler(impl, n: int) -> None:
    for world in (1, 2, 3, 5):
        for shuffle in (False, True):
            shards = [impl.shard_indices(n, rank, world, shuffle, seed=7) for rank in range(world)]
            want = [list(DistributedSampler(range(n), world, rank, shuffle, seed=7)) for rank in range(world)]
            assert shards == want, (
                f"n={n}, world_size={world}, shuffle={shuffle}: expected {want}, got {shards}. "
                "DistributedSampler pads the order to a multiple of world_size by repeating its start, "
                "then rank r takes order[r::world_size]"
            )
    every = sorted(i for rank in range(3) for i in impl.shard_indices(n, rank, 3))
    assert set(every) == set(range(n)), "together the shards must cover every example"


class FakeWire:
    """One process's end of in-memory point-to-point messages (every process runs here, in turn)."""

    def __init__(self, rank: int, mail: dict[tuple[int, int], deque]):
        self.rank, self.mail = rank, mail

    def send(self, tensor: torch.Tensor, to: int) -> None:
        self.mail[self.rank, to].append(tensor.clone())

    def recv(self, shape: Sequence[int], sender: int) -> torch.Tensor:
        got = self.mail[sender, self.rank].popleft()
        assert tuple(got.shape) == tuple(shape), f"received a tensor of shape {tuple(got.shape)}, not {shape}"
        return got


@pytest.mark.exercise("p4.3")
def test_stages_joined_by_send_and_recv_give_the_unsplit_gradients(impl) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    nn.functional.cross_entropy(model(x), y).backward()
    want = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    stages = [model[0:2], model[2:4], lambda h: nn.functional.cross_entropy(model[4](h), y)]
    shapes = [(8, 6), (8, 5), (8, 4)]
    mail: dict[tuple[int, int], deque] = defaultdict(deque)
    kept = []
    for rank, stage in enumerate(stages):
        kept.append(
            impl.stage_forward(stage, x if rank == 0 else None, shapes[rank], rank, 3, FakeWire(rank, mail))
        )
    for rank in (1, 2):
        received = kept[rank][0]
        assert received.is_leaf and received.requires_grad, (
            f"stage {rank}'s input should be the received tensor made a leaf that requires grad, so that its "
            "gradient can be sent back to the previous stage"
        )
    for (sender, _), queue in mail.items():
        for sent in queue:
            assert not sent.requires_grad, f"stage {sender} sent a tensor with its graph: send out.detach()"
    assert torch.isclose(kept[2][1], nn.functional.cross_entropy(model(x), y)), (
        "the last stage's output should be the loss of the whole model"
    )
    for rank in (2, 1, 0):
        impl.stage_backward(*kept[rank], rank, 3, FakeWire(rank, mail))
    for p, g in zip(model.parameters(), want, strict=True):
        assert p.grad is not None and torch.allclose(p.grad, g, atol=1e-6), (
            "the stages' gradients differ from the unsplit model's: every stage but the first must receive "
            "its input, every stage but the last must send its output on"
        )
