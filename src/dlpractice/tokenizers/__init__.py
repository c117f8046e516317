"""Tokenizers written from scratch for lab n2: byte-level BPE, WordPiece and Unigram, plus a comparison
with Hugging Face `tokenizers` and SentencePiece trained on the same text."""

from dlpractice.tokenizers.bpe import GPT4_SPLIT_PATTERN, BPETokenizer
from dlpractice.tokenizers.compare import compare_tokenizers
from dlpractice.tokenizers.unigram import UnigramTokenizer
from dlpractice.tokenizers.wordpiece import WordPieceTokenizer

__all__ = [
    "GPT4_SPLIT_PATTERN",
    "BPETokenizer",
    "UnigramTokenizer",
    "WordPieceTokenizer",
    "compare_tokenizers",
]
