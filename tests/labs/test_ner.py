"""n7 NER: the CRF against brute force, label alignment, the CoNLL reader, error analysis, the smoke run."""

from __future__ import annotations

import random

import pytest
import torch

from dlpractice.data.batching import LengthBatches, pad_rows
from dlpractice.data.conll import LABELS, generate_sentences, read_conll, to_iob2
from dlpractice.errors import DlpError
from dlpractice.labs.nlp import n7_ner
from dlpractice.metrics.ner import classify_errors, entity_scores, recall_by_group
from dlpractice.models.crf import BiLSTMCRF
from dlpractice.practice.checks.test_n7_ner import K, hand_score, random_crf
from dlpractice.runner import RunSpec, start_run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_path_score_is_the_sum_of_its_parts(seed):
    model, emissions, mask = random_crf(seed)
    tags = torch.randint(K, (4, 5))
    got = model.path_score(emissions, tags, mask)
    for b, length in enumerate(mask.sum(1).tolist()):
        want = hand_score(model, emissions[b], tuple(tags[b, :length].tolist()))
        torch.testing.assert_close(got[b], want)


def test_bilstm_crf_trains_on_a_tiny_batch():
    torch.manual_seed(0)
    sizes = {"word_dim": 8, "char_dim": 4, "char_filters": 4, "hidden": 8}
    model = BiLSTMCRF(n_words=20, n_chars=10, n_tags=len(LABELS), dropout=0.0, **sizes)
    words = torch.tensor([[2, 3, 4, 5], [6, 7, 0, 0]])
    chars = torch.randint(1, 10, (2, 4, 6), dtype=torch.uint8)
    tags = torch.tensor([[1, 2, 0, 3], [5, 0, -100, -100]])
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        emissions, loss = model(words, chars, tags)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert emissions.shape == (2, 4, len(LABELS)) and loss.item() < 0.1
    assert model.decode(words, chars) == [[1, 2, 0, 3], [5, 0]]


def test_reader_takes_both_conll_formats():
    original = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\n\n"
    original += "Peter NNP B-NP I-PER\nBlackburn NNP I-NP I-PER\n"
    copy = "EU B-ORG 0\nrejects O 0\nGerman B-MISC 0\n\nPeter B-PER 0\nBlackburn I-PER 0\n"
    sentences = read_conll(original)
    assert sentences == read_conll(copy)
    assert sentences[0].tags == ("B-ORG", "O", "B-MISC") and sentences[1].tokens == ("Peter", "Blackburn")
    with pytest.raises(DlpError, match="no NER tag"):
        read_conll("word NN\n")


def test_iob1_to_iob2():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]
    assert to_iob2(iob1) == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"]


def test_generated_sentences_are_valid_iob2():
    sentences = generate_sentences(300, random.Random(0))
    tags = [t for s in sentences for t in s.tags]
    assert set(tags) <= set(LABELS) and {t[2:] for t in tags if t != "O"} == {"PER", "LOC", "ORG", "MISC"}
    for s in sentences:
        assert len(s.tokens) == len(s.tags) and list(s.tags) == to_iob2(list(s.tags))
    assert sentences == generate_sentences(300, random.Random(0))


def test_error_kinds():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "O", "B-MISC"]]
    pred = [["B-PER", "O", "O", "B-ORG", "O", "B-LOC", "I-LOC", "O"]]  # boundary, type, boundary+type, missed
    counts = classify_errors(gold, pred)
    assert dict(counts) == {
        "correct": 0,
        "boundary": 1,
        "type": 1,
        "boundary+type": 1,
        "spurious": 0,
        "missed": 1,
    }
    assert classify_errors([["O", "B-LOC"]], [["B-PER", "B-LOC"]])["spurious"] == 1
    assert entity_scores(gold, gold)["micro avg"]["f1"] == 1.0
    assert entity_scores(gold, pred)["micro avg"]["f1"] == 0.0
    groups = recall_by_group(gold, [["B-PER", "I-PER", *["O"] * 6]], lambda i, span: span[0])
    assert groups == {"LOC": (0, 1), "MISC": (0, 1), "ORG": (0, 1), "PER": (1, 1)}


def test_length_batches_cut_padding_and_cover_every_row():
    rows = [[1] * n for n in (5, 1, 3, 2, 4)]
    ids = pad_rows(rows, 0)
    data = LengthBatches({"train": (ids, ids.clone())}, {"train": torch.tensor([5, 1, 3, 2, 4])}, 2)
    x, _ = data.train_batch(2, torch.Generator().manual_seed(0))
    assert x.shape[1] == x.sum(1).max() and len(x) == 2
    seen = torch.cat(list(data.eval_indices("train")))
    assert sorted(seen.tolist()) == [0, 1, 2, 3, 4]
    assert [b[0].shape[1] for b in data.eval_batches("train")] == [2, 4, 5]


@pytest.mark.slow
def test_smoke_run(tiny_bert):
    outcome = start_run(RunSpec("n7", "smoke", (f"model={tiny_bert}",), data="embedded"))
    m = outcome.metrics
    assert outcome.value == m["test_f1"] and 0 <= m["test_f1"] <= 1
    assert m["bilstm_crf_f1"] > 0.3  # the BiLSTM-CRF learns the generated sentences in seconds
    assert m["truncated_test_sentences"] >= 0 and m["params"] > 0
    figures = {p.stem for p in (outcome.run_dir / "figures").glob("*.png")}
    assert figures == {"loss", "loss_bilstm_crf", "f1_by_type", "errors", "transitions"}
    report = outcome.report.read_text()
    assert "| BiLSTM-CRF |" in report and "boundary+type" in report and "lower-case" in report
    assert outcome.record.data_source == "embedded"


@pytest.mark.slow
def test_missing_conll_is_a_one_line_error(tmp_path):
    with pytest.raises(DlpError, match="conll2003-train.txt not found.*put https://"):
        start_run(RunSpec("n7", "smoke", data="real", data_dir=str(tmp_path)))


@pytest.mark.slow
def test_packaged_minilm_loads_offline_and_splits_words():
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from dlpractice.models.backbone import load_pretrained

    tokenizer = load_pretrained(AutoTokenizer, "minilm")
    enc = tokenizer([["Kwasniewski", "met", "Blair"]], is_split_into_words=True)
    word_ids = enc.word_ids(0)
    assert word_ids[0] is None and word_ids.count(0) > 1  # a rare name falls into several pieces
    labels = n7_ner.align_labels(word_ids, [1, 0, 1])
    assert sum(label != -100 for label in labels) == 3
    model = load_pretrained(AutoModelForTokenClassification, "minilm", num_labels=len(LABELS))
    logits = model(**enc.convert_to_tensors("pt")).logits
    assert logits.shape == (1, len(word_ids), len(LABELS))
