"""makemore models (character-level name generators) in PyTorch, after Karpathy's makemore lectures.

Every model maps a context of previous characters to logits for the next one and follows the contract
`logits, loss = model(idx, targets)` (loss is None without targets). Token 0 is the '.' boundary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Bigram(nn.Module):
    """The next character depends only on the previous one: a (V, V) table of logits."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(vocab_size, vocab_size))  # uniform start: loss = ln V

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.logits[idx[:, -1]]  # (B, V): row of the last context character
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


class MLP(nn.Module):
    """Bengio et al. (2003): embed the last `block_size` characters, concatenate, one tanh hidden layer.

    With BatchNorm after the first linear layer (whose bias it makes redundant) and Kaiming init scaled
    for tanh (gain 5/3), so activations neither saturate nor vanish at the start (makemore lecture 3).
    """

    def __init__(self, vocab_size: int, block_size: int, n_embd: int, n_hidden: int, batchnorm: bool = True):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.fc1 = nn.Linear(block_size * n_embd, n_hidden, bias=not batchnorm)
        self.bn = nn.BatchNorm1d(n_hidden) if batchnorm else nn.Identity()
        self.fc2 = nn.Linear(n_hidden, vocab_size)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.wte.weight)
        nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="tanh")  # std = (5/3) / sqrt(fan_in)
        if self.fc1.bias is not None:
            nn.init.zeros_(self.fc1.bias)
        self.fc2.weight.mul_(0.1)  # start with near-uniform predictions: initial loss ≈ ln V
        nn.init.zeros_(self.fc2.bias)

    def hidden(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-activations (after BatchNorm) and tanh activations of the hidden layer, each (B, H)."""
        emb = self.wte(idx)  # (B, T, C)
        pre = self.bn(self.fc1(emb.flatten(1)))  # (B, H)
        return pre, torch.tanh(pre)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        _, h = self.hidden(idx)
        logits = self.fc2(h)  # (B, V)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


@torch.no_grad()
def generate(
    model: nn.Module,
    block_size: int,
    n: int,
    generator: torch.Generator,
    max_len: int = 30,
    temperature: float = 1.0,
) -> list[list[int]]:
    """Sample `n` names, one character at a time, until the boundary token (0) or `max_len`."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    context = torch.zeros(n, block_size, dtype=torch.long, device=device)  # (n, T): all boundary
    out = torch.zeros(n, 0, dtype=torch.long, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    for _ in range(max_len):
        logits, _ = model(context)
        probs = F.softmax(logits / temperature, dim=-1).cpu()  # (n, V)
        nxt = torch.multinomial(probs, 1, generator=generator).to(device)  # (n, 1)
        nxt[done] = 0
        out = torch.cat([out, nxt], dim=1)
        done |= nxt.squeeze(1) == 0
        if done.all():
            break
        context = torch.cat([context[:, 1:], nxt], dim=1)
    model.train(was_training)
    return [row[: row.index(0)] if 0 in row else row for row in out.tolist()]
