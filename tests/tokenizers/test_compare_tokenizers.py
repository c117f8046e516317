"""The comparison trains all eight tokenizers on a small text and returns one complete row each."""

from __future__ import annotations

from dlpractice.tokenizers.compare import ROW_KEYS, byte_level_decoder, compare_tokenizers


def test_compare_returns_a_row_per_tokenizer_with_the_expected_keys(corpus: str) -> None:
    rows = compare_tokenizers(corpus[:3000], vocab_size=300)
    names = [row["tokenizer"] for row in rows]
    assert sorted(names) == sorted(
        [
            "ours-bpe",
            "ours-wordpiece",
            "ours-unigram",
            "hf-bpe",
            "hf-wordpiece",
            "hf-unigram",
            "sp-bpe",
            "sp-unigram",
        ]
    )
    for row in rows:
        assert tuple(row) == ROW_KEYS
        assert 0.0 <= row["vocab_jaccard"] <= 1.0
        assert 0.0 <= row["unk_rate"] <= 1.0
        assert row["tokens_per_char"] > 0 and row["fertility"] > 0 and row["encode_mb_per_s"] > 0
    by_name = {row["tokenizer"]: row for row in rows}
    assert by_name["ours-bpe"]["vocab_size"] == by_name["hf-bpe"]["vocab_size"] == 300
    assert by_name["ours-bpe"]["vocab_jaccard"] > 0.5  # same algorithm, same size: mostly the same merges


def test_byte_level_stand_ins_cover_every_byte_once() -> None:
    decoder = byte_level_decoder()
    assert sorted(decoder.values()) == list(range(256))
    assert decoder["Ġ"] == ord(" ") and decoder["a"] == ord("a")
