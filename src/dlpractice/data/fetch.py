"""Find a real dataset file on disk or download it once, with a checksum, into the cache.

Search order: the data directory (`--data-dir`, else `$DLP_DATA_DIR`), then the cache under `DLP_HOME`,
then a download from the original URL (skipped when `DLP_OFFLINE=1`). A file whose SHA-256 differs from
the published one is rejected. Nothing waits on the network for more than `TIMEOUT_S`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dlpractice.errors import DlpError
from dlpractice.home import cache_dir

TIMEOUT_S = 15


@dataclass(frozen=True)
class RealFile:
    """One file of a real dataset: where it comes from and where it may already lie."""

    name: str  # file name in the cache, e.g. "names.txt"
    url: str
    sha256: str
    places: tuple[str, ...]  # paths to try inside a data directory, e.g. ("names/names.txt", "names.txt")


def data_dir(explicit: str | Path | None = None) -> Path | None:
    """The data directory to search first: the flag, else `$DLP_DATA_DIR`, else none."""
    chosen = explicit or os.environ.get("DLP_DATA_DIR")
    return Path(chosen).expanduser().resolve() if chosen else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(path: Path, spec: RealFile) -> Path:
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise DlpError(
            f"checksum mismatch for {path} (sha256 {actual[:12]}…, expected {spec.sha256[:12]}…): "
            f"replace it with the original from {spec.url}"
        )
    return path


def find_local(spec: RealFile, directory: str | Path | None = None) -> Path | None:
    """The first existing copy in the data directory or the cache, checksum-verified; None if absent."""
    root = data_dir(directory)
    candidates = [root / place for place in spec.places] if root else []
    candidates.append(cache_dir() / spec.name)
    for path in candidates:
        if path.is_file():
            return verified(path, spec)
    return None


def download(spec: RealFile) -> Path:
    """Download into the cache atomically; a partial or wrong download never lands there."""
    target = cache_dir() / spec.name
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{spec.name}.")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=TIMEOUT_S) as response:
            while block := response.read(1 << 20):
                out.write(block)
        verified(tmp, spec)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def locate(spec: RealFile, directory: str | Path | None = None) -> Path:
    """A verified local copy of `spec`, downloading it if allowed; otherwise a one-line DlpError."""
    local = find_local(spec, directory)
    if local:
        return local
    root = data_dir(directory)
    where = (
        f"{root / spec.places[0]}"
        if root
        else f"<data dir>/{spec.places[0]} (set DLP_DATA_DIR or --data-dir)"
    )
    if os.environ.get("DLP_OFFLINE") == "1":
        reason = "DLP_OFFLINE=1"
    else:
        try:
            return download(spec)
        except (urllib.error.URLError, OSError) as err:
            reason = f"download failed: {getattr(err, 'reason', err)}"
    raise DlpError(f"{spec.name} not found and {reason}; put {spec.url} at {where}")
