"""What a chatbot needs beyond n5's encoder-decoder (models/rnn_seq2seq.py): ways to pick a reply, a guard
against repeating itself, perplexity, and a retrieval baseline (lab r4).

Every decoder takes a model with the decoding contract of models/seq2seq.py (`state = model.encode(src,
src_len)`, `model.next_logits(state, prefix)` -> (B, V)) and returns (B, L) ids that start with <s>:
  - `sample_replies`: greedy at temperature 0; otherwise a draw from the softmax at that temperature,
    after top-k and nucleus (top-p) filtering (Holtzman et al., 2020).
  - `beam_replies`: beam search whose finished hypotheses are set aside and ranked by their log-probability
    divided by length ** alpha (Wu et al., 2016, use ((5 + length) / 6) ** alpha); alpha = 0 ranks by the
    raw sum, which favours short replies.
  - `block_repeated_ngrams`: no n-gram twice in one reply (Paulus et al., 2018), as transformers'
    NoRepeatNGramLogitsProcessor.
Filtering and the guard equal transformers' logits processors on the same inputs (the tests check it).
The retrieval baseline answers with the reply of the training context nearest in TF-IDF cosine (sklearn).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.feature_extraction.text import TfidfVectorizer
from torch import nn

from dlpractice.data.dialogue import tokens
from dlpractice.data.seq2seq import BOS, EOS, PAD, Example, collate


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Logits (B, V) with -inf outside the top_k largest (0 keeps all) and outside the nucleus: the fewest
    most likely tokens whose probabilities add up to top_p (the most likely token always stays)."""
    # BEGIN EXERCISE r4.2: -inf below the k-th largest; sorted, -inf once the mass before reaches top_p
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)  # (B, V)
        probs = ordered.softmax(-1)
        before = probs.cumsum(-1) - probs  # mass of the more likely tokens
        ordered = ordered.masked_fill(before >= top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, ordered)
    return logits
    # END EXERCISE


def block_repeated_ngrams(logits: torch.Tensor, seqs: torch.Tensor, n: int) -> torch.Tensor:
    """Logits (B, V), -inf for each token that would repeat an n-gram already in its row of seqs (B, T)."""
    out = logits.clone()
    for row, seq in enumerate(seqs.tolist()):
        prefix = seq[len(seq) - n + 1 :]  # the n-1 last tokens: an n-gram starting with them is done before
        banned = {seq[i + n - 1] for i in range(len(seq) - n + 1) if seq[i : i + n - 1] == prefix}
        out[row, list(banned)] = float("-inf")
    return out


@torch.no_grad()
def sample_replies(
    model: nn.Module,
    src: torch.Tensor,
    src_len: torch.Tensor,
    max_steps: int,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    no_repeat: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, ≤max_steps+1) ids from <s>: greedy at temperature 0, else sampled from the filtered softmax."""
    state = model.encode(src, src_len)
    seqs = torch.full((len(src), 1), BOS, device=src.device)
    done = torch.zeros(len(src), dtype=torch.bool, device=src.device)
    for _ in range(max_steps):
        logits = model.next_logits(state, seqs)  # (B, V)
        if no_repeat:
            logits = block_repeated_ngrams(logits, seqs, no_repeat)
        if temperature == 0:
            token = logits.argmax(-1)
        else:
            probs = filter_logits(logits / temperature, top_k, top_p).softmax(-1)
            token = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(src.device)
        token = token.masked_fill(done, PAD)
        seqs, done = torch.cat([seqs, token[:, None]], 1), done | (token == EOS)
        if done.all():
            break
    return seqs


@torch.no_grad()
def beam_replies(
    model: nn.Module,
    src: torch.Tensor,
    src_len: torch.Tensor,
    max_steps: int,
    beam: int,
    alpha: float = 1.0,
    no_repeat: int = 0,
) -> torch.Tensor:
    """(B, L) ids from <s>: per example, the hypothesis with the best log-probability / length ** alpha
    among those that ended (</s>) while in the beam, and the live ones cut at max_steps."""
    b, k = len(src), beam
    rows = torch.arange(b, device=src.device)
    state = tuple(s.repeat_interleave(k, 0) for s in model.encode(src, src_len))  # (B·k, ...)
    seqs = torch.full((b * k, 1), BOS, device=src.device)
    scores = torch.full((b, k), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # all beams start identical: keep one alive
    best_score = torch.full((b,), float("-inf"), device=src.device)  # best finished, length-normalised
    best: list[list[int]] = [[BOS, EOS] for _ in range(b)]
    for step in range(1, max_steps + 1):
        logits = model.next_logits(state, seqs)  # (B·k, V)
        if no_repeat:
            logits = block_repeated_ngrams(logits, seqs, no_repeat)
        logp = logits.log_softmax(-1)
        v = logp.size(-1)
        # BEGIN EXERCISE r4.3: extend all beams; ended ones in the top k finish (score / step**alpha)
        total = (scores.view(-1, 1) + logp).view(b, k * v)  # (B, k·V): every beam's every next token
        top, index = total.topk(min(2 * k, k * v), dim=-1)  # 2k: at least k left once the ended leave
        parent, token = index // v, index % v  # (B, 2k)
        ranked = torch.arange(top.size(1), device=src.device) < k
        finishing = (token == EOS) & ranked
        value, j = (top / step**alpha).masked_fill(~finishing, float("-inf")).max(-1)  # (B,)
        better = value > best_score
        for i in better.nonzero().flatten().tolist():
            best[i] = seqs[i * k + parent[i, j[i]]].tolist() + [EOS]
        best_score = torch.where(better, value, best_score)
        scores, keep = top.masked_fill(token == EOS, float("-inf")).topk(k, dim=-1)  # (B, k)
        chosen = (rows[:, None] * k + parent.gather(1, keep)).flatten()  # (B·k,)
        seqs = torch.cat([seqs[chosen], token.gather(1, keep).flatten()[:, None]], 1)
        # END EXERCISE
        if (scores.max(-1).values / max_steps**alpha < best_score).all():
            break  # log-probabilities only fall: no live beam can still win
    live, j = (scores / (seqs.size(1) - 1) ** alpha).max(-1)
    for i in (live > best_score).nonzero().flatten().tolist():
        best[i] = seqs[i * k + j[i]].tolist()
    out = torch.full((b, max(map(len, best))), PAD, device=src.device)
    for i, ids in enumerate(best):
        out[i, : len(ids)] = torch.tensor(ids)
    return out


@dataclass(frozen=True)
class Decoding:
    """One way to pick a reply: beam > 1 is beam search, else temperature 0 is greedy, else sampling."""

    name: str
    beam: int = 1
    alpha: float = 0.0
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0


def replies(
    model: nn.Module,
    examples: list[Example],
    how: Decoding,
    max_steps: int,
    no_repeat: int = 0,
    seed: int = 0,
    batch_size: int = 500,
) -> list[list[int]]:
    """The reply ids (after <s>, up to </s>) of every example's context."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, len(examples), batch_size):
        src, src_len, _, _ = collate(examples[start : start + batch_size])
        if how.beam > 1:
            ids = beam_replies(model, src, src_len, max_steps, how.beam, how.alpha, no_repeat)
        else:
            sampling = (how.temperature, how.top_k, how.top_p, no_repeat, generator)
            ids = sample_replies(model, src, src_len, max_steps, *sampling)
        for row in ids[:, 1:].tolist():
            out.append(row[: row.index(EOS)] if EOS in row else row)
    return out


@torch.no_grad()
def perplexity(model: nn.Module, batches: Iterable[tuple[torch.Tensor, ...]]) -> float:
    """exp(mean cross-entropy per reply token), teacher-forced, padding excluded."""
    model.eval()
    total, count = 0.0, 0
    for src, src_len, tgt_in, targets in batches:
        logits, _ = model(src, src_len, tgt_in)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD, reduction="sum")
        total, count = total + loss.item(), count + int((targets != PAD).sum())
    return math.exp(total / count)


@torch.no_grad()
def attention_map(model: nn.Module, example: Example, reply: list[int]) -> np.ndarray:
    """(reply tokens + 1, context tokens) attention weights as the model writes `reply` and its </s>."""
    src, src_len, _, _ = collate([example])
    model.eval()
    model.record = []
    try:
        model.run_decoder(model.encode(src, src_len), torch.tensor([[BOS, *reply]]))
        return torch.cat(model.record).numpy()
    finally:
        model.record = None


class RetrievalBot:
    """The baseline: the reply of the training context nearest in TF-IDF cosine (words and word pairs)."""

    def __init__(self, contexts: list[str], answers: list[str]):
        self.vectorizer = TfidfVectorizer(
            tokenizer=tokens, token_pattern=None, lowercase=False, ngram_range=(1, 2)
        )
        self.matrix = self.vectorizer.fit_transform(contexts)  # (N, features), rows of unit length
        self.answers = answers

    def reply(self, contexts: list[str], chunk: int = 256) -> list[str]:
        out = []
        for start in range(0, len(contexts), chunk):
            similarity = self.vectorizer.transform(contexts[start : start + chunk]) @ self.matrix.T  # (c, N)
            out += [self.answers[i] for i in np.asarray(similarity.argmax(1)).ravel()]
        return out


@torch.no_grad()
def reply_confidence(model: nn.Module, examples: list[Example], reply_ids: list[list[int]]) -> list[float]:
    """The model's geometric-mean probability of each reply's tokens and its </s>, given the context."""
    model.eval()
    teacher = [Example(e.task, e.source, "", e.src, [BOS, *ids, EOS]) for e, ids in zip(examples, reply_ids)]
    out = []
    for start in range(0, len(teacher), 500):
        src, src_len, tgt_in, targets = collate(teacher[start : start + 500])
        logits, _ = model(src, src_len, tgt_in)  # (B, T, V)
        nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD, reduction="none")  # (B, T)
        out += torch.exp(-nll.sum(1) / (targets != PAD).sum(1)).tolist()
    return out
