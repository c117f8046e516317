"""data/prose.py: the prose and code domains, replay batches, and the instruction records and their split."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random

import pytest
import torch

from dlpractice.data import prose
from dlpractice.data.shakespeare import TokenStream
from dlpractice.errors import DlpError


def test_embedded_prose_is_the_language_reference_then_docstrings():
    text = prose.embedded_prose(600_000)
    assert len(text) == 600_000
    assert text.startswith(prose.pydoc_topics()[:1000])
    assert "assert_stmt ::=" in text  # the grammar rule on the "assert" topic page


def test_code_domain_is_python_source_split_by_position():
    code = prose.load_code()
    assert (
        len(code.train) == int(0.9 * prose.CODE_CHARS) and len(code.train) + len(code.val) == prose.CODE_CHARS
    )
    assert code.train.count("def ") > 500 and code.train.count("import ") > 100
    assert prose.EOT in code.train  # files are separated by the end-of-text token


def write_real(tmp_path, monkeypatch, name: str, place: str, content: str) -> None:
    """A tiny file in the real format, registered under its own checksum (the real one is not here)."""
    path = tmp_path / place
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    spec = getattr(prose, name)
    monkeypatch.setattr(
        prose, name, dataclasses.replace(spec, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    )


def test_real_prose_joins_shakespeare_and_the_verdict(tmp_path, monkeypatch):
    write_real(tmp_path, monkeypatch, "TINYSHAKESPEARE", "tinyshakespeare/input.txt", "First Citizen:\n" * 50)
    write_real(
        tmp_path, monkeypatch, "THE_VERDICT", "the-verdict/the-verdict.txt", "I had always thought " * 20
    )
    domain, source = prose.load_prose("auto", tmp_path)
    assert source == "real" and "First Citizen" in domain.train and "thought" in domain.val
    assert "the-verdict.txt" in domain.origin


def test_missing_real_instructions_offline_say_where_to_put_them(tmp_path):
    with pytest.raises(DlpError, match="instructions/instruction-data.json"):
        prose.load_instructions("real", tmp_path)


def records(n: int) -> list[dict]:
    return [
        {"instruction": f"Say {i}.", "input": "" if i % 2 else f"x{i}", "output": f"{i}"} for i in range(n)
    ]


def test_real_instructions_split_935_55_110_fixed_and_disjoint(tmp_path, monkeypatch):
    write_real(
        tmp_path, monkeypatch, "INSTRUCTIONS", "instructions/instruction-data.json", json.dumps(records(1100))
    )
    splits = prose.load_instructions("auto", tmp_path)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (935, 55, 110)
    assert splits.source == "real" and splits.describe()["n_test"] == 110
    outputs = [{r.output for r in part} for part in (splits.train, splits.val, splits.test)]
    assert set.union(*outputs) == {str(i) for i in range(1100)} and sum(map(len, outputs)) == 1100
    assert splits.test == prose.load_instructions("real", tmp_path).test  # the same every time
    assert [r.output for r in splits.train[:5]] != ["0", "1", "2", "3", "4"]  # shuffled before splitting


def test_a_file_that_is_not_instruction_records_is_one_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"question": "?"}]))
    with pytest.raises(DlpError, match="instruction/input/output"):
        prose.read_instructions(path)


def test_alpaca_prompt_with_and_without_input():
    with_input = prose.alpaca_prompt(prose.Instruction("Add the two numbers.", "2 and 3", "5"))
    task = "### Instruction:\nAdd the two numbers.\n\n### Input:\n2 and 3"
    assert with_input == f"{prose.PREAMBLE}\n\n{task}\n\n### Response:\n"
    assert "### Input" not in prose.alpaca_prompt(prose.Instruction("Name a colour.", "", "red"))


def test_generated_instructions_have_computed_answers():
    found = prose.generate_instructions(400, random.Random(1))
    sums = [r for r in found if r.instruction == "Add the two numbers."]
    assert sums and all(r.output.endswith(f"is {sum(map(int, r.input.split(' and ')))}.") for r in sums)
    upper = [r for r in found if "uppercase" in r.instruction]
    assert upper and all(r.output == r.input.upper() for r in upper)
    assert len({r.instruction.split()[0] for r in found}) >= 6  # several templates
    assert prose.generate_instructions(50, random.Random(1)) == found[:50]


def test_replay_stream_mixes_the_share_of_old_rows():
    new = TokenStream({"train": torch.zeros(100, dtype=torch.long)}, block_size=4)
    old = TokenStream({"train": torch.ones(100, dtype=torch.long)}, block_size=4)
    x, y = prose.ReplayStream(new, old, 0.25).train_batch(8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 4)
    assert x[:6].eq(0).all() and x[6:].eq(1).all()
    x, _ = prose.ReplayStream(new, old, 0.0).train_batch(8, torch.Generator().manual_seed(0))
    assert x.eq(0).all()
