"""Per-request sampling settings (models/sampling.py) and failure cases (serving.py)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dlpractice.models.sampling import Request, complete_stream, complete_windows, sample_rows
from dlpractice.serving import failure_cases


def test_each_row_keeps_its_own_top_k_and_temperature():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]]).repeat(3, 1)
    temperature = torch.tensor([1.0, 1.0, 100.0])
    top_k = torch.tensor([1, 2, 0])
    draws = torch.stack(
        [sample_rows(logits, temperature, top_k, torch.Generator().manual_seed(s)) for s in range(200)]
    )
    assert set(draws[:, 0].tolist()) == {3}  # top-1: the largest logit only
    assert set(draws[:, 1].tolist()) == {2, 3}  # top-2
    assert set(draws[:, 2].tolist()) == {0, 1, 2, 3}  # every token, nearly uniform at temperature 100


class Successor(nn.Module):
    """A window model (B, T) -> (B, V) that always predicts the last id + 1 (and 0, the stop, after 4)."""

    block_size = 3

    def forward(self, idx: torch.Tensor):
        nxt = (idx[:, -1] + 1) % 5  # (B,)
        return torch.nn.functional.one_hot(nxt, 5).float() * 50, None


class StreamSuccessor(Successor):
    def forward(self, idx: torch.Tensor):
        return torch.stack(
            [super(StreamSuccessor, self).forward(idx[:, : t + 1])[0] for t in range(idx.size(1))], 1
        ), None


def test_windows_continue_each_prompt_until_its_stop_or_its_length():
    model = Successor()
    out = complete_windows(
        model, 3, [Request([1], 10, top_k=1), Request([2, 3], 1, top_k=1), Request([], 2)], stop=0
    )
    assert out == [[2, 3, 4], [4], [1, 2]]


def test_streams_of_different_lengths_are_continued_separately():
    model = StreamSuccessor()
    out = complete_stream(model, 3, [Request([1], 3, top_k=1), Request([2, 3], 2, top_k=1), Request([0], 1)])
    assert out == [[2, 3, 4], [4, 0], [1]]


def test_failure_cases_are_the_most_confident_mistakes_first():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 1])
    cases = failure_cases(["a", "b", "c", "d"], probs, labels, ["neg", "pos"])
    assert [c["input"] for c in cases] == ["b", "c"]
    assert cases[0] == {"input": "b", "label": "neg", "prediction": "pos", "confidence": 0.8}
