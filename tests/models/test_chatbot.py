"""models/chatbot.py: the repetition guard against transformers' NoRepeatNGramLogitsProcessor, greedy
sampling against models/seq2seq.py's greedy decoder, perplexity against torch's cross-entropy, the
confidence of a reply, the attention map and the retrieval baseline. (Top-k/top-p filtering and beam search
are compared with transformers and an exhaustive search by lab r4's checks, run on the reference.)"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from dlpractice.data.seq2seq import BOS, EOS, PAD, Example, collate
from dlpractice.models.chatbot import (
    Decoding,
    RetrievalBot,
    attention_map,
    block_repeated_ngrams,
    perplexity,
    replies,
    reply_confidence,
    sample_replies,
)
from dlpractice.models.rnn_seq2seq import Seq2SeqRNN
from dlpractice.models.seq2seq import greedy_decode

SIZES = SimpleNamespace(n_embd=8, n_hidden=16, tf_start=1.0, tf_end=1.0)


def tiny_model(attention: str = "bahdanau", vocab: int = 12) -> Seq2SeqRNN:
    torch.manual_seed(0)
    return Seq2SeqRNN("gru", attention, SIZES, vocab=vocab).eval()


def examples(n: int = 6, vocab: int = 12) -> list[Example]:
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        src = torch.randint(3, vocab, (2 + i % 4,), generator=g).tolist() + [EOS]
        tgt = [BOS, *torch.randint(3, vocab, (1 + i % 3,), generator=g).tolist(), EOS]
        out.append(Example("t", f"context {i}", "", src, tgt))
    return out


@pytest.mark.parametrize("n", [1, 2, 3])
def test_repetition_guard_equals_transformers_no_repeat_ngram(n: int) -> None:
    from transformers import NoRepeatNGramLogitsProcessor

    g = torch.Generator().manual_seed(n)
    seqs = torch.randint(0, 4, (8, 12), generator=g)  # a small vocabulary: many repeats
    logits = torch.randn(8, 4, generator=g)
    expected = NoRepeatNGramLogitsProcessor(n)(seqs, logits.clone())
    assert torch.equal(block_repeated_ngrams(logits, seqs, n), expected)


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_temperature_zero_is_the_greedy_decoder_of_models_seq2seq(attention: str) -> None:
    model = tiny_model(attention)
    src, src_len, _, _ = collate(examples())
    ours = sample_replies(model, src, src_len, max_steps=7)
    assert torch.equal(ours, greedy_decode(model, src, src_len, max_steps=7))


def test_sampling_follows_the_seed_and_the_guard_holds() -> None:
    model, turns = tiny_model(), examples()
    how = Decoding("top-p", temperature=1.5, top_p=0.95)
    first, again = (replies(model, turns, how, 10, no_repeat=2, seed=3) for _ in range(2))
    assert first == again
    for reply in first:
        bigrams = list(zip(reply, reply[1:]))
        assert len(bigrams) == len(set(bigrams)), reply
    beams = replies(model, turns, Decoding("beam", beam=3, alpha=1.0), 10, no_repeat=2)
    assert len(beams) == len(turns) and all(EOS not in r for r in beams)


def test_perplexity_is_exp_of_the_token_mean_cross_entropy() -> None:
    model, turns = tiny_model(), examples()
    src, src_len, tgt_in, targets = collate(turns)
    logits, _ = model(src, src_len, tgt_in)
    expected = math.exp(F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD).item())
    split = [collate(turns[:2]), collate(turns[2:])]  # batches of unequal size: tokens are what count
    assert perplexity(model, split) == pytest.approx(expected, rel=1e-5)


def test_confidence_is_the_geometric_mean_probability_of_the_reply() -> None:
    model, turn = tiny_model(), examples(1)[0]
    reply = [5, 7, 5]
    src, src_len, _, _ = collate([turn])
    logp = model(src, src_len, torch.tensor([[BOS, *reply]]))[0].log_softmax(-1)[0]  # (T, V)
    expected = math.exp(sum(logp[t, tok].item() for t, tok in enumerate([*reply, EOS])) / 4)
    assert reply_confidence(model, [turn], [reply])[0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_attention_map_has_a_distribution_over_the_context_per_reply_token(attention: str) -> None:
    model, turn = tiny_model(attention), examples(3)[2]
    weights = attention_map(model, turn, [4, 6])
    assert weights.shape == (3, len(turn.src))
    assert weights.sum(1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert model.record is None  # recording stops after the map


def test_retrieval_answers_a_training_context_with_its_own_reply() -> None:
    contexts = ["when are you open on friday?", "how much is a latte?", "hello there."]
    answers = ["friday: 7 am to 10 pm.", "a latte is 3.00.", "hi!"]
    bot = RetrievalBot(contexts, answers)
    assert bot.reply(contexts) == answers
    assert bot.reply(["what does a latte cost?", "are you open friday"], chunk=1) == answers[1::-1]
