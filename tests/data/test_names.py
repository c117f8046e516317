import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch

from dlpractice.data import fetch
from dlpractice.data.names import (
    NAMES_TXT,
    Vocab,
    context_windows,
    embedded_names,
    load_names,
    makemore_split,
    split_words,
)
from dlpractice.errors import DlpError

WORDS = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail"]


def real_copy(directory: Path, text: str | None = None) -> Path:
    """A names.txt laid out as in a data directory, with the published checksum patched to match."""
    path = directory / "names" / "names.txt"
    path.parent.mkdir(parents=True)
    path.write_text(text if text is not None else "\n".join(WORDS) + "\n")
    return path


@pytest.fixture
def published_checksum(monkeypatch: pytest.MonkeyPatch):
    """Make our small test file the 'published' one, so the real lookup code runs unchanged."""

    def patch(path: Path) -> None:
        spec = fetch.RealFile(
            NAMES_TXT.name, NAMES_TXT.url, hashlib.sha256(path.read_bytes()).hexdigest(), NAMES_TXT.places
        )
        monkeypatch.setattr("dlpractice.data.names.NAMES_TXT", spec)

    return patch


def test_embedded_names_are_the_census_first_names():
    words, origin = embedded_names()
    assert len(words) == 5163
    assert words == sorted(set(words)) and all(w.isalpha() and w.islower() for w in words)
    assert "names package" in origin


def test_split_is_fixed_and_covers_everything():
    words, _ = embedded_names()
    train, val, test = split_words(words)
    assert (len(train), len(val), len(test)) == (4130, 516, 517)
    assert sorted(train + val + test) == words
    assert split_words(words) == (train, val, test)


def test_makemore_split_holds_out_makemores_own_test_names():
    """The reference: makemore.py's create_datasets, as it runs after torch.manual_seed(3407)."""
    words, _ = embedded_names()
    torch.manual_seed(3407)
    test_set_size = min(1000, int(len(words) * 0.1))
    rp = torch.randperm(len(words)).tolist()
    makemore_train = [words[i] for i in rp[:-test_set_size]]
    makemore_test = [words[i] for i in rp[-test_set_size:]]
    train, val, test = makemore_split(words)
    assert test == makemore_test and len(test) == 516
    assert train + val == makemore_train and len(val) == 516  # validation comes out of its training names
    names = load_names("embedded", split="makemore")
    assert names.test == test and names.describe()["split"] == "makemore"


def test_unknown_split_is_one_line_error():
    with pytest.raises(DlpError, match="unknown split 'makemor'"):
        load_names("embedded", split="makemor")


def test_real_from_data_dir(tmp_path, published_checksum):
    path = real_copy(tmp_path)
    published_checksum(path)
    names = load_names("real", tmp_path)
    assert names.source == "real" and names.origin == str(path)
    assert sorted(names.train + names.val + names.test) == sorted(WORDS)


def test_data_dir_from_environment(tmp_path, monkeypatch, published_checksum):
    published_checksum(real_copy(tmp_path))
    monkeypatch.setenv("DLP_DATA_DIR", str(tmp_path))
    assert load_names("auto").source == "real"


def test_auto_falls_back_to_embedded_and_says_so(tmp_path):
    names = load_names("auto", tmp_path)
    assert names.source == "embedded"
    assert names.describe()["data_source"] == "embedded"


def test_checksum_mismatch_is_rejected(tmp_path):
    real_copy(tmp_path, "tampered\n")
    with pytest.raises(DlpError, match="checksum mismatch"):
        load_names("real", tmp_path)


def test_missing_real_data_offline_says_where_to_put_it(tmp_path):
    with pytest.raises(DlpError) as err:
        load_names("real", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "names" / "names.txt") in message and "DLP_OFFLINE" in message
    assert "\n" not in message


def test_unreachable_url_fails_fast(tmp_path, monkeypatch):
    monkeypatch.delenv("DLP_OFFLINE")
    spec = fetch.RealFile("names.txt", "http://127.0.0.1:9/names.txt", NAMES_TXT.sha256, NAMES_TXT.places)
    monkeypatch.setattr("dlpractice.data.names.NAMES_TXT", spec)
    with pytest.raises(DlpError, match="download failed"):
        load_names("real", tmp_path)
    assert not list((tmp_path / "dlp-home").glob("cache/*"))  # nothing half-written in the cache


class _OneFile(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 (the http.server API)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("good", [True, False])
def test_download_to_cache_with_checksum(tmp_path, monkeypatch, good):
    monkeypatch.delenv("DLP_OFFLINE")
    body = ("\n".join(WORDS) + "\n").encode()
    _OneFile.body = body
    server = http.server.HTTPServer(("127.0.0.1", 0), _OneFile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    digest = hashlib.sha256(body if good else b"other").hexdigest()
    spec = fetch.RealFile(
        "names.txt", f"http://127.0.0.1:{server.server_port}/names.txt", digest, NAMES_TXT.places
    )
    monkeypatch.setattr("dlpractice.data.names.NAMES_TXT", spec)
    try:
        if good:
            names = load_names("real", tmp_path / "empty")
            assert names.origin.endswith("cache/names.txt")
            assert load_names("auto").source == "real"  # now found in the cache, no download
        else:
            with pytest.raises(DlpError, match="checksum mismatch"):
                load_names("real", tmp_path / "empty")
    finally:
        server.shutdown()


def test_context_windows_pad_with_the_boundary():
    vocab = Vocab.from_words(["emma"])
    x, y = context_windows(["emma"], vocab, block_size=3)
    assert [vocab.decode([i for i in row if i]) for row in x.tolist()] == ["", "e", "em", "emm", "mma"]
    assert vocab.decode(y.tolist()[:-1]) == "emma" and y[-1].item() == 0
