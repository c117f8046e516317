"""data/captions.py: the grammar's captions parse back to their scene's facts, the vocabulary and the
teacher-forcing batches, and the Flickr8k loader on a tiny copy in the real layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlpractice.data.captions import (
    BOS,
    EOS,
    IGNORE,
    N_REFS,
    PAD,
    UNK,
    CaptionBatches,
    Facts,
    Vocabulary,
    caption_tensor,
    fact_verdict,
    facts_hold,
    generate_scenes,
    load_captions,
    load_flickr8k,
    parse_facts,
    words,
)
from dlpractice.errors import DlpError


def test_every_reference_states_its_scene_and_the_references_differ() -> None:
    images, captions, facts = generate_scenes(120, seed=3)
    assert images.shape == (120, 3, 64, 64) and images.dtype == np.float32
    assert {len(f.things) for f in facts} == {1, 2, 3}
    for refs, truth in zip(captions, facts):
        assert len(refs) == N_REFS and len({" ".join(r) for r in refs}) == N_REFS
        assert all(facts_hold(parse_facts(r), truth) for r in refs), (refs, truth)
    assert generate_scenes(5, seed=3)[1] == captions[:5]  # seeded


def test_a_relation_turned_around_or_a_colour_swapped_is_caught() -> None:
    truth = Facts((("blue", "square"), ("red", "circle")), (("red", "circle"), "left of", ("blue", "square")))
    assert facts_hold(parse_facts(words("a blue square to the right of a red circle")), truth)
    assert facts_hold(parse_facts(words("two shapes: a red circle and a blue square")), truth)
    assert not facts_hold(parse_facts(words("a red circle right of a blue square")), truth)
    assert not facts_hold(parse_facts(words("a blue circle left of a red square")), truth)
    assert not facts_hold(parse_facts(words("a red circle")), truth)
    assert fact_verdict(parse_facts(words("a red circle right of a blue square")), truth) == "false relation"
    assert fact_verdict(parse_facts(words("a blue circle left of a red square")), truth) == (
        "a colour or shape wrong"
    )
    assert fact_verdict(parse_facts(words("a red circle")), truth) == "wrong number of things"
    assert fact_verdict(parse_facts(words("a red circle above a blue square")), truth) == "false relation"
    assert fact_verdict(parse_facts(words("a blue square and a red circle")), truth) == "right"
    below = parse_facts(words("a green star below a red circle"))
    assert below.relation == (("red", "circle"), "above", ("green", "star"))


def test_vocabulary_round_trip_and_teacher_forcing_batches() -> None:
    captions = [[["a", "red", "star"], ["one", "red", "star"]], [["a", "blue", "circle"]]]
    vocab = Vocabulary.build(captions)
    assert vocab.tokens[:4] == ["<pad>", "<s>", "</s>", "<unk>"] and vocab.tokens[4] in ("a", "red", "star")
    assert vocab.encode(["a", "green", "star"])[2] == UNK
    assert vocab.decode([BOS, *vocab.encode(["a", "red", "star"])[1:], PAD]) == ["a", "red", "star"]
    ids = caption_tensor(captions, vocab, max_len=2)  # (2 images, N_REFS, <s> + 2 words + </s>)
    assert ids.shape == (2, N_REFS, 4) and vocab.decode(ids[1, 3].tolist()) == ["a", "blue"]
    images = np.zeros((2, 3, 8, 8), np.float32)
    batches = CaptionBatches({"train": images, "val": images}, {"train": ids, "val": ids}, eval_batch_size=5)
    x, tokens_in, targets = batches.train_batch(4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 8, 8) and tokens_in.shape == targets.shape == (4, 3)
    assert (tokens_in[:, 0] == BOS).all() and (targets[:, -1] == EOS).all()
    pairs = list(batches.eval_batches("val"))
    assert sum(len(b[0]) for b in pairs) == 2 * N_REFS
    short = Vocabulary.build([[["a", "b"]]])
    padded = caption_tensor([[["a"]], [["a", "b"]]], short, 5)
    _, inputs, goal = next(
        CaptionBatches({"val": np.zeros((2, 3, 8, 8))}, {"val": padded}).eval_batches("val")
    )
    assert (goal[inputs == PAD] == IGNORE).all() and (goal[0] == torch.tensor([4, EOS, IGNORE])).all()


def write_flickr8k(root: Path) -> None:
    """A tiny Flickr8k as its archives extract: Flicker8k_Dataset/*.jpg and the text files beside it."""
    folder = root / "flickr8k"
    (folder / "Flicker8k_Dataset").mkdir(parents=True)
    names = [f"{1000 + i}_abc.jpg" for i in range(6)]
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(
            folder / "Flicker8k_Dataset" / name
        )
    lines = [f"{name}#{k}\tA dog runs on the grass , number {k} ." for name in names for k in range(5)]
    lines.append("2258277193_586949ec62.jpg.1#0\tAn entry with no image .")  # the real file has a few
    (folder / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    for listing, part in zip(("trainImages", "devImages", "testImages"), (names[:3], names[3:4], names[4:])):
        (folder / f"Flickr_8k.{listing}.txt").write_text("\n".join(part) + "\n")


def test_flickr8k_loads_the_official_splits(tmp_path: Path) -> None:
    write_flickr8k(tmp_path)
    data = load_flickr8k(tmp_path, side=16)
    assert [len(data.images[s]) for s in ("train", "val", "test")] == [3, 1, 2]
    assert data.images["test"].shape == (2, 3, 16, 16) and data.source == "real" and data.facts is None
    assert data.captions["train"][0][2] == ["a", "dog", "runs", "on", "the", "grass", "number"]
    assert len(load_flickr8k(tmp_path, side=16, limits=(2, 0, 1)).images["train"]) == 2
    assert load_captions("auto", tmp_path, (4, 2, 2), seed=0, side=16).source == "real"


def test_missing_flickr8k_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(DlpError, match=r"Flickr8k not found: extract .*Flickr8k_Dataset\.zip.* into "):
        load_flickr8k(tmp_path)
    assert load_captions("auto", tmp_path, (4, 2, 2), seed=0, side=64).source == "embedded"
    write_flickr8k(tmp_path)
    (tmp_path / "flickr8k" / "Flickr8k.token.txt").write_text("no tab here\n")
    with pytest.raises(DlpError, match="is not 'NAME.jpg#k<TAB>caption'"):
        load_flickr8k(tmp_path)
