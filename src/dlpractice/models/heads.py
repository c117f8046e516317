"""Hugging Face task models behind our contract, `logits, loss = model(*inputs, targets)`, so that fit()
trains them like any other model: a token classifier (n7) and an extractive question-answering head (n8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TokenClassifier(nn.Module):
    """`logits, loss = model(ids, mask, labels)`: logits (B, L, K); the HF model computes the loss itself,
    cross-entropy over the tokens whose label is not -100 (special tokens, continuation sub-words)."""

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model

    def forward(self, input_ids, attention_mask, labels=None):
        out = self.hf(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        return out.logits, out.loss


class SpanExtractor(nn.Module):
    """`logits, loss = model(ids, mask, token_types, targets)`: logits (B, L, 2) start/end, targets (B, 2)."""

    def __init__(self, hf_model: nn.Module, token_types: bool):
        super().__init__()
        self.hf, self.token_types = hf_model, token_types

    def forward(self, input_ids, attention_mask, token_type_ids, targets=None):
        extra = {"token_type_ids": token_type_ids} if self.token_types else {}
        out = self.hf(input_ids=input_ids, attention_mask=attention_mask, **extra)
        logits = torch.stack([out.start_logits, out.end_logits], dim=-1)  # (B, L, 2)
        loss = None
        if targets is not None:  # the mean of the start and the end cross-entropies: (B·2, L) against (B·2,)
            loss = F.cross_entropy(logits.transpose(1, 2).flatten(0, 1), targets.flatten())
        return logits, loss
