"""Lab s4: the smoke run end to end (embedded data), its serving spec on raw audio, the word-to-digit
mapping, and the `transformers` Whisper and Wav2Vec2 inference path on tiny random checkpoints this test
builds (nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dlpractice.data.audio import resample
from dlpractice.models import pretrained_asr
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("s4")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("s4", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_reports_decoders_and_failures(smoke) -> None:
    m = smoke.metrics
    assert 0.0 <= m["digit_accuracy"] <= 1.0 and smoke.value == m["digit_accuracy"]
    for key in ("greedy", "beam", "beam_LM"):
        assert np.isfinite(m[f"{key}_string_wer"]) and np.isfinite(m[f"{key}_string_cer"])
    assert m["digit_string_wer"] == m["greedy_string_wer"]
    assert "whisper_digit_accuracy" in m  # the packaged Whisper tiny.en loads offline
    assert {p.stem for p in (smoke.run_dir / "figures").glob("*.png")} >= {"loss", "posteriors"}
    record = json.loads((smoke.run_dir / "run.json").read_text())
    assert record["data_info"]["data_source"] == "embedded" and "eSpeak" in record["data_info"]["data_origin"]
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    confidences = [f["confidence"] for f in failures]
    assert confidences == sorted(confidences, reverse=True)
    assert all(f["input"].endswith(".wav") and f["label"] != f["prediction"] for f in failures)
    report = smoke.report.read_text()
    assert "beam + LM" in report and "audio/string0.wav" in report
    assert (smoke.run_dir / "audio" / "string0.wav").is_file()


@pytest.mark.slow
def test_served_model_transcribes_raw_audio_at_any_rate(smoke) -> None:
    from dlpractice.labs.speech import s4_asr
    from dlpractice.runner import read_run

    predictor = s4_asr.SERVING.load(smoke.run_dir, s4_asr.Config(**read_run(smoke.run_dir).config))
    wave = (np.random.default_rng(0).normal(size=8000) * 0.1).astype(np.float32)
    at_8k, at_16k = predictor.predict(
        [{"audio": wave, "sample_rate": 8000}, {"audio": resample(wave, 8000, 16000), "sample_rate": 16000}]
    )
    assert set(at_8k["text"]) <= set("0123456789 ") and set(at_16k["text"]) <= set("0123456789 ")
    with pytest.raises(ValueError, match="shorter than 0.1 s"):
        predictor.check({"audio": wave[:100], "sample_rate": 8000})
    assert s4_asr.SERVING.input == "audio" and s4_asr.SERVING.output == "text"


def test_whisper_words_become_digits() -> None:
    assert pretrained_asr.text_to_digits("Seven, three. Oh 42!") == [7, 3, 0, 4, 2]
    assert pretrained_asr.text_to_digits("Zero.") == [0] and pretrained_asr.text_to_digits("You!") == []


def tiny_whisper(folder: Path) -> Path:
    """A random 1-layer Whisper with a byte-level tokenizer of 256 bytes and 5 special tokens."""
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())} | {
        s: 256 + i for i, s in enumerate(specials)
    }
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    end = "<|endoftext|>"
    tokenizer = WhisperTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        unk_token=end,
        bos_token=end,
        eos_token=end,
        pad_token=end,
    )
    sizes = {"d_model": 16, "encoder_ffn_dim": 32, "decoder_ffn_dim": 32, "max_target_positions": 32}
    layers = {
        "encoder_layers": 1,
        "decoder_layers": 1,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
    }
    ids = {"decoder_start_token_id": 257, "eos_token_id": 256, "pad_token_id": 256, "bos_token_id": 256}
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(WhisperConfig(vocab_size=len(vocab), **sizes, **layers, **ids))
    for key, value in ids.items():
        setattr(model.generation_config, key, value)
    model.generation_config.no_timestamps_token_id = 260
    out = folder / "whisper"
    model.save_pretrained(out)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(out)
    return out


def tiny_wav2vec2(folder: Path) -> Path:
    """A random 1-layer Wav2Vec2 CTC model over the digits and a word separator."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    vocab = {"<pad>": 0, "<unk>": 1, "|": 2} | {str(d): 3 + d for d in range(10)}
    (folder / "w2v_vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "w2v_vocab.json"), word_delimiter_token="|")
    config = Wav2Vec2Config(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2, pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    out = folder / "wav2vec2"
    Wav2Vec2ForCTC(config).save_pretrained(out)
    Wav2Vec2Processor(Wav2Vec2FeatureExtractor(sampling_rate=16000), tokenizer).save_pretrained(out)
    return out


@pytest.mark.parametrize("build", [tiny_whisper, tiny_wav2vec2])
def test_transformers_inference_path_on_tiny_checkpoints(build, tmp_path: Path) -> None:
    """from_pretrained on a directory, 8 kHz audio resampled to the model's 16 kHz: one text per wave."""
    transcribe = pretrained_asr.transformers_asr(build(tmp_path), max_new_tokens=4)
    rng = np.random.default_rng(0)
    waves = [(rng.normal(size=n) * 0.1).astype(np.float32) for n in (4000, 8000)]
    texts = transcribe(waves, 8000)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert transcribe([resample(waves[1], 8000, 16000)], 16000) == texts[1:]  # the same audio at 16 kHz
    if build is tiny_wav2vec2:
        assert set(texts[1]) <= set("0123456789 ")  # CTC output: vocabulary symbols, separators as spaces
