"""s2's data: sentences in eight languages, a split by sentence and by voice, and VoxLingua107 read from a
tiny copy in its real layout (folders, zips, the download path) written by the test."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dlpractice.data import langid_speech as lid
from dlpractice.data.audio import save_audio
from dlpractice.errors import DlpError


def test_every_language_has_its_own_grammar_and_an_espeak_voice() -> None:
    from dlpractice.data.speech import list_voices

    voices = {v.split("/")[-1] for v in list_voices()}
    assert len(lid.LANGUAGES) >= 8 and set(lid.LANGUAGES) <= voices
    first_words = {lang: set(lid.GRAMMARS[lang][1]) for lang in lid.LANGUAGES}  # the verbs
    assert all(len(slot) == 8 for lang in lid.LANGUAGES for slot in lid.GRAMMARS[lang])
    assert first_words["de"].isdisjoint(first_words["en"]) and "achète" in first_words["fr"]


def test_sentences_are_distinct_and_seeded() -> None:
    drawn = lid.sentences("es", 200, np.random.default_rng(0))
    assert len(set(drawn)) == 200 and drawn == lid.sentences("es", 200, np.random.default_rng(0))
    assert all(s[0].isupper() and s.endswith(".") for s in drawn)
    with pytest.raises(DlpError, match="makes 4608 sentences"):
        lid.sentences("en", 5000, np.random.default_rng(0))


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> lid.SpokenLanguages:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("lid")))
    yield lid.load_embedded(per_language=(3, 1, 2), noisy_share=0.5)
    monkeypatch.undo()


def variant(clip: lid.LangClip) -> str:
    return clip.speaker.split("+")[1].split("/")[0]


def test_test_sentences_and_voices_are_unseen_in_training(tiny_set) -> None:
    splits = tiny_set.splits
    assert [len(splits[s]) for s in ("train", "val", "test", "test_noisy")] == [24, 8, 16, 16]
    texts = {s: {c.text for c in splits[s]} for s in ("train", "val", "test")}
    assert texts["train"].isdisjoint(texts["test"]) and texts["val"].isdisjoint(
        texts["test"] | texts["train"]
    )
    voices = {s: {variant(c) for c in splits[s]} for s in ("train", "val", "test")}
    for split, found in voices.items():
        assert found <= set(lid.VARIANT_SPLITS[split])
    assert np.bincount([c.language for c in splits["test"]]).tolist() == [2] * 8
    assert tiny_set.classes == lid.LANGUAGES and tiny_set.sample_rate == 16000


def test_noisy_test_is_the_test_set_at_10_db(tiny_set) -> None:
    for clean, noisy in zip(tiny_set.splits["test"], tiny_set.splits["test_noisy"]):
        assert (clean.language, clean.text, len(clean.audio)) == (
            noisy.language,
            noisy.text,
            len(noisy.audio),
        )
        noise = noisy.audio - clean.audio
        snr = 10 * np.log10(
            np.mean(clean.audio.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2)
        )
        assert snr == pytest.approx(10.0, abs=0.3)  # clipping at ±1 shifts it a little at most


def test_features_are_mean_normalised_log_mels_and_batches_crop() -> None:
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    f = lid.features(wave)
    assert f.shape == (101, 40) and torch.allclose(f.mean(0), torch.zeros(40), atol=1e-5)
    assert lid.features(np.resize(wave, 8000), 8000).shape == (101, 40)  # resampled to 16 kHz first
    feats = [torch.randn(n, 40) for n in (120, 80, 300)]
    batches = lid.CropBatches({"train": (feats, torch.tensor([0, 1, 2]))}, crop_frames=100)
    x, y = batches.train_batch(6, torch.Generator().manual_seed(0))
    assert x.shape[0] == 6 and x.shape[2] == 40 and x.shape[1] <= 100 and y.shape == (6,)


def write_clip(path: Path, seconds: float, sr: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    save_audio(path, 0.3 * np.sin(2 * np.pi * 220 * t), sr)


def voxlingua_copy(root: Path, languages=("en", "fr"), videos: int = 12, dev: bool = True) -> None:
    """Clips named like VoxLingua107's: <root>/<lang>/<video>__U__S<n>---<start>-<end>.wav, dev/<lang>/."""
    for lang in languages:
        for v in range(videos):
            for s in range(2):
                write_clip(root / lang / f"vid{lang}{v:02d}__U__S{s}---{s:04d}.000-{s + 1:04d}.000.wav", 0.5)
        if dev:
            write_clip(root / "dev" / lang / f"dev{lang}__U__S0---0000.000-0001.000.wav", 0.5)


def test_voxlingua_from_the_data_dir_keeps_videos_in_one_split(tmp_path, monkeypatch) -> None:
    voxlingua_copy(tmp_path / "voxlingua107")
    data = lid.load_voxlingua(("en", "fr"), tmp_path, per_language=100, val_share=0.3)
    assert data.source == "real" and "dev set" in data.origin and data.classes == ("en", "fr")
    assert [len(data.splits["test"])] == [2] and {c.speaker for c in data.splits["test"]} == {
        "deven",
        "devfr",
    }
    train, val = ({c.speaker for c in data.splits[s]} for s in ("train", "val"))
    assert train and val and train.isdisjoint(val)
    assert len(data.splits["train"]) + len(data.splits["val"]) == 48
    assert all(len(c.audio) == 8000 for c in data.splits["train"])
    monkeypatch.setenv("DLP_DATA_DIR", str(tmp_path))
    assert lid.load_languages("auto", languages=("en", "fr")).source == "real"


def test_voxlingua_without_dev_holds_out_whole_videos(tmp_path) -> None:
    voxlingua_copy(tmp_path / "voxlingua107", dev=False, videos=30)
    data = lid.load_voxlingua(("en", "fr"), tmp_path, val_share=0.2, test_share=0.2)
    assert "held-out videos" in data.origin
    videos = {s: {c.speaker for c in data.splits[s]} for s in ("train", "val", "test")}
    assert all(videos[s] for s in videos) and videos["test"].isdisjoint(videos["train"] | videos["val"])


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_language_zip_downloads_into_the_cache(tmp_path, monkeypatch) -> None:
    write_clip(tmp_path / "a.wav", 0.3)
    clip = (tmp_path / "a.wav").read_bytes()
    archive = zip_of(
        {"fr/xyz__U__S0---0000.000-0001.000.wav": clip, "../evil.wav": clip, "fr/notes.txt": b""}
    )
    asked = []

    def fake_urlopen(url, timeout):
        asked.append(url)
        return io.BytesIO(archive)

    monkeypatch.setattr(lid.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.delenv("DLP_OFFLINE", raising=False)
    folder = lid.locate_language("fr")
    assert asked == ["http://bark.phon.ioc.ee/voxlingua107/fr.zip"]
    assert [p.name for p in folder.glob("*")] == ["xyz__U__S0---0000.000-0001.000.wav"]
    assert lid.language_folder("fr") == folder  # found in the cache next time


def test_missing_voxlingua_offline_says_where_to_put_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DLP_OFFLINE", "1")
    with pytest.raises(DlpError, match=r"voxlingua107/de\.zip into .*voxlingua107") as err:
        lid.load_voxlingua(("de",), tmp_path)
    assert "DLP_OFFLINE=1" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DlpError, match="unknown data source"):
        lid.load_languages("web")
