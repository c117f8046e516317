"""Two object detectors for lab v5: a YOLO-style anchor-free grid and a DETR-style set predictor.

Both read a batch of images (B, 3, S, S) and targets (B, M, 5) of rows (class, x0, y0, x1, y1) in pixels,
padded with class -1, and follow the one contract `outputs, loss = model(x, targets)`. `predict(x)` gives
every candidate's box (B, K, 4) in pixels and per-class scores (B, K, C); keeping the best candidates
(NMS for the grid) is the caller's step.

- GridDetector (after YOLO, Redmon et al., 2016, and its anchor-free successors such as FCOS, Tian et
  al., 2019): a small ResNet downsamples by 4; every cell of the (S/4, S/4) grid predicts an objectness
  logit, a class distribution and one box. The cell holding an object's centre is responsible for it
  (the last object drawn wins a cell shared by two). Loss: objectness BCE over all cells, class
  cross-entropy and the GIoU loss at responsible cells, each summed and divided by the objects.
- SetDetector (after DETR, Carion et al., 2020): the same kind of backbone to S/8, a transformer encoder
  over the (S/8)^2 feature tokens (with fixed 2-D sine positions) and a decoder with `queries` learned
  object queries, each predicting a class (or "no object") and a normalised (cx, cy, w, h) box, its centre
  as a shift from the query's learned reference point (as Anchor DETR, Wang et al., 2022). Training
  matches queries to true objects one to one with the Hungarian algorithm (scipy's linear_sum_assignment)
  on DETR's cost (class probability, L1 and GIoU), so no NMS is needed: duplicates are trained away.
Simplified: no pretrained backbone, no FPN, one box per grid cell, no auxiliary decoder losses, no
multi-scale training; GIoU is torchvision's here (models sit beside metrics/, whose hand-written GIoU the
tests check against it).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn
from torchvision.ops import generalized_box_iou, generalized_box_iou_loss

from dlpractice.models.convnets import BasicBlock, conv_bn_relu

BOX_PRIOR = 8.0  # pixels: the grid's width and height when its size logits are 0


def backbone(width: int, downsamplings: int) -> tuple[nn.Sequential, int]:
    """A stem and basic blocks: `downsamplings` halvings of the side, doubling channels (at most 8 width)."""
    layers: list[nn.Module] = [conv_bn_relu(3, width), BasicBlock(width, width)]
    channels = width
    for _ in range(downsamplings):
        layers.append(BasicBlock(channels, min(2 * channels, 8 * width), stride=2))
        channels = min(2 * channels, 8 * width)
    layers.append(BasicBlock(channels, channels))  # one more block at the final scale: a wider view
    return nn.Sequential(*layers), channels


def object_rows(targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, M, 5) padded targets -> image index (K,), class (K,) and box (K, 4) of every real object."""
    real = targets[..., 0] >= 0
    image = torch.nonzero(real)[:, 0]
    return image, targets[real][:, 0].long(), targets[real][:, 1:5]


class GridDetector(nn.Module):
    stride = 4

    def __init__(self, n_classes: int, width: int = 16):
        super().__init__()
        self.n_classes = n_classes
        self.features, channels = backbone(width, downsamplings=2)
        self.head = nn.Conv2d(channels, 5 + n_classes, 1)  # objectness, 4 box numbers, class logits
        nn.init.constant_(self.head.bias[0], -4.0)  # few cells hold an object: start near p = 0.02

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        out = self.head(self.features(x))  # (B, 5 + C, G, G) with G = S / stride
        return out, None if targets is None else self.loss(out, targets)

    def cell_boxes(self, out: torch.Tensor) -> torch.Tensor:
        """(B, 5 + C, G, G) -> (B, G, G, 4) boxes in pixels: a centre within reach of its cell, a size
        around BOX_PRIOR."""
        g = out.shape[-1]
        cells = torch.arange(g, dtype=out.dtype, device=out.device)
        cx = (cells[None, None, :] + 2 * torch.sigmoid(out[:, 1]) - 0.5) * self.stride  # (B, G, G)
        cy = (cells[None, :, None] + 2 * torch.sigmoid(out[:, 2]) - 0.5) * self.stride
        w = BOX_PRIOR * torch.exp(out[:, 3].clamp(max=4))
        h = BOX_PRIOR * torch.exp(out[:, 4].clamp(max=4))
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)

    def loss(self, out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        image, label, box = object_rows(targets)
        g = out.shape[-1]
        centre = ((box[:, :2] + box[:, 2:]) / 2 / self.stride).long().clamp(0, g - 1)  # (K, 2) as (col, row)
        responsible = torch.zeros(out.shape[0], g, g, device=out.device)
        responsible[image, centre[:, 1], centre[:, 0]] = 1.0
        n_objects = max(len(label), 1)
        objectness = F.binary_cross_entropy_with_logits(out[:, 0], responsible, reduction="sum")
        logits = out[image, 5:, centre[:, 1], centre[:, 0]]  # (K, C)
        classes = F.cross_entropy(logits, label, reduction="sum")
        predicted = self.cell_boxes(out)[image, centre[:, 1], centre[:, 0]]  # (K, 4)
        boxes = generalized_box_iou_loss(predicted, box, reduction="sum")
        return (objectness + classes + 2 * boxes) / n_objects

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes (B, G*G, 4) and scores (B, G*G, C) = P(object) * P(class | object)."""
        out, _ = self(x)
        boxes = self.cell_boxes(out).flatten(1, 2)
        scores = torch.sigmoid(out[:, :1]) * torch.softmax(out[:, 5:], dim=1)  # (B, C, G, G)
        return boxes, scores.flatten(2).transpose(1, 2)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    centre, size = boxes[..., :2], boxes[..., 2:]
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)


def sine_code(rows: torch.Tensor, cols: torch.Tensor, d_model: int) -> torch.Tensor:
    """(N,) row and column coordinates (in grid cells, any real value) -> (N, D) 2-D sine encoding, as
    DETR's: half the channels encode the row, half the column, each as sines and cosines of geometrically
    spaced frequencies."""
    quarter = d_model // 4
    frequencies = 1.0 / (100.0 ** (torch.arange(quarter, device=rows.device) / quarter))  # (D/4,)

    def axis(coord: torch.Tensor) -> torch.Tensor:
        angles = coord[:, None] * frequencies  # (N, D/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([axis(rows), axis(cols)], dim=1)


def sine_positions(g: int, d_model: int) -> torch.Tensor:
    """(g * g, D) codes of a g x g grid's cells, row by row. Unlike learned positions starting near 0, they
    tell the encoder where each token is from the first step."""
    rows, cols = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
    return sine_code(rows.reshape(-1).float(), cols.reshape(-1).float(), d_model)


def spread_points(n: int) -> torch.Tensor:
    """(n, 2) (x, y) points in (0, 1) spread over a near-square grid: where the queries start looking."""
    side = math.ceil(math.sqrt(n))
    index = torch.arange(n)
    return torch.stack([(index % side + 0.5) / side, (index // side + 0.5) / side], dim=1)


class SetDetector(nn.Module):
    def __init__(
        self,
        n_classes: int,
        side: int,
        width: int = 16,
        d_model: int = 64,
        layers: int = 2,
        heads: int = 4,
        queries: int = 12,
        no_object_weight: float = 0.1,
    ):
        super().__init__()
        self.n_classes, self.side = n_classes, side
        self.features, channels = backbone(width, downsamplings=3)
        self.project = nn.Conv2d(channels, d_model, 1)
        self.register_buffer("positions", sine_positions(side // 8, d_model))  # (T, D), fixed
        self.queries = nn.Parameter(torch.randn(queries, d_model))
        # each query's reference point, learned: its box centre is predicted as a shift from it and its
        # position code is added to it, so queries split the image between them from the start (as in
        # Anchor DETR, Wang et al., 2022) instead of all starting at the same place
        self.reference = nn.Parameter(torch.logit(spread_points(queries)))  # (Q, 2) as (x, y) logits
        self.transformer = nn.Transformer(
            d_model, heads, layers, layers, dim_feedforward=2 * d_model, dropout=0.0, batch_first=True
        )
        self.classify = nn.Linear(d_model, n_classes + 1)  # the last class is "no object"
        self.box = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, 4))
        weights = torch.ones(n_classes + 1)
        weights[-1] = no_object_weight  # most queries are "no object": weigh them down, as DETR does
        self.register_buffer("class_weights", weights)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        tokens = self.project(self.features(x)).flatten(2).transpose(1, 2)  # (B, T, D), T = (S/8)^2
        reference = torch.sigmoid(self.reference)  # (Q, 2) in (0, 1)
        g = self.side // 8
        where = sine_code(reference[:, 1] * g - 0.5, reference[:, 0] * g - 0.5, self.queries.shape[1])
        queries = (self.queries + where).expand(len(x), -1, -1)  # (B, Q, D)
        decoded = self.transformer(tokens + self.positions, queries)  # (B, Q, D)
        logits = self.classify(decoded)  # (B, Q, C + 1)
        shift = self.box(decoded)  # (B, Q, 4)
        centre = torch.sigmoid(shift[..., :2] + self.reference)  # a shift from the reference, in logits
        size = torch.sigmoid(shift[..., 2:] - 2)  # starting near an eighth of the side, as the objects
        boxes = cxcywh_to_xyxy(torch.cat([centre, size], dim=-1)) * self.side  # (B, Q, 4) pixels
        out = (logits, boxes)
        return out, None if targets is None else self.loss(logits, boxes, targets)

    @torch.no_grad()
    def match(self, logits: torch.Tensor, boxes: torch.Tensor, targets: torch.Tensor):
        """Per image, the Hungarian assignment of queries to true objects minimising DETR's cost:
        -P(true class) + 5 L1 (boxes in units of the side) - 2 GIoU. -> (image, query, object row) (K,).
        Object rows index the targets as given: real rows first, padding after (data/detection.py)."""
        found = []
        probs = logits.softmax(-1)
        for b, rows in enumerate(targets):
            rows = rows[rows[:, 0] >= 0]
            if len(rows) == 0:
                continue
            cost = (
                -probs[b][:, rows[:, 0].long()]
                + 5 * torch.cdist(boxes[b], rows[:, 1:5], p=1) / self.side
                - 2 * generalized_box_iou(boxes[b], rows[:, 1:5])
            )  # (Q, K)
            query, obj = linear_sum_assignment(cost.cpu().numpy())
            found.append(torch.as_tensor(np.stack([np.full(len(query), b), query, obj], axis=1)))
        index = torch.cat(found) if found else torch.zeros(0, 3, dtype=torch.long)
        return index[:, 0], index[:, 1], index[:, 2]

    def loss(self, logits: torch.Tensor, boxes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        image, query, obj = self.match(logits, boxes, targets)
        labels = torch.full(logits.shape[:2], self.n_classes, dtype=torch.long, device=logits.device)
        labels[image, query] = targets[image, obj, 0].long()  # unmatched queries learn "no object"
        classes = F.cross_entropy(logits.transpose(1, 2), labels, weight=self.class_weights)
        n_objects = max(len(image), 1)
        predicted, true = boxes[image, query], targets[image, obj, 1:5]  # (K, 4) each
        l1 = F.l1_loss(predicted, true, reduction="sum") / self.side / n_objects
        giou = generalized_box_iou_loss(predicted, true, reduction="sum") / n_objects
        return classes + 5 * l1 + 2 * giou

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes (B, Q, 4) and scores (B, Q, C): each query's class probabilities, "no object" left out."""
        (logits, boxes), _ = self(x)
        return boxes, logits.softmax(-1)[..., :-1]


class Predicting(nn.Module):
    """A detector whose forward is its predict(): what ONNX export traces."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.detector.predict(x)


def export_onnx(detector: nn.Module, path: Path, side: int) -> Path:
    """The detector's predict() as an ONNX graph (images (B, 3, S, S) -> boxes, scores), any batch size."""
    detector.eval()
    example = torch.rand(2, 3, side, side)
    torch.onnx.export(
        Predicting(detector).eval(),
        (example,),
        str(path),
        input_names=["images"],
        output_names=["boxes", "scores"],
        dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
        dynamo=True,
    )
    return path
