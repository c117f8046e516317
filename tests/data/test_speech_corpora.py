"""Speech Commands and LibriSpeech loaders on tiny copies in the real layouts, written here: extracted in the
data directory, or as an archive whose checksum is checked and which is extracted once into the cache."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dlpractice.data import fetch, speech_corpora
from dlpractice.data.speech_corpora import load_librispeech, load_speech_commands
from dlpractice.errors import DlpError

RATE = 16000


def tone(seconds: float, pitch: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * pitch * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


def write_speech_commands(root: Path) -> None:
    """Two words by three speakers; speaker c is the test split, b the validation split."""
    for i, word in enumerate(("marvin", "yes")):
        for speaker in ("a", "b", "c"):
            (root / word).mkdir(parents=True, exist_ok=True)
            sf.write(root / word / f"{speaker}1_nohash_0.wav", tone(1.0, 200 + 100 * i), RATE)
    (root / speech_corpora.BACKGROUND).mkdir()
    sf.write(root / speech_corpora.BACKGROUND / "white_noise.wav", tone(3.0, 50), RATE)
    (root / "testing_list.txt").write_text("marvin/c1_nohash_0.wav\nyes/c1_nohash_0.wav\n")
    (root / "validation_list.txt").write_text("marvin/b1_nohash_0.wav\nyes/b1_nohash_0.wav\n")


def write_librispeech(root: Path, subset: str) -> None:
    chapter = root / "LibriSpeech" / subset / "84" / "121123"
    chapter.mkdir(parents=True)
    lines = []
    for n, text in enumerate(("GO DO YOU HEAR", "BUT IN LESS THAN FIVE MINUTES")):
        sf.write(chapter / f"84-121123-{n:04d}.flac", tone(0.5 + n, 300), RATE)
        lines.append(f"84-121123-{n:04d} {text}")
    (chapter / "84-121123.trans.txt").write_text("\n".join(lines) + "\n")


def test_speech_commands_splits_by_the_lists_and_leaves_out_background_noise(tmp_path, monkeypatch):
    monkeypatch.setenv("DLP_HOME", str(tmp_path / "home"))
    write_speech_commands(tmp_path / "data" / "speech_commands")
    directory = tmp_path / "data"
    test = load_speech_commands("testing", directory=directory)
    assert [(r.text, r.speaker) for r in test] == [("marvin", "c1"), ("yes", "c1")]
    train = load_speech_commands("training", directory=directory)
    assert sorted({r.speaker for r in train}) == ["a1"] and len(train) == 2
    [marvin] = load_speech_commands("validation", words=("marvin",), directory=directory)
    assert (
        marvin.sample_rate == RATE
        and marvin.audio.shape == (RATE,)
        and marvin.name == "marvin/b1_nohash_0.wav"
    )
    with pytest.raises(DlpError, match="no clip of sheila"):
        load_speech_commands("testing", words=("sheila",), directory=directory)
    with pytest.raises(DlpError, match="unknown Speech Commands split"):
        load_speech_commands("dev", directory=directory)


def test_librispeech_reads_transcripts_and_flac(tmp_path, monkeypatch):
    monkeypatch.setenv("DLP_HOME", str(tmp_path / "home"))
    write_librispeech(tmp_path / "data", "test-clean")
    utterances = load_librispeech("test-clean", directory=tmp_path / "data")
    assert [u.text for u in utterances] == ["GO DO YOU HEAR", "BUT IN LESS THAN FIVE MINUTES"]
    assert utterances[1].audio.shape == (int(1.5 * RATE),) and utterances[0].speaker == "84"
    assert len(load_librispeech("test-clean", limit=1, directory=tmp_path / "data")) == 1
    with pytest.raises(DlpError, match="unknown LibriSpeech subset"):
        load_librispeech("test-noisy", directory=tmp_path / "data")


def archive_of(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def test_an_archive_is_checked_then_extracted_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DLP_OFFLINE", "1")
    write_speech_commands(tmp_path / "corpus")
    data = tmp_path / "data"
    data.mkdir()
    archive = data / "speech_commands_v0.02.tar.gz"
    archive.write_bytes(archive_of(tmp_path / "corpus"))
    with pytest.raises(DlpError, match="checksum mismatch"):  # the tiny copy is not the published file
        load_speech_commands("testing", directory=data)
    tiny = dataclasses.replace(speech_corpora.SPEECH_COMMANDS, sha256=fetch.sha256_of(archive))
    monkeypatch.setattr(speech_corpora, "SPEECH_COMMANDS", tiny)
    assert len(load_speech_commands("testing", directory=data)) == 2
    archive.unlink()  # now read from the cache's extraction
    assert len(load_speech_commands("training", directory=data)) == 2


def test_offline_and_absent_is_one_line_saying_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DLP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DLP_OFFLINE", "1")
    with pytest.raises(
        DlpError, match=r"test-clean.tar.gz not found and DLP_OFFLINE=1; put https://www.openslr"
    ):
        load_librispeech("test-clean", directory=tmp_path)
