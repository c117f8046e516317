"""Lab n2 speed: our pure-Python BPE training and encoding, side by side with Hugging Face `tokenizers`.

Text: taylorswift.txt (185,768 bytes, minbpe's benchmark), vocabulary 512, GPT-4 split for ours and
GPT-2's byte-level split for Hugging Face (run on one thread, as ours is). Each figure is the median of
3 runs in this process. Encoding starts from an empty chunk cache every run; the naive encoder (every
merge, in order, over every chunk) runs on a slice, as it is slow, and must give the same ids.

Usage: .venv/bin/python benchmarks/tokenizer_speed.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results_io import write_result  # noqa: E402

VOCAB_SIZE = 512
REPEATS = 3
NAIVE_SLICE_CHARS = 20_000
TEXT_PLACE = Path("taylorswift") / "taylorswift.txt"


def find_text(explicit: str | None) -> Path:
    """The text under --data-dir, else $DLP_DATA_DIR, else ../shared/data next to the repository."""
    from dlpractice.data.fetch import data_dir

    root = data_dir(explicit) or Path(__file__).resolve().parents[1].parent / "shared" / "data"
    path = root / TEXT_PLACE
    if not path.is_file():
        sys.exit(f"tokenizer_speed: {path} not found; pass --data-dir DIR with {TEXT_PLACE} inside")
    return path


def median_seconds(run: Callable[[], object]) -> tuple[float, object]:
    """Median wall time of REPEATS calls, and the last call's result."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding taylorswift/taylorswift.txt")
    args = parser.parse_args()
    text = find_text(args.data_dir).read_text(encoding="utf-8")
    os.environ["RAYON_NUM_THREADS"] = "1"  # Hugging Face trains on one thread, like ours (set before import)

    from dlpractice.tokenizers.bpe import BPETokenizer
    from dlpractice.tokenizers.compare import hf_recipe

    started = time.perf_counter()
    train_seconds, ours = median_seconds(lambda: BPETokenizer.train(text, VOCAB_SIZE))

    def train_hf() -> None:
        tokenizer, trainer, _ = hf_recipe("bpe", VOCAB_SIZE)
        tokenizer.train_from_iterator([text], trainer)

    hf_seconds, _ = median_seconds(train_hf)

    def encode_cold(sample: str) -> list[int]:
        ours.clear_cache()
        return ours.encode(sample)

    encode_seconds, ids = median_seconds(lambda: encode_cold(text))
    assert ours.decode(ids) == text, "round trip failed"
    naive_sample = text[:NAIVE_SLICE_CHARS]
    naive_seconds, naive_ids = median_seconds(lambda: ours.encode_naive(naive_sample))
    assert naive_ids == encode_cold(naive_sample), "fast and naive encoders disagree"

    mb_per_s = len(text.encode("utf-8")) / 1e6 / encode_seconds
    naive_mb_per_s = len(naive_sample.encode("utf-8")) / 1e6 / naive_seconds
    figures = {
        "bpe_train_seconds": round(train_seconds, 4),
        "hf_bpe_train_seconds": round(hf_seconds, 4),
        "bpe_encode_mb_per_s": round(mb_per_s, 3),
        "naive_encode_mb_per_s": round(naive_mb_per_s, 4),
        "encode_speedup_vs_naive": round(mb_per_s / naive_mb_per_s, 1),
    }
    path = write_result(
        "tokenizer-speed",
        metric="bpe_train_seconds",
        value=figures["bpe_train_seconds"],
        bar=0.3,
        goal="min",
        seconds=time.perf_counter() - started,
        data="real",
        figures=figures,
        threads=1,
    )
    print(f"{figures} -> {path}")


if __name__ == "__main__":
    main()
