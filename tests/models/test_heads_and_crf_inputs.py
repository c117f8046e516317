"""The Hugging Face heads behind `logits, loss = model(...)` (models/heads.py) and the BiLSTM-CRF's word and
character ids (models/crf.py)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from dlpractice.models import crf
from dlpractice.models.heads import SpanExtractor, TokenClassifier


def test_word_and_character_ids():
    words, chars = crf.build_vocab([["Paris", "is", "big"], ["Rome", "is", "2024"]], min_count=2)
    assert words == {"is": 2}  # "is" twice; the rest are rarer (UNK)
    assert len(chars) == len(set("ParisbigRome2024")) and min(chars.values()) == 2
    word_ids, char_ids = crf.encode([["Is", "Oslo", "1999"], ["is"]], words, chars)
    assert word_ids.tolist() == [[2, crf.UNK, crf.UNK], [2, crf.PAD, crf.PAD]]  # case folded for words
    assert char_ids.shape == (2, 3, crf.MAX_WORD_CHARS) and char_ids.dtype == torch.uint8
    assert char_ids[0, 1, :4].tolist() == [crf.UNK, chars["s"], crf.UNK, chars["o"]]  # "Oslo": O, l unseen
    assert (char_ids[1, 1:] == crf.PAD).all()
    assert crf.normalise("Year1999") == "year0000"  # digits are all alike
    long = crf.encode([["x" * 50]], {}, {"x": 2})[1]
    assert long.shape[-1] == crf.MAX_WORD_CHARS and (long == 2).all()


def test_token_classifier_passes_the_labels_to_the_hf_model():
    calls = []

    class HF(torch.nn.Module):  # what AutoModelForTokenClassification returns: logits and its own loss
        def forward(self, input_ids, attention_mask, labels):
            calls.append(labels)
            return SimpleNamespace(logits=input_ids.float(), loss=torch.tensor(1.5))

    model = TokenClassifier(HF())
    logits, loss = model(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3), torch.zeros(2, 3))
    assert logits.shape == (2, 3) and loss.item() == 1.5 and calls[0].shape == (2, 3)


def test_span_extractor_loss_is_the_mean_of_start_and_end_cross_entropy():
    start, end = torch.randn(2, 5), torch.randn(2, 5)
    seen = {}

    class HF(torch.nn.Module):  # what AutoModelForQuestionAnswering returns: start and end logits (B, L)
        def forward(self, input_ids, attention_mask, **extra):
            seen.update(extra)
            return SimpleNamespace(start_logits=start, end_logits=end)

    model = SpanExtractor(HF(), token_types=False)
    targets = torch.tensor([[1, 3], [0, 0]])  # (B, 2): start and end positions
    logits, loss = model(torch.ones(2, 5), torch.ones(2, 5), torch.zeros(2, 5), targets)
    assert logits.shape == (2, 5, 2) and seen == {}  # no token types for a model without them
    want = (F.cross_entropy(start, targets[:, 0]) + F.cross_entropy(end, targets[:, 1])) / 2
    torch.testing.assert_close(loss, want)
    assert model(torch.ones(2, 5), torch.ones(2, 5), torch.zeros(2, 5))[1] is None
