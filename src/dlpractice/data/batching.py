"""fit()'s data: the `Batches` protocol, in-memory `TensorData`, and `LengthBatches` for variable-length
examples with little padding (the token-level labs n7, n8).

For LengthBatches, each split is a tuple of row-aligned tensors, those with a sequence axis padded along
dim 1 to the split's longest example (per-example values such as answer positions keep their own shape),
plus each example's length. A training batch is `batch_size` neighbours in length order starting at a
random place (the "bucketing" of HF's group_by_length), cut to its longest member, so a batch of short
sentences costs what short sentences cost. Evaluation walks the same order; `eval_indices` says which
rows each batch holds, so predictions can be put back in the split's own order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch


class Batches(Protocol):
    """What fit() needs from a dataset."""

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]: ...

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, ...]]: ...


class TensorData:
    """In-memory splits of aligned tensors: random minibatches to train, a full pass to evaluate."""

    def __init__(self, splits: dict[str, tuple[torch.Tensor, ...]], eval_batch_size: int = 4096):
        self.splits = splits
        self.eval_batch_size = eval_batch_size

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        tensors = self.splits["train"]
        index = torch.randint(len(tensors[0]), (batch_size,), generator=generator)
        return tuple(t[index] for t in tensors)

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, ...]]:
        tensors = self.splits[split]
        for start in range(0, len(tensors[0]), self.eval_batch_size):
            yield tuple(t[start : start + self.eval_batch_size] for t in tensors)


class LengthBatches:
    def __init__(
        self,
        splits: dict[str, tuple[torch.Tensor, ...]],
        lengths: dict[str, torch.Tensor],
        eval_batch_size: int = 64,
    ):
        self.splits, self.lengths, self.eval_batch_size = splits, lengths, eval_batch_size
        self.order = {name: torch.argsort(n, stable=True) for name, n in lengths.items()}

    def batch(self, split: str, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Rows `index` of every tensor of the split; sequences cut to the longest of those rows."""
        width = int(self.lengths[split].max())
        longest = int(self.lengths[split][index].max())
        return tuple(
            t[index, :longest] if t.dim() > 1 and t.size(1) == width else t[index] for t in self.splits[split]
        )

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        order = self.order["train"]
        start = int(torch.randint(max(1, len(order) - batch_size + 1), (1,), generator=generator))
        return self.batch("train", order[start : start + batch_size])

    def eval_indices(self, split: str) -> Iterator[torch.Tensor]:
        order = self.order[split]
        for start in range(0, len(order), self.eval_batch_size):
            yield order[start : start + self.eval_batch_size]

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, ...]]:
        for index in self.eval_indices(split):
            yield self.batch(split, index)


def pad_rows(rows: list[list[int]], value: int) -> torch.Tensor:
    """Lists of ids of different lengths -> one (N, longest) tensor, padded on the right with `value`."""
    out = torch.full((len(rows), max(map(len, rows))), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out
