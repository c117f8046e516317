"""Our tokenizers side by side with Hugging Face `tokenizers` and SentencePiece, trained on one text.

Each row reports the vocabulary size reached, the vocabulary's overlap (Jaccard) with its
counterpart, tokens per character, fertility (tokens per whitespace-separated word), the unknown
rate, training seconds and encoding throughput. Vocabularies are compared as the bytes each token
stands for, with the word-start marker ▁ read as a space and special tokens left out, so that a
byte-level "Ġthe" (Hugging Face), b" the" (ours) and "▁the" (SentencePiece) are the same token.

Simplified: SentencePiece reads its training file line by line, so it never sees a newline; it
encodes the evaluation text line by line (its newlines carry no token). Timings are one run each.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from dlpractice.tokenizers.bpe import BPETokenizer
from dlpractice.tokenizers.unigram import SPACE, UnigramTokenizer
from dlpractice.tokenizers.wordpiece import WordPieceTokenizer

ROW_KEYS = (
    "tokenizer",
    "algorithm",
    "vocab_size",
    "overlap_with",
    "vocab_jaccard",
    "tokens_per_char",
    "fertility",
    "unk_rate",
    "train_seconds",
    "encode_mb_per_s",
)
# Each tokenizer's vocabulary is compared with this counterpart (ours with the library's, and back).
COUNTERPART = {
    "ours-bpe": "hf-bpe",
    "hf-bpe": "ours-bpe",
    "sp-bpe": "ours-bpe",
    "ours-wordpiece": "hf-wordpiece",
    "hf-wordpiece": "ours-wordpiece",
    "ours-unigram": "sp-unigram",
    "sp-unigram": "ours-unigram",
    "hf-unigram": "ours-unigram",
}


@dataclass
class Trained:
    name: str
    algorithm: str
    train_seconds: float
    encode: Callable[[str], list[int]]
    unk_id: int | None  # None: the tokenizer cannot produce an unknown token
    vocab_size: int
    vocab: set[bytes]  # normalised token surfaces, special tokens excluded


def surface(token: str) -> bytes:
    """The text a ▁-marked or plain token stands for, as UTF-8 bytes."""
    return token.replace(SPACE, " ").encode("utf-8")


def timed(train: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = train()
    return result, time.perf_counter() - start


def train_ours(text: str, vocab_size: int) -> list[Trained]:
    bpe, bpe_seconds = timed(lambda: BPETokenizer.train(text, vocab_size))
    wordpiece, wordpiece_seconds = timed(lambda: WordPieceTokenizer.train(text, vocab_size))
    unigram, unigram_seconds = timed(lambda: UnigramTokenizer.train(text, vocab_size))

    def cold_bpe_encode(s: str) -> list[int]:
        bpe.clear_cache()
        return bpe.encode(s)

    return [
        Trained(
            "ours-bpe", "bpe", bpe_seconds, cold_bpe_encode, None, bpe.vocab_size, set(bpe.token_bytes())
        ),
        Trained(
            "ours-wordpiece",
            "wordpiece",
            wordpiece_seconds,
            wordpiece.encode,
            wordpiece.vocab[wordpiece.unk_token],
            wordpiece.vocab_size,
            {surface(token) for token in wordpiece.vocab if token != wordpiece.unk_token},
        ),
        Trained(
            "ours-unigram",
            "unigram",
            unigram_seconds,
            unigram.encode,
            0,
            unigram.vocab_size,
            {surface(piece) for piece in unigram.pieces[1:]},
        ),
    ]


def byte_level_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in for each byte (as Hugging Face's ByteLevel uses), back to the byte."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    stand_ins = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in stand_ins:
            stand_ins[b] = chr(256 + shifted)
            shifted += 1
    return {char: b for b, char in stand_ins.items()}


def hf_recipe(algorithm: str, vocab_size: int) -> tuple[Tokenizer, trainers.Trainer, str | None]:
    """An untrained Hugging Face tokenizer, its trainer and its unknown token, for our counterparts."""
    if algorithm == "bpe":  # byte-level, GPT-2's split: never an unknown token
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        return (
            tokenizer,
            trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False),
            None,
        )
    if algorithm == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=["[UNK]"], show_progress=False
        )
        return tokenizer, trainer, "[UNK]"
    if algorithm == "unigram":
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=["<unk>"], unk_token="<unk>", show_progress=False
        )
        return tokenizer, trainer, "<unk>"
    raise ValueError(f"unknown algorithm {algorithm!r}")


def train_hf(text: str, vocab_size: int) -> list[Trained]:
    bytes_of = byte_level_decoder()
    rows = []
    for algorithm in ("bpe", "wordpiece", "unigram"):
        tokenizer, trainer, unk = hf_recipe(algorithm, vocab_size)
        _, seconds = timed(
            lambda tokenizer=tokenizer, trainer=trainer: tokenizer.train_from_iterator([text], trainer)
        )
        tokens = [token for token in tokenizer.get_vocab() if token != unk]
        if algorithm == "bpe":
            vocab = {bytes(bytes_of[char] for char in token) for token in tokens}
        else:
            vocab = {surface(token) for token in tokens}
        rows.append(
            Trained(
                f"hf-{algorithm}",
                algorithm,
                seconds,
                lambda s, tokenizer=tokenizer: tokenizer.encode(s).ids,
                None if unk is None else tokenizer.token_to_id(unk),
                tokenizer.get_vocab_size(),
                vocab,
            )
        )
    return rows


def train_sentencepiece(text: str, vocab_size: int) -> list[Trained]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "corpus.txt"
        corpus.write_text(text, encoding="utf-8")
        for algorithm in ("bpe", "unigram"):
            model = io.BytesIO()
            _, seconds = timed(
                lambda algorithm=algorithm, model=model: spm.SentencePieceTrainer.train(
                    input=str(corpus),
                    model_writer=model,
                    model_type=algorithm,
                    vocab_size=vocab_size,
                    hard_vocab_limit=False,  # a small text may not support the full size
                    character_coverage=1.0,
                    normalization_rule_name="identity",
                    max_sentence_length=1 << 20,
                    minloglevel=2,
                )
            )
            processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
            ordinary = [
                i
                for i in range(processor.get_piece_size())
                if not (processor.is_control(i) or processor.is_unknown(i))
            ]
            rows.append(
                Trained(
                    f"sp-{algorithm}",
                    algorithm,
                    seconds,
                    lambda s, processor=processor: [
                        i for line in processor.encode(s.splitlines()) for i in line
                    ],
                    processor.unk_id(),
                    processor.get_piece_size(),
                    {surface(processor.id_to_piece(i)) for i in ordinary},
                )
            )
    return rows


def jaccard(a: set[bytes], b: set[bytes]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def measure(trained: Trained, counterpart: Trained, eval_text: str) -> dict[str, float | int | str]:
    """One comparison row: the encoding of `eval_text` timed once, counts from the same ids."""
    ids, seconds = timed(lambda: trained.encode(eval_text))
    unknown = 0 if trained.unk_id is None else sum(i == trained.unk_id for i in ids)
    return {
        "tokenizer": trained.name,
        "algorithm": trained.algorithm,
        "vocab_size": trained.vocab_size,
        "overlap_with": counterpart.name,
        "vocab_jaccard": round(jaccard(trained.vocab, counterpart.vocab), 4),
        "tokens_per_char": round(len(ids) / max(len(eval_text), 1), 4),
        "fertility": round(len(ids) / max(len(eval_text.split()), 1), 4),
        "unk_rate": round(unknown / max(len(ids), 1), 4),
        "train_seconds": round(trained.train_seconds, 4),
        "encode_mb_per_s": round(len(eval_text.encode("utf-8")) / 1e6 / max(seconds, 1e-9), 3),
    }


def compare_tokenizers(text: str, vocab_size: int = 512, eval_text: str | None = None) -> list[dict]:
    """Train all eight tokenizers on `text` and measure them on `eval_text` (default: `text`)."""
    eval_text = text if eval_text is None else eval_text
    trained = {t.name: t for t in train_ours(text, vocab_size) + train_hf(text, vocab_size)}
    trained.update({t.name: t for t in train_sentencepiece(text, vocab_size)})
    return [measure(t, trained[COUNTERPART[name]], eval_text) for name, t in trained.items()]
