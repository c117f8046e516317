"""Continuing many prompts at once, each with its own temperature, top-k and length: what serving needs.

`dlp sample` draws n samples with one setting; a server answers a batch of requests that each chose
their own. Both loops below run one forward pass per new token for the whole batch; the per-row
settings are tensors, so a batch of 16 costs one model call per step, not 16.
- window models (makemore l2-l7): (B, block_size) ids -> (B, V) logits; a prompt is right-aligned in a
  window of boundary ids (0), as training saw the start of a name.
- stream models (GPT, l8): (B, T) -> (B, T, V); without a padding mask, rows of one length share a pass.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Request:
    """One continuation to draw: the prompt's ids and its settings (top_k 0 keeps every token)."""

    ids: list[int]
    max_new: int
    temperature: float = 1.0
    top_k: int = 0


def sample_rows(
    logits: torch.Tensor, temperature: torch.Tensor, top_k: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """One token per row (B,) from logits (B, V), row i at temperature[i] keeping its top_k[i] largest."""
    vocab = logits.size(-1)
    logits = logits.float() / temperature[:, None]
    k = torch.where(top_k > 0, top_k.clamp(max=vocab), vocab)  # (B,)
    kth = logits.sort(dim=-1, descending=True).values.gather(1, (k - 1)[:, None])  # (B, 1)
    logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(F.softmax(logits, dim=-1).cpu(), 1, generator=generator).squeeze(1)


def settings(requests: list[Request]) -> tuple[torch.Tensor, torch.Tensor]:
    temperature = torch.tensor([r.temperature for r in requests], dtype=torch.float32)
    return temperature, torch.tensor([r.top_k for r in requests], dtype=torch.long)


@torch.no_grad()
def complete_windows(
    model: nn.Module, block_size: int, requests: list[Request], stop: int = 0, generator=None
) -> list[list[int]]:
    """Each request's new ids, up to its max_new or the `stop` id (not included)."""
    model.eval()
    context = torch.zeros(len(requests), block_size, dtype=torch.long)  # (B, T): all boundary
    for row, r in enumerate(requests):
        tail = r.ids[-block_size:]
        if tail:
            context[row, -len(tail) :] = torch.tensor(tail)
    temperature, top_k = settings(requests)
    out: list[list[int]] = [[] for _ in requests]
    live = [r.max_new > 0 for r in requests]
    while any(live):
        nxt = sample_rows(model(context)[0], temperature, top_k, generator)  # (B,)
        for row, token in enumerate(nxt.tolist()):
            if live[row]:
                if token == stop:
                    live[row] = False
                    continue
                out[row].append(token)
                live[row] = len(out[row]) < requests[row].max_new
        context = torch.cat([context[:, 1:], nxt[:, None]], dim=1)
    return out


@torch.no_grad()
def complete_stream(
    model: nn.Module, block_size: int, requests: list[Request], generator=None
) -> list[list[int]]:
    """Each request's new ids (max_new of them): rows of one prompt length share each forward pass."""
    model.eval()
    groups: dict[int, list[int]] = defaultdict(list)
    for row, r in enumerate(requests):
        groups[len(r.ids)].append(row)
    out: list[list[int]] = [[] for _ in requests]
    for rows in groups.values():
        chosen = [requests[i] for i in rows]
        idx = torch.tensor([r.ids for r in chosen], dtype=torch.long)  # (b, T)
        temperature, top_k = settings(chosen)
        for _ in range(max(r.max_new for r in chosen)):
            logits = model(idx[:, -block_size:])[0][:, -1, :]  # (b, V): the last position
            idx = torch.cat([idx, sample_rows(logits, temperature, top_k, generator)[:, None]], dim=1)
        for j, (i, r) in enumerate(zip(rows, chosen)):
            out[i] = idx[j, len(r.ids) : len(r.ids) + r.max_new].tolist()
    return out
