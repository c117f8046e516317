"""n6 text classification: the smoke run, the rt-polarity loader, the generated set, the three models
trained from scratch, the metrics and calibration, and the exercise checks (n6.1-n6.3)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import softmax
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from dlpractice.data import langid, sentiment
from dlpractice.errors import DlpError
from dlpractice.labs.nlp import n6_text_classification as n6
from dlpractice.metrics import classification as clf
from dlpractice.models import finetune, textclf
from dlpractice.runner import RunSpec, start_run

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.slow
def test_smoke_run(tiny_bert):
    outcome = start_run(RunSpec("n6", "smoke", (f"model={tiny_bert}",), data="embedded"))
    m = outcome.metrics
    assert outcome.record.data_source == "embedded"
    assert "generated" in outcome.record.data_info["data_origin"]
    for kind in ("bag", "cnn", "bilstm"):
        assert 0 <= m[f"{kind}_accuracy"] <= 1 and 0 <= m[f"{kind}_ece"] <= 1 and m[f"{kind}_temperature"] > 0
    assert outcome.value == m["test_accuracy"] and "minilm_accuracy" not in m
    assert {"minilm_macro_f1", "minilm_ece", "minilm_roc_auc", "minilm_params"} <= set(m)
    figures = {p.stem for p in (outcome.run_dir / "figures").glob("*.png")}
    assert figures == {"loss", "reliability", "confusion", "by_length", "by_negation"}
    text = outcome.report.read_text()
    for section in ("## Test scores", "## Test accuracy by negation", "## The most confident mistakes"):
        assert section in text
    saved = json.loads((outcome.run_dir / "predictions.json").read_text())
    assert set(saved["probs"]) == {"bag of embeddings", "Kim CNN", "BiLSTM + attention", "MiniLM"}
    # row i is test sentence i: the saved model, run here on the texts, gives the saved probabilities
    tokenizer = AutoTokenizer.from_pretrained(outcome.run_dir / "finetuned")
    model = AutoModelForSequenceClassification.from_pretrained(outcome.run_dir / "finetuned").eval()
    with torch.no_grad():
        batch = tokenizer(saved["texts"], truncation=True, max_length=32, padding=True, return_tensors="pt")
        probs = model(**batch).logits.softmax(-1)
    torch.testing.assert_close(probs, torch.tensor(saved["probs"]["MiniLM"]), rtol=1e-4, atol=1e-5)
    # served (`dlp serve`): a batch is cut into chunks of similar length, yet answered in request order,
    # each text as it is answered alone
    from dlpractice.recipes.serving import encoder_predictor

    served = encoder_predictor(outcome.run_dir / "finetuned", 32)
    texts = saved["texts"][:40]
    together = served.predict([{"text": t} for t in texts])
    alone = [served.predict([{"text": t}])[0] for t in texts]
    assert [a["label"] for a in together] == [a["label"] for a in alone]
    for a, b in zip(together, alone):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-5)


@pytest.mark.slow
def test_fine_tuning_does_not_depend_on_the_models_trained_before_it(tiny_bert):
    """The new head is drawn from the run's seed, not from the random state the bag model left."""
    probs = []
    for models in ("minilm", "bag,minilm"):
        outcome = start_run(
            RunSpec("n6", "smoke", (f"model={tiny_bert}", f"models={models}"), data="embedded")
        )
        probs.append(json.loads((outcome.run_dir / "predictions.json").read_text())["probs"]["MiniLM"])
    assert probs[0] == probs[1]


@pytest.mark.slow
def test_domain_adaptation_reads_training_sentences_only_and_changes_the_encoder(tiny_bert, monkeypatch):
    seen = {}

    def spy(name, texts, *args):
        seen["texts"] = list(texts)
        return adapt_to_domain(name, texts, *args)

    adapt_to_domain = finetune.adapt_to_domain
    monkeypatch.setattr(finetune, "adapt_to_domain", spy)
    overrides = (
        f"model={tiny_bert}",
        "models=minilm",
        "adapt_epochs=2",
        "adapt_lr=1e-3",
        "ft_layer_decay=0.5",
        "ft_reinit_layers=1",
        "ft_rdrop=0.5",
    )
    outcome = start_run(RunSpec("n6", "smoke", overrides, data="embedded"))
    cfg = n6.Config(**n6.PRESETS["smoke"])
    data = sentiment.load_sentences("embedded", None, cfg.n_generated, cfg.label_noise)
    assert seen["texts"] == data.texts["train"]  # masked LM on the training split: val and test unseen
    before = AutoModel.from_pretrained(tiny_bert).state_dict()
    after = AutoModel.from_pretrained(outcome.run_dir / "adapt" / "adapted").state_dict()
    assert before.keys() == after.keys()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"embeddings", "encoder"}  # the pooler, which the MLM never sees, is the original's
    assert 0 <= outcome.metrics["test_accuracy"] <= 1


@pytest.mark.slow
def test_seeds_average_the_scores_of_the_models_from_scratch():
    outcome = start_run(RunSpec("n6", "smoke", ("models=bag,cnn", "seeds=2"), data="embedded"))
    m = outcome.metrics
    saved = json.loads((outcome.run_dir / "predictions.json").read_text())
    hits = np.argmax(saved["probs"]["Kim CNN"], 1) == np.array(saved["labels"])  # the first seed's
    second = 2 * m["cnn_accuracy"] - hits.mean()  # the mean of two seeds gives the other one
    assert 0 <= second <= 1 and second * len(hits) == pytest.approx(round(second * len(hits)))
    assert m["cnn_accuracy_std"] == pytest.approx(abs(hits.mean() - second) / 2)
    later = f"seed{outcome.record.spec.seed + 1}"  # the second seed trains in its own folder
    assert (outcome.run_dir / later).is_dir() and (outcome.run_dir / "cnn" / later).is_dir()
    assert "| Kim CNN | 2 |" in outcome.report.read_text()


@pytest.mark.slow
def test_real_data_missing_is_one_line_error(tmp_path):
    with pytest.raises(DlpError, match=r"rt-polaritydata.tar.gz not found.*put https://.*extracted files"):
        start_run(RunSpec("n6", "smoke", data="real", data_dir=str(tmp_path)))


@pytest.mark.slow
def test_more_layers_to_reinit_than_the_backbone_has_fails_before_training(tiny_bert):
    overrides = ("models=bag,minilm", f"model={tiny_bert}", "ft_reinit_layers=3")  # tiny_bert has 2 layers
    with pytest.raises(DlpError, match="ft_reinit_layers=3: the backbone has 2 encoder layers"):
        start_run(RunSpec("n6", "smoke", overrides, data="embedded"))


def test_seeds_below_one_is_one_line_error():
    with pytest.raises(DlpError, match="seeds=0 is out of range: seeds must be an integer ≥ 1"):
        start_run(RunSpec("n6", "smoke", ("seeds=0", "models=bag"), data="embedded"))


def windows_1252_archive(path: Path) -> Path:
    """A stand-in for rt-polaritydata.tar.gz: two short files in Windows-1252 (0x96 is an en dash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for kind, text in {
            "neg": "dull \x96 and long .\nflat .\n",
            "pos": "a joy .\nfine \x96 fun .\n",
        }.items():
            raw = text.encode("latin-1")  # the bytes as they are: 0x96 is not UTF-8
            member = tarfile.TarInfo(f"rt-polaritydata/rt-polarity.{kind}")
            member.size = len(raw)
            archive.addfile(member, io.BytesIO(raw))
    return path


def test_the_archive_is_read_as_windows_1252(tmp_path, monkeypatch):
    archive = windows_1252_archive(tmp_path / "rt-polarity" / "rt-polaritydata.tar.gz")
    spec = sentiment.RT_ARCHIVE
    monkeypatch.setattr(
        sentiment, "RT_ARCHIVE", type(spec)(spec.name, spec.url, sha256_of(archive), spec.places)
    )
    texts, labels, origin = sentiment.real_sentences(tmp_path)
    assert texts == ["dull – and long .", "flat .", "a joy .", "fine – fun ."] and labels == [0, 0, 1, 1]
    assert "rt-polaritydata.tar.gz" in origin
    data = sentiment.load_sentences("auto", tmp_path)
    assert data.source == "real" and sum(len(t) for t in data.texts.values()) == 4


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_extracted_files_with_other_text_are_refused(tmp_path):
    (tmp_path / "rt-polarity").mkdir()
    for kind in ("neg", "pos"):
        (tmp_path / "rt-polarity" / f"rt-polarity.{kind}").write_text("not the data .\n")
    with pytest.raises(DlpError, match="is not the sentence polarity dataset"):
        sentiment.load_sentences("real", tmp_path)


@pytest.mark.skipif(not (SHARED / "rt-polarity").is_dir(), reason="the shared data lies beside the repo here")
def test_rt_polarity_in_utf_8_and_windows_1252(tmp_path):
    data = sentiment.load_sentences("real", SHARED)
    assert {k: len(v) for k, v in data.texts.items()} == {"test": 1066, "val": 960, "train": 8636}
    everything = [label for labels in data.labels.values() for label in labels]
    assert everything.count(0) == everything.count(1) == 5331
    assert sentiment.load_sentences("real", SHARED).texts == data.texts  # the split is fixed
    for kind in ("neg", "pos"):  # the same text in the original encoding passes the same check
        text = (SHARED / "rt-polarity" / f"rt-polarity.{kind}").read_text(encoding="utf-8")
        (tmp_path / "rt-polaritydata").mkdir(exist_ok=True)
        (tmp_path / "rt-polaritydata" / f"rt-polarity.{kind}").write_bytes(text.encode("cp1252"))
    assert sentiment.load_sentences("real", tmp_path).texts == data.texts


def test_generated_set_labels_follow_the_rules():
    texts, labels = sentiment.generated_sentences(2000, label_noise=0.0)
    assert texts == sentiment.generated_sentences(2000, label_noise=0.0)[0]  # seeded
    polarity = {w: 1 for w in sentiment.POSITIVE} | {w: 0 for w in sentiment.NEGATIVE}
    checked = 0
    for text, label in zip(texts, labels):
        last = text.split(" , but ")[-1]  # the clause after "but" decides
        words = [w for w in sentiment.tokenize(last) if w in polarity]
        negated = sentiment.has_negation(last) or "far from" in last
        if len(words) == 1 and not negated and "although" not in text:
            assert label == polarity[words[0]], text
            checked += 1
    assert checked > 300
    noisy = sentiment.generated_sentences(2000, label_noise=0.1)
    assert noisy[0] == texts and 0.07 < np.mean(np.array(noisy[1]) != np.array(labels)) < 0.13


def test_tokens_vocabulary_and_trimmed_batches():
    assert sentiment.tokenize("It doesn't work, it's é") == [
        "it",
        "does",
        "n't",
        "work",
        ",",
        "it",
        "'s",
        "é",
    ]
    assert sentiment.has_negation("it isn't good") and not sentiment.has_negation("a note on nothingness")
    vocab = sentiment.WordVocab(["a b b", "b c"], min_count=2)
    assert vocab.words == ["<pad>", "<unk>", "b"]
    ids = vocab.encode(["b a", "b b b b", ""], max_len=3)
    assert ids.tolist() == [[2, 1, 0], [2, 2, 2], [1, 0, 0]]
    batches = sentiment.TrimmedBatches({"val": (ids[[0, 2]], torch.tensor([0, 1]))})
    assert next(batches.eval_batches("val"))[0].shape == (2, 2)


@pytest.mark.parametrize("kind", ["bag", "cnn", "bilstm"])
def test_padding_never_changes_a_prediction(kind):
    torch.manual_seed(0)
    model = textclf.build_classifier(kind, 30, n_embd=8, dropout=0.0).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 0, 0, 0, 0]])  # (B, T): the second is 2 words long
    logits, loss = model(ids, torch.tensor([0, 1]))
    assert logits.shape == (2, 2) and abs(loss.item() - math.log(2)) < 0.5
    padded, _ = model(torch.cat([ids, torch.zeros(2, 7, dtype=torch.long)], 1))
    torch.testing.assert_close(padded, logits, rtol=1e-5, atol=1e-6)
    alone, _ = model(ids[1:, :2])
    torch.testing.assert_close(alone, logits[1:], rtol=1e-5, atol=1e-6)


def test_bilstm_attention_weights_sum_to_one_on_real_words():
    model = textclf.build_classifier("bilstm", 30, n_embd=8, n_hidden=4).eval()
    _, weights = model.attend(torch.tensor([[3, 4, 5], [6, 0, 0]]))
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    assert weights[1, 1:].abs().max() == 0


def test_scores_and_temperature():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])
    s = clf.scores(probs, labels)
    assert s["accuracy"] == 0.75 and s["roc_auc"] == 1.0 and s["macro_f1"] == pytest.approx(0.7333, abs=1e-4)
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 2))
    labels = (rng.random(20000) < softmax(logits / 2.0, axis=1)[:, 1]).astype(int)
    assert clf.fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.1)


def test_error_analysis_helpers():
    probs = np.array([[0.95, 0.05], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])
    labels = np.array([1, 1, 0, 0])
    mistakes = clf.most_confident_mistakes(["a", "b", "c", "d"], probs, labels, k=5)
    assert mistakes == [("a", 1, 0.95), ("c", 0, 0.8)]
    by = clf.accuracy_by_group(probs.argmax(1) == labels, ["x", "x", "y", "y"])
    assert by == {"x": (2, 0.5), "y": (2, 0.5)}


# The homework variant: language identification from gettext catalogues
def write_mo(path: Path, messages: dict[str, str]) -> None:
    """A GNU .mo catalogue: header, then the msgid and msgstr tables (sorted by msgid), then the strings."""
    entries = sorted({"": "Content-Type: text/plain; charset=UTF-8\n", **messages}.items())
    keys = [k.encode() for k, _ in entries]
    values = [v.encode() for _, v in entries]
    n = len(entries)
    start = 28 + 16 * n  # the two tables of (length, offset) pairs come first
    table, blob = [], b""
    for text in keys + values:
        table.append((len(text), start + len(blob)))
        blob += text + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + b"".join(struct.pack("<2I", *pair) for pair in table) + blob)


def fake_locale(root: Path, per_language: int) -> Path:
    """German and French catalogues with `per_language` messages each, one shared and one too short."""
    words = {
        "de": ["Datei", "nicht", "gefunden", "konnte", "werden"],
        "fr": ["fichier", "introuvable", "peut", "être", "ouvert"],
    }
    for language, vocabulary in words.items():
        rng = random.Random(language)
        messages = {
            f"message {i} in english": " ".join(rng.choices(vocabulary, k=6)) + f" %s {i}"
            for i in range(per_language)
        }
        messages |= {
            "shared": "Firefox Web Browser 2000",
            "short": "kurz",
            "_Open file": "_" + vocabulary[0] * 5,
        }
        write_mo(root / language / "LC_MESSAGES" / "app.mo", messages)
    (root / "de" / "LC_MESSAGES" / "broken.mo").write_bytes(b"not a catalogue")
    return root


def test_catalogues_are_read_cleaned_and_deduplicated(tmp_path):
    root = fake_locale(tmp_path, per_language=30)
    data = langid.load_catalogues(20, ("de", "fr"), root)
    texts = [t for split in data.texts.values() for t in split]
    assert len(texts) == 40 and data.classes == ("de", "fr") and data.source == "embedded"
    assert "Firefox Web Browser 2000" not in texts  # in both languages: not evidence of either
    assert not any("%s" in t or t.startswith("_") for t in texts)  # placeholders and accelerators go
    assert all(langid.MIN_CHARS <= len(t) <= langid.MAX_CHARS for t in texts)
    with pytest.raises(DlpError, match="only .* de messages"):
        langid.load_catalogues(100, ("de", "fr"), root)


@pytest.mark.slow
def test_langid_smoke_run(tmp_path):
    root = fake_locale(tmp_path / "locale", per_language=60)
    overrides = ("task=langid", "languages=de,fr", f"locale_dir={root}", "per_language=50", "models=bag,cnn")
    outcome = start_run(RunSpec("n6", "smoke", overrides))
    assert outcome.metrics["cnn_accuracy"] > 0.5 and "test_accuracy" not in outcome.metrics
    assert "## Test accuracy by negation" not in outcome.report.read_text()
