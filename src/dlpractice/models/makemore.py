"""makemore models (character-level name generators) in PyTorch, after Karpathy's makemore lectures.

Every model maps a context of previous characters to logits for the next one and follows the contract
`logits, loss = model(idx, targets)` (loss is None without targets). Token 0 is the '.' boundary.
"""

from __future__ import annotations

import math

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


# --------------------------------------------------------------------------------------------------
# L3 · WaveNet-style hierarchical model (makemore lecture 5; van den Oord et al., 2016)
# --------------------------------------------------------------------------------------------------


class FlattenConsecutive(nn.Module):
    """Fuse each run of `n` consecutive positions into one: (B, T, C) -> (B, T // n, C * n).

    Stacked, these layers build a binary tree over the context: 8 characters -> 4 pairs -> 2 -> 1, so each
    layer mixes neighbours and the receptive field doubles per level (a dilated causal convolution
    evaluated at the last position only). A length-1 time axis is squeezed away: (B, 1, C*n) -> (B, C*n).
    """

    def __init__(self, n: int = 2):
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN EXERCISE l3.1: fuse each n consecutive positions into one (B, T, C) -> (B, T//n, C*n)
        B, T, C = x.shape
        x = x.reshape(B, T // self.n, C * self.n)  # neighbours' channels side by side
        if x.shape[1] == 1:
            x = x.squeeze(1)  # (B, C*n)
        return x
        # END EXERCISE


class SeqBatchNorm(nn.Module):
    """BatchNorm that also accepts (B, T, C): statistics over batch *and* time, one per channel.

    The lecture's bug: nn.BatchNorm1d-style code that reduces over dim 0 only keeps separate statistics
    per position of a (B, T, C) input, estimated from B samples each. Reducing over (0, 1) is the fix.
    """

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            # BEGIN EXERCISE l3.2: batch statistics over every axis but the channels; update the running ones
            dims = tuple(range(x.dim() - 1))  # (0,) for (B, C); (0, 1) for (B, T, C)
            mean = x.mean(dims)  # (C,)
            var = x.var(dims, unbiased=False)  # (C,)
            with torch.no_grad():
                n = x.numel() // x.shape[-1]
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / max(1, n - 1), self.momentum)
            # END EXERCISE
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class WaveNet(nn.Module):
    """Embed `block_size` characters, then log2(block_size) levels of (fuse pairs, linear, BatchNorm, tanh).

    block_size must be a power of `fuse`. Each level has the same width `n_hidden`; the head sees one
    vector that summarises the whole context, built bottom-up from pairs.
    """

    def __init__(self, vocab_size: int, block_size: int, n_embd: int, n_hidden: int, fuse: int = 2):
        super().__init__()
        levels = round(math.log(block_size, fuse))
        if fuse**levels != block_size:
            raise ValueError(f"block_size {block_size} is not a power of {fuse}")
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        layers: list[nn.Module] = []
        width = n_embd
        for _ in range(levels):
            layers += [
                FlattenConsecutive(fuse),
                nn.Linear(width * fuse, n_hidden, bias=False),
                SeqBatchNorm(n_hidden),
                nn.Tanh(),
            ]
            width = n_hidden
        self.levels = nn.Sequential(*layers)
        self.head = nn.Linear(n_hidden, vocab_size)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.wte.weight)
        for layer in self.levels:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="tanh")
        self.head.weight.mul_(0.1)  # near-uniform first predictions
        nn.init.zeros_(self.head.bias)

    def activations(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """The tanh output of every level: (B, T/2, H), (B, T/4, H), ..., (B, H)."""
        x = self.wte(idx)  # (B, T, C)
        out = []
        for layer in self.levels:
            x = layer(x)
            if isinstance(layer, nn.Tanh):
                out.append(x)
        return out

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.head(self.activations(idx)[-1])  # (B, V)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


# --------------------------------------------------------------------------------------------------
# Sequence models (l4-l7): read a name from its start, predict at every position
# --------------------------------------------------------------------------------------------------


def left_align(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-aligned context windows ('....em') -> the same context from its start ('.em....').

    A window's leading boundary tokens are padding; one of them is kept as the start token. Returns the
    aligned (B, T) ids and, per row, the position of the last real token: a causal model's output there is
    its prediction for the window. Exact when block_size exceeds the longest name (every window then
    starts with a boundary); a full window with none is read as it is.
    """
    B, T = idx.shape
    lead = (idx == 0).long().cumprod(1).sum(1)  # (B,) leading boundary tokens
    shift = (lead - 1).clamp(min=0)  # (B,) keep one as the start token
    pos = torch.arange(T, device=idx.device).unsqueeze(0) + shift.unsqueeze(1)  # (B, T)
    aligned = idx.gather(1, pos.clamp(max=T - 1)).masked_fill(pos > T - 1, 0)
    return aligned, T - 1 - shift


def name_sequences(words: list[list[int]], block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoded names -> inputs '.emma' and targets 'emma.' per position, padded to block_size.

    X (N, T) is padded with the boundary (0) and Y (N, T) with -1, which the loss ignores. A name longer
    than block_size - 1 is cut.
    """
    X = torch.zeros(len(words), block_size, dtype=torch.long)
    Y = torch.full((len(words), block_size), -1, dtype=torch.long)
    for i, ids in enumerate(words):
        x, y = [0, *ids][:block_size], [*ids, 0][:block_size]
        X[i, : len(x)] = torch.tensor(x)
        Y[i, : len(y)] = torch.tensor(y)
    return X, Y


def name_rows(words: list[list[int]], block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole names side by side, as many as fit a row: inputs '.emma.ava' and targets 'emma.ava.'.

    Packed like `name_stream` (little padding) but no name is cut: with `name_segments`, every target
    sees its own name from the start, exactly as evaluation does. X is padded with 0, Y with -1.
    """
    rows: list[tuple[list[int], list[int]]] = [([], [])]
    for ids in words:
        x, y = [0, *ids][:block_size], [*ids, 0][:block_size]
        if len(rows[-1][0]) + len(x) > block_size:
            rows.append(([], []))
        rows[-1][0].extend(x)
        rows[-1][1].extend(y)
    X = torch.zeros(len(rows), block_size, dtype=torch.long)
    Y = torch.full((len(rows), block_size), -1, dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        X[i, : len(x)], Y[i, : len(y)] = torch.tensor(x), torch.tensor(y)
    return X, Y


def future_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) bool, True above the diagonal: the positions after each one, which it may not read."""
    return torch.ones(T, T, dtype=torch.bool, device=device).triu(1)


def name_segments(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For rows of names that each start with '.' (0): positions counted from each name's start (B, T)
    and the attention mask (B, 1, T, T), True where a position would look at the future or at another name.
    """
    T = idx.size(1)
    at = torch.arange(T, device=idx.device)
    start = torch.where(idx == 0, at, 0).cummax(1).values  # (B, T): where each position's name began
    name = (idx == 0).cumsum(1)  # (B, T): which name of the row
    other = name[:, :, None] != name[:, None, :]  # (B, T, T)
    return at - start, (other | future_mask(T, idx.device)).unsqueeze(1)


class SequenceLM(nn.Module):
    """What l4-l7 share: `hidden(idx)` gives a state per position, `head` turns states into logits.

    forward() takes either per-position targets (B, T) for training on whole names (teacher forcing;
    -1 is ignored) or next-character targets (B,) for right-aligned windows, the contract of l1-l3
    that evaluate() and generate() use: then the window is left-aligned and read at its last character.
    """

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, H)
        raise NotImplementedError

    def head(self, h: torch.Tensor) -> torch.Tensor:  # (..., H) -> (..., V)
        raise NotImplementedError

    def logits_all(self, idx: torch.Tensor) -> torch.Tensor:
        """Next-character logits at every position of left-aligned sequences: (B, T, V)."""
        return self.head(self.hidden(idx))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        if targets is not None and targets.dim() == 2:
            logits = self.logits_all(idx)  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
            return logits, loss
        aligned, last = left_align(idx)
        h = self.hidden(aligned)[torch.arange(len(idx), device=idx.device), last]  # (B, H)
        logits = self.head(h)  # (B, V)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


# --------------------------------------------------------------------------------------------------
# L4-L6 · recurrent cells written out in torch ops; parameter names and layouts match nn.RNN/LSTM/GRU
# --------------------------------------------------------------------------------------------------

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class Cell(nn.Module):
    """One recurrent layer's step. Weights stacked per gate as PyTorch does: (G*H, E) and (G*H, H)."""

    gates: tuple[str, ...] = ("h",)

    def __init__(self, n_in: int, n_hidden: int):
        super().__init__()
        g, self.n_hidden = len(self.gates), n_hidden
        self.weight_ih = nn.Parameter(torch.empty(g * n_hidden, n_in))
        self.weight_hh = nn.Parameter(torch.empty(g * n_hidden, n_hidden))
        self.bias_ih = nn.Parameter(torch.empty(g * n_hidden))
        self.bias_hh = nn.Parameter(torch.empty(g * n_hidden))
        bound = 1 / math.sqrt(n_hidden)  # PyTorch's init for its recurrent layers
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def init_state(self, batch: int, device: torch.device) -> State:
        return torch.zeros(batch, self.n_hidden, device=device)

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State, dict[str, torch.Tensor]]:
        """x (B, E), state -> output h (B, H), new state, and the gate activations (each (B, H))."""
        raise NotImplementedError


class RNNCell(Cell):
    """Elman RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh)."""

    def step(self, x, state):
        # BEGIN EXERCISE l4.1: one step of the tanh RNN: the new hidden state from x and h
        h = torch.tanh(
            x @ self.weight_ih.T + self.bias_ih + state @ self.weight_hh.T + self.bias_hh
        )  # (B, H)
        # END EXERCISE
        return h, h, {"h": h}


class LSTMCell(Cell):
    """LSTM (Hochreiter & Schmidhuber, 1997) with a forget gate; gate order i, f, g, o as in nn.LSTM."""

    gates = ("input", "forget", "cell", "output")

    def init_state(self, batch, device):
        zeros = torch.zeros(batch, self.n_hidden, device=device)
        return zeros, zeros

    def step(self, x, state):
        h, c = state  # (B, H) each
        # BEGIN EXERCISE l5.1: the four gates, then the new cell and hidden states
        z = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh  # (B, 4H)
        i, f, g, o = z.chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g  # forget some of the old memory, write some new
        h = o * torch.tanh(c)  # expose part of it
        # END EXERCISE
        return h, (h, c), {"input": i, "forget": f, "cell": g, "output": o}


class GRUCell(Cell):
    """GRU (Cho et al., 2014); gate order r, z, n as in nn.GRU (the reset gate acts after W_hn h)."""

    gates = ("reset", "update", "candidate")

    def step(self, x, state):
        h = state  # (B, H)
        # BEGIN EXERCISE l6.1: reset and update gates, the candidate state, and the blend of old and new
        r_x, z_x, n_x = (x @ self.weight_ih.T + self.bias_ih).chunk(3, dim=1)
        r_h, z_h, n_h = (h @ self.weight_hh.T + self.bias_hh).chunk(3, dim=1)
        r = torch.sigmoid(r_x + r_h)
        z = torch.sigmoid(z_x + z_h)
        n = torch.tanh(n_x + r * n_h)
        h = (1 - z) * n + z * h  # z near 1 keeps the old state
        # END EXERCISE
        return h, h, {"reset": r, "update": z, "candidate": n}


CELLS: dict[str, tuple[type[Cell], type[nn.RNNBase]]] = {
    "rnn": (RNNCell, nn.RNN),
    "lstm": (LSTMCell, nn.LSTM),
    "gru": (GRUCell, nn.GRU),
}


def run_cells(cells: nn.ModuleList, x: torch.Tensor) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Unroll stacked cells over time: x (B, T, E) -> top outputs (B, T, H), each layer's gates (B, T, H)."""
    B, T, _ = x.shape
    gates = []
    for cell in cells:
        state = cell.init_state(B, x.device)
        outs, layer_gates = [], []
        for t in range(T):
            h, state, g = cell.step(x[:, t], state)
            outs.append(h)
            layer_gates.append(g)
        x = torch.stack(outs, dim=1)  # (B, T, H): the next layer's input
        gates.append({k: torch.stack([g[k] for g in layer_gates], dim=1) for k in layer_gates[0]})
    return x, gates


class RecurrentLM(SequenceLM):
    """Embedding -> `n_layer` recurrent layers -> linear head. `use_torch` swaps the written-out cells for
    the fused nn.RNN / nn.LSTM / nn.GRU, with the same parameters (see `copy_recurrent_weights`)."""

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_embd: int,
        n_hidden: int,
        cell: str = "gru",
        n_layer: int = 1,
        use_torch: bool = False,
    ):
        super().__init__()
        cell_cls, torch_cls = CELLS[cell]
        self.block_size, self.cell_type, self.use_torch = block_size, cell, use_torch
        self.wte = nn.Embedding(vocab_size, n_embd)
        if use_torch:
            self.rnn = torch_cls(n_embd, n_hidden, num_layers=n_layer, batch_first=True)
        else:
            sizes = [n_embd] + [n_hidden] * (n_layer - 1)
            self.cells = nn.ModuleList(cell_cls(n_in, n_hidden) for n_in in sizes)
        self.lm_head = nn.Linear(n_hidden, vocab_size)

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx)  # (B, T, E)
        if self.use_torch:
            return self.rnn(x)[0]  # (B, T, H)
        return run_cells(self.cells, x)[0]

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(h)


def copy_recurrent_weights(src: RecurrentLM, dst: RecurrentLM) -> None:
    """Load src's parameters into dst when one uses written-out cells and the other nn.* (or both the same).

    cells.{k}.weight_ih <-> rnn.weight_ih_l{k}, and likewise weight_hh, bias_ih, bias_hh.
    """

    def canonical(key: str) -> str:
        if key.startswith("cells."):
            _, layer, name = key.split(".")
            return f"rnn.{name}_l{layer}"
        return key

    wanted = {canonical(k): k for k in dst.state_dict()}
    dst.load_state_dict({wanted[canonical(k)]: v for k, v in src.state_dict().items()})


# --------------------------------------------------------------------------------------------------
# L7 · decoder-only transformer (GPT-2 style, pre-LN), after makemore's and nanoGPT's
# --------------------------------------------------------------------------------------------------


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t attends to positions <= t only."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        assert n_embd % n_head == 0, "n_embd must be divisible by n_head"
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.drop = nn.Dropout(dropout)
        self.last_attention: torch.Tensor | None = None  # (B, nh, T, T), kept when keep_attention is set
        self.keep_attention = False

    def forward(self, x: torch.Tensor, blocked: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, C); blocked (B, 1, T, T) is True where t may not look (default: the future)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # (B, T, C) each
        if blocked is None:
            blocked = future_mask(T, x.device)  # (T, T)
        # BEGIN EXERCISE l7.1: split into heads, masked scaled dot-product attention, merge the heads
        hs = C // self.n_head
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        att = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T)
        att = F.softmax(att.masked_fill(blocked, float("-inf")), dim=-1)
        y = self.drop(att) @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        # END EXERCISE
        if self.keep_attention:
            self.last_attention = att.detach()
        return self.drop(self.proj(y))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout)
        self.ln2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, blocked: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), blocked)
        return x + self.mlp(self.ln2(x))


class Transformer(SequenceLM):
    """Token + learned position embeddings, `n_layer` blocks, final LayerNorm, linear head.

    `tie_weights` shares the head's matrix with the token embedding (Press & Wolf, 2017). With
    `segments`, every '.' starts a new name: attention stays inside it and positions count from it
    (`name_segments`), so rows of several whole names (`name_rows`) train exactly what evaluation reads.
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_embd: int,
        n_head: int,
        n_layer: int,
        dropout: float = 0.0,
        tie_weights: bool = False,
        segments: bool = False,
    ):
        super().__init__()
        self.block_size, self.segments = block_size, segments
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.reset_parameters(n_layer)
        if tie_weights:
            self.lm_head.weight = self.wte.weight  # (V, C): one matrix reads and writes characters

    @torch.no_grad()
    def reset_parameters(self, n_layer: int) -> None:
        """GPT-2 init: N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer), zero biases."""
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = (
                    0.02 / math.sqrt(2 * n_layer) if name.endswith(("proj.weight", "mlp.2.weight")) else 0.02
                )
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        pos, blocked = torch.arange(T, device=idx.device), None
        if self.segments:
            pos, blocked = name_segments(idx)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x, blocked)
        return self.ln_f(x)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(h)
