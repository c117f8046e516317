"""The two detectors: shapes of what they predict, the grid's box decoding, the set predictor's Hungarian
matching against brute force, both learning a small batch, and the grid's ONNX export against onnxruntime."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import generalized_box_iou

from dlpractice.data.detection import generate_shapes
from dlpractice.models.detectors import GridDetector, SetDetector, export_onnx, sine_positions


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    x, targets = generate_shapes(8, seed=0)
    return torch.as_tensor(x), torch.as_tensor(targets)


def test_both_detectors_predict_boxes_and_class_scores(batch) -> None:
    x, targets = batch
    torch.manual_seed(0)
    grid, detr = GridDetector(8, width=4), SetDetector(8, 64, width=4, d_model=16, layers=1, queries=10)
    for model, candidates in ((grid, 16 * 16), (detr, 10)):
        _, loss = model(x, targets)
        assert loss.ndim == 0 and torch.isfinite(loss)
        model.eval()
        boxes, scores = model.predict(x)
        assert boxes.shape == (8, candidates, 4) and scores.shape == (8, candidates, 8)
        assert (boxes[..., 2] >= boxes[..., 0]).all() and (scores >= 0).all()
        assert (scores.sum(-1) <= 1 + 1e-6).all()  # P(object) times P(class), or classes minus "no object"


def test_grid_cells_decode_to_a_prior_sized_box_around_their_centre() -> None:
    model = GridDetector(3, width=4)
    out = torch.zeros(1, 8, 4, 4)  # all logits 0: centre offset 2 * 0.5 - 0.5 = 0.5 cells, size BOX_PRIOR
    boxes = model.cell_boxes(out)
    assert boxes[0, 1, 2].tolist() == pytest.approx([2.5 * 4 - 4, 1.5 * 4 - 4, 2.5 * 4 + 4, 1.5 * 4 + 4])


def test_hungarian_matching_finds_the_cheapest_assignment(batch) -> None:
    x, targets = batch
    torch.manual_seed(1)
    model = SetDetector(8, 64, width=4, d_model=16, layers=1, queries=5)
    with torch.no_grad():
        (logits, boxes), _ = model(x[:1])
    three = targets[:1, :3]  # three objects for five queries: 60 assignments to try
    rows = three[0]
    image, query, obj = model.match(logits, boxes, three)
    assert sorted(obj.tolist()) == list(range(len(rows))) and (image == 0).all()
    probs = logits[0].softmax(-1)

    cost = (
        -probs[:, rows[:, 0].long()]
        + 5 * torch.cdist(boxes[0], rows[:, 1:5], p=1) / 64
        - 2 * generalized_box_iou(boxes[0], rows[:, 1:5])
    )
    best = min(
        sum(cost[q, k] for k, q in enumerate(chosen)) for chosen in itertools.permutations(range(5), 3)
    )
    assert float(sum(cost[q, k] for q, k in zip(query, obj))) == pytest.approx(float(best), abs=1e-5)


@pytest.mark.parametrize("kind", ["grid", "detr"])
def test_a_detector_learns_a_small_batch(batch, kind: str) -> None:
    x, targets = batch
    torch.manual_seed(0)
    model = GridDetector(8, width=8) if kind == "grid" else SetDetector(8, 64, width=8, d_model=32, layers=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        _, loss = model(x, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.skipif(
    importlib.util.find_spec("onnxscript") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="ONNX export needs `pip install onnx onnxscript onnxruntime`",
)
def test_grid_detector_exported_to_onnx_gives_the_same_outputs_in_onnxruntime(batch, tmp_path: Path) -> None:
    import onnxruntime

    x, _ = batch
    torch.manual_seed(0)
    model = GridDetector(8, width=4).eval()
    path = export_onnx(model, tmp_path / "grid.onnx", side=64)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    boxes, scores = session.run(None, {"images": x[:5].numpy()})  # a batch size the export never saw
    with torch.no_grad():
        ref_boxes, ref_scores = model.predict(x[:5])
    assert np.abs(boxes - ref_boxes.numpy()).max() < 1e-3
    assert np.abs(scores - ref_scores.numpy()).max() < 1e-5


def test_sine_positions_give_every_grid_token_its_own_code() -> None:
    codes = sine_positions(8, 32)
    assert codes.shape == (64, 32) and codes.abs().max() <= 1
    assert len({tuple(row.round(decimals=4).tolist()) for row in codes}) == 64
    # the first half encodes the row, the second the column: tokens of one row share the first half
    assert torch.equal(codes[0, :16], codes[7, :16]) and not torch.equal(codes[0, 16:], codes[7, 16:])
