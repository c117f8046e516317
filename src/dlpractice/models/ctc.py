"""CTC speech recognition (Graves et al., 2006): an acoustic model, the CTC loss, and two decoders.

- `ctc_loss`: the negative log-likelihood of a label sequence summed over every frame alignment, by the
  forward algorithm over the label sequence with blanks between and around its symbols; checked against
  `torch.nn.functional.ctc_loss` (values and gradients).
- `CTCRecognizer`: a convolutional front-end (each stride-2 layer halves the frame rate) and a
  bidirectional GRU over log-mel frames (Deep Speech 2 in miniature), one linear layer to symbol scores.
- Decoding: greedy (best symbol per frame, repeats merged, blanks dropped) and prefix beam search
  (Hannun et al., 2014), which sums the probability of every alignment of a prefix and can add a
  character n-gram language model (`CharNgramLM`) with a weight and a length bonus.
Simplified: no subword units, no lattice or word-level LM; the LM is add-k smoothed, without backoff.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

BLANK = 0  # symbol id 0 is the blank; symbols proper are 1..C-1
NEG_INF = -math.inf
# "impossible" inside the loss: finite, so that logsumexp of impossible paths has a gradient (0, not NaN)
IMPOSSIBLE = -1e30


def extended_targets(targets: torch.Tensor, blank: int = BLANK) -> torch.Tensor:
    """(B, S) labels -> (B, 2S+1): a blank before, between and after the labels."""
    out = torch.full((targets.shape[0], 2 * targets.shape[1] + 1), blank, dtype=torch.long)
    out[:, 1::2] = targets
    return out


def ctc_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = BLANK,
    reduction: str = "mean",
) -> torch.Tensor:
    """-log p(targets | inputs) by the forward algorithm, as F.ctc_loss computes it.

    log_probs (T, B, C) log-softmax scores (F.ctc_loss's layout); targets (B, S) padded with anything;
    reduction "mean" divides each loss by its target length, then averages (F.ctc_loss's "mean").
    An input too short for its target gets a huge finite loss where F.ctc_loss gives inf."""
    T, B, _ = log_probs.shape
    targets = targets.clamp(min=0).long()
    ext = extended_targets(targets, blank).to(log_probs.device)  # (B, L) with L = 2S + 1
    L = ext.shape[1]
    emit = log_probs.gather(2, ext.unsqueeze(0).expand(T, B, L))  # (T, B, L) score of each position's symbol
    # a skip from s-2 to s is allowed when s is a symbol that differs from the symbol at s-2
    skip_ok = torch.zeros(B, L, dtype=torch.bool, device=log_probs.device)
    skip_ok[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    # alpha[b, s]: log-probability of all alignments of frames 0..t that end at extended position s
    alpha = torch.full((B, L), IMPOSSIBLE, dtype=log_probs.dtype, device=log_probs.device)
    alpha[:, 0] = emit[0, :, 0]
    alpha[:, 1] = torch.where(target_lengths > 0, emit[0, :, 1], IMPOSSIBLE)
    for t in range(1, T):
        stay = alpha
        step = F.pad(alpha[:, :-1], (1, 0), value=IMPOSSIBLE)  # from s - 1
        skip = F.pad(alpha[:, :-2], (2, 0), value=IMPOSSIBLE).masked_fill(~skip_ok, IMPOSSIBLE)  # from s - 2
        new = torch.logsumexp(torch.stack([stay, step, skip]), dim=0) + emit[t]
        alpha = torch.where((t < input_lengths).unsqueeze(1), new, alpha)  # a finished input keeps its alpha
    last = (2 * target_lengths).long().to(log_probs.device)  # the final blank; the final symbol is last - 1
    end_blank = alpha.gather(1, last.unsqueeze(1)).squeeze(1)
    end_symbol = alpha.gather(1, (last - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    end_symbol = torch.where(target_lengths > 0, end_symbol, IMPOSSIBLE)
    loss = -torch.logaddexp(end_blank, end_symbol)  # (B,)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return (loss / target_lengths.clamp(min=1).to(loss.dtype)).mean()


class CTCRecognizer(nn.Module):
    """Log-mel frames -> per-frame symbol scores (conv front-end, BiGRU, linear); `logits, loss = model()`."""

    def __init__(
        self,
        n_features: int,
        n_symbols: int,
        channels: int = 128,
        hidden: int = 128,
        layers: int = 2,
        dropout: float = 0.1,
        loss: str = "ours",
        halvings: int = 1,
    ):
        super().__init__()
        front = [nn.Conv1d(n_features, channels, 5, padding=2), nn.BatchNorm1d(channels), nn.GELU()]
        for _ in range(halvings):  # each stride-2 layer halves the frame rate: 10 ms frames become 20, 40 ms
            front += [
                nn.Conv1d(channels, channels, 5, stride=2, padding=2),
                nn.BatchNorm1d(channels),
                nn.GELU(),
            ]
        self.front = nn.Sequential(*front)
        self.halvings = halvings
        self.rnn = nn.GRU(
            channels, hidden, layers, batch_first=True, bidirectional=True, dropout=dropout * (layers > 1)
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, n_symbols + 1)  # + the blank, id 0
        self.loss_fn = ctc_loss if loss == "ours" else F.ctc_loss

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames after the stride-2 convolutions (kernel 5, padding 2)."""
        for _ in range(self.halvings):
            lengths = (lengths - 1) // 2 + 1
        return lengths

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """features (B, T, F), lengths (B,), targets (B, S) symbol ids padded with -1."""
        x = self.front(features.transpose(1, 2)).transpose(1, 2)  # (B, T', channels)
        out_lengths = self.output_lengths(lengths)
        total = x.shape[1]
        packed = nn.utils.rnn.pack_padded_sequence(
            x, out_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        x, _ = self.rnn(packed)
        x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length=total)
        logits = self.head(self.drop(x))  # (B, T', C)
        if targets is None:
            return logits, None
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T', B, C)
        loss = self.loss_fn(log_probs, targets.clamp(min=0), out_lengths, (targets >= 0).sum(1))
        return logits, loss


def greedy_decode(log_probs: torch.Tensor, blank: int = BLANK) -> list[int]:
    """(T, C) scores of one utterance -> symbol ids: best symbol per frame, repeats merged, blanks dropped."""
    # BEGIN EXERCISE s4.1: best path: argmax per frame, merge runs of the same id, then drop blanks
    best = log_probs.argmax(-1).tolist()
    merged = [s for i, s in enumerate(best) if i == 0 or s != best[i - 1]]
    return [s for s in merged if s != blank]
    # END EXERCISE


class CharNgramLM:
    """A character n-gram model with add-k smoothing over the symbols it was given, plus an end symbol."""

    END = "</s>"

    def __init__(self, texts: Sequence[str], symbols: str, order: int = 3, k: float = 0.1):
        self.order, self.k = order, k
        self.vocab = [*symbols, self.END]
        self.counts: dict[str, Counter] = defaultdict(Counter)
        for text in texts:
            chars = [*text, self.END]
            for i, char in enumerate(chars):
                self.counts[self.context(chars[:i])][char] += 1

    def context(self, history: Sequence[str]) -> str:
        return "".join(history[-(self.order - 1) :]) if self.order > 1 else ""

    def log_prob(self, char: str, history: Sequence[str]) -> float:
        seen = self.counts.get(self.context(history), Counter())
        return math.log((seen[char] + self.k) / (sum(seen.values()) + self.k * len(self.vocab)))


def prefix_beam_search(
    log_probs: torch.Tensor,
    symbols: str,
    beam: int = 8,
    lm: CharNgramLM | None = None,
    lm_weight: float = 0.5,
    length_bonus: float = 0.0,
    blank: int = BLANK,
) -> tuple[list[int], float]:
    """(T, C) scores of one utterance -> the best prefix's symbol ids and its score.

    Each prefix keeps two log-probabilities: of its alignments that end in a blank and of those that end
    in its last symbol, since a repeated symbol extends the prefix only after a blank. With an LM, each
    new symbol adds lm_weight * log P_LM(symbol | prefix) + length_bonus; the end symbol is scored last."""
    scores = log_probs.double().tolist()  # (T, C)
    beams: dict[tuple[int, ...], tuple[float, float]] = {
        (): (0.0, NEG_INF)
    }  # prefix -> (ends blank, ends symbol)
    bonus: dict[tuple[int, ...], float] = {(): 0.0}  # the LM and length terms of each prefix

    def extension(prefix: tuple[int, ...], s: int) -> float:
        if prefix + (s,) not in bonus:
            lm_term = lm_weight * lm.log_prob(symbols[s - 1], [symbols[i - 1] for i in prefix]) if lm else 0.0
            bonus[prefix + (s,)] = bonus[prefix] + lm_term + length_bonus
        return bonus[prefix + (s,)]

    for frame in scores:
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (p_blank, p_symbol) in beams.items():
            total = _logadd(p_blank, p_symbol)
            entry = nxt[prefix]
            entry[0] = _logadd(entry[0], total + frame[blank])
            for s in range(len(frame)):
                if s == blank:
                    continue
                extended = prefix + (s,)
                if prefix and prefix[-1] == s:  # a repeat: same prefix unless a blank came between
                    entry[1] = _logadd(entry[1], p_symbol + frame[s])
                    new = p_blank + frame[s]
                else:
                    new = total + frame[s]
                extension(prefix, s)
                nxt[extended][1] = _logadd(nxt[extended][1], new)
        ranked = sorted(nxt.items(), key=lambda kv: -(_logadd(*kv[1]) + bonus[kv[0]]))[:beam]
        beams = {prefix: tuple(v) for prefix, v in ranked}

    def final(prefix: tuple[int, ...]) -> float:
        end = lm_weight * lm.log_prob(CharNgramLM.END, [symbols[i - 1] for i in prefix]) if lm else 0.0
        return _logadd(*beams[prefix]) + bonus[prefix] + end

    best = max(beams, key=final)
    return list(best), final(best)


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))
