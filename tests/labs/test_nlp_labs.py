"""Labs n2-n5: each smoke preset runs end to end; the seq2seq decoders and tasks behave."""

import random
from collections import Counter

import pytest
import torch

from dlpractice.data import seq2seq
from dlpractice.errors import DlpError
from dlpractice.labs.nlp import n4_transformer_from_scratch as n4
from dlpractice.labs.nlp import n5_rnn_seq2seq as n5
from dlpractice.models.seq2seq import Seq2SeqTransformer, TransformerConfig, beam_decode, greedy_decode
from dlpractice.runner import RunSpec, start_run


def figures_of(outcome) -> set[str]:
    return {p.stem for p in (outcome.run_dir / "figures").glob("*.png")}


@pytest.mark.slow
def test_n2_smoke() -> None:
    outcome = start_run(RunSpec("n2", "smoke", data="embedded"))
    m = outcome.metrics
    assert m["round_trip_exact"] == 1.0 and m["bpe_train_seconds"] > 0 and m["bpe_encode_mb_per_s"] > 0
    assert m["hf_bpe_train_seconds"] > 0 and 0.5 < m["bpe_vocab_jaccard"] <= 1.0
    assert m["recommended_vocab"] in (256, 300, 400)
    assert figures_of(outcome) == {"comparison", "vocab_sweep"}
    assert outcome.record.data_source == "embedded" and "stdlib" in outcome.record.data_info["data_origin"]
    assert "| ours-bpe |" in outcome.report.read_text()


@pytest.mark.slow
def test_n2_real_text_missing_is_one_line_error(tmp_path) -> None:
    with pytest.raises(DlpError, match="taylorswift.txt not found.*put https://"):
        start_run(RunSpec("n2", "smoke", data="real", data_dir=str(tmp_path)))


@pytest.mark.slow
def test_n3_smoke() -> None:
    outcome = start_run(RunSpec("n3", "smoke", data="embedded"))
    m = outcome.metrics
    assert m["max_abs_diff_sdpa"] < 1e-5 and m["max_abs_diff_mha"] < 1e-5 and outcome.met
    assert m["toy_exact_match"] > 0.9  # one attention layer learns to reverse
    assert figures_of(outcome) == {"loss", "positions", "masks", "attention_map"}


@pytest.mark.slow
def test_n4_smoke() -> None:
    outcome = start_run(RunSpec("n4", "smoke", ("steps=30",), data="real"))  # generated whatever --data says
    m = outcome.metrics
    assert outcome.record.data_source == "embedded"
    assert m["params"] == m["torch_params"]  # ours and nn.Transformer have the same size
    assert {"test_reverse", "long_beam_sort", "torch_test_date", "generalisation_gap"} <= set(m)
    assert figures_of(outcome) == {"loss", "attention"}
    assert "| nn.Transformer |" in outcome.report.read_text()
    assert list(outcome.record.children) == ["nn_transformer"]  # a child run: its own MLflow run and folder
    assert (outcome.run_dir / "nn_transformer").is_dir()


def test_n4_token_embeddings_do_not_drown_the_positions() -> None:
    """Times √C, N(0, 1) token embeddings are ~11× the sinusoids at C=128: the model barely saw order."""
    model = Seq2SeqTransformer(TransformerConfig(d_model=128))
    ids = torch.arange(len(seq2seq.SPECIALS), len(seq2seq.VOCAB))[None]  # (1, V')
    positions = torch.zeros_like(ids)
    tokens = model.embed_at(ids, positions) - model.positions(positions)  # (1, V', C)
    sinusoids = model.positions.table[:20]
    assert tokens.pow(2).mean().sqrt() < 2 * sinusoids.pow(2).mean().sqrt()


def test_n4_source_and_target_share_a_random_offset_in_training() -> None:
    """Each training example shifts both sides by one offset; the source counts back from </s>."""
    torch.manual_seed(0)
    model = Seq2SeqTransformer(TransformerConfig(d_model=16, n_heads=2, n_layers=1, d_ff=16)).train()
    data = seq2seq.Seq2SeqTasks(n_train=40, n_eval=8, max_len=5)
    src, src_len, tgt_in, tgt_out = next(data.eval_batches("test"))
    seen = []
    model.embed_at = lambda ids, positions: seen.append(positions) or torch.zeros(*ids.shape, 16)
    model(src, src_len, tgt_in, tgt_out)
    source, target = seen  # (B, S), (B, T)
    rows = torch.arange(len(src))
    assert (source[rows, src_len - 1] == target[:, 0]).all()  # </s> and <s> at the same position
    assert (source[rows, 0] == target[:, 0] + src_len - 1).all()
    assert len(set(target[:, 0].tolist())) > 1  # a different offset per example
    model.eval()
    seen.clear()
    model(src, src_len, tgt_in)
    assert (seen[1][:, 0] == 0).all()  # no offset when evaluating


def test_n4_model_config_follows_the_lab_config() -> None:
    """n4's Config sizes the model, and n5's comparison transformer (TransformerConfig()) is n4's default."""
    sizes = dict(d_model=48, n_heads=3, n_layers=1, d_ff=96, dropout=0.1, max_positions=40, pos_offset=False)
    assert n4.model_config(n4.Config(**sizes)) == TransformerConfig(**sizes)
    assert n4.model_config(n4.Config()) == TransformerConfig()


@pytest.mark.slow
def test_n5_smoke() -> None:
    outcome = start_run(RunSpec("n5", "smoke", ("steps=20",), data="embedded"))
    assert {"gru_bahdanau_test_sort", "lstm_luong_long_reverse", "lstm_luong_params"} <= set(outcome.metrics)
    assert "| lstm-luong |" in outcome.report.read_text()
    assert list(outcome.record.children) == ["lstm-luong"]  # the first variant is the run itself


def test_tasks_are_right_and_held_out() -> None:
    rng = random.Random(0)
    assert (
        seq2seq.make_example("reverse", 4, rng)[1]
        == seq2seq.make_example("reverse", 4, random.Random(0))[0][::-1]
    )
    source, target = seq2seq.make_example("add", 3, rng)
    assert int(target) == sum(map(int, source.split("+")))
    data = seq2seq.Seq2SeqTasks(n_train=400, n_eval=10, max_len=5)
    train = {(e.task, e.source) for e in data.splits["train"]}
    assert not train & {(e.task, e.source) for e in data.splits["test"] + data.splits["test_long"]}
    assert {len(e.source) for e in data.splits["test_long"]} <= {6}
    src, src_len, tgt_in, tgt_out = next(data.eval_batches("test"))
    assert (tgt_in[:, 1:] == tgt_out[:, :-1]).all() and src_len.max() == src.size(1)
    assert seq2seq.decode(data.splits["test"][0].tgt[1:]) == data.splits["test"][0].target


def longest_run(examples: list, task: str) -> list[int]:
    return [max(Counter(e.source).values()) for e in examples if e.task == task]


def test_narrow_alphabets_lengthen_the_runs_of_training_sorts_only() -> None:
    wide, narrow = (seq2seq.Seq2SeqTasks(n_train=4000, n_eval=20, narrow_alphabets=n) for n in (False, True))
    runs = {d: sum(r >= 4 for r in longest_run(d.splits["train"], "sort")) for d in (wide, narrow)}
    assert runs[narrow] > 2 * runs[wide]  # a letter 4+ times is far more common in training
    for split in ("val", "test", "test_long"):  # evaluation draws from all 26 letters, unchanged
        assert [e.source for e in narrow.splits[split]] == [e.source for e in wide.splits[split]]
    train = {(e.task, e.source) for e in narrow.splits["train"]}
    assert not train & {(e.task, e.source) for e in narrow.splits["test"] + narrow.splits["test_long"]}


class Oracle(torch.nn.Module):
    """A 'model' that knows the answer: next token = target[len(prefix)], with a runner-up."""

    def __init__(self, answers: torch.Tensor, vocab: int = 10):
        super().__init__()
        self.answers, self.vocab, self.w = answers, vocab, torch.nn.Parameter(torch.zeros(1))

    def encode(self, src, src_len):
        return (self.answers[src[:, 0]],)

    def next_logits(self, state, prefix):
        logits = torch.zeros(len(prefix), self.vocab)
        step = prefix.size(1) - 1
        logits[torch.arange(len(prefix)), state[0][:, min(step, state[0].size(1) - 1)]] = 5.0
        return logits


def test_greedy_and_beam_follow_the_best_path() -> None:
    answers = torch.tensor([[5, 6, seq2seq.EOS], [7, seq2seq.EOS, 0]])
    oracle, src = Oracle(answers), torch.tensor([[0], [1]])
    greedy = greedy_decode(oracle, src, torch.tensor([1, 1]), 5)
    beam = beam_decode(oracle, src, torch.tensor([1, 1]), 5, beam=3)
    for ids in (greedy, beam):
        assert ids[0, :4].tolist() == [seq2seq.BOS, 5, 6, seq2seq.EOS]
        assert ids[1, :3].tolist() == [seq2seq.BOS, 7, seq2seq.EOS]


@pytest.mark.parametrize("variant", ["gru-bahdanau", "lstm-luong"])
def test_rnn_decoding_by_prefix_matches_teacher_forcing(variant: str) -> None:
    cfg = n5.Config(n_embd=8, n_hidden=16)
    model = n5.Seq2SeqRNN(*variant.split("-"), cfg).eval()
    data = seq2seq.Seq2SeqTasks(n_train=40, n_eval=4, max_len=5)
    src, src_len, tgt_in, _ = next(data.eval_batches("test"))
    with torch.no_grad():
        full, _ = model(src, src_len, tgt_in)
        state = model.encode(src, src_len)
        torch.testing.assert_close(model.next_logits(state, tgt_in[:, :3]), full[:, 2])
    shuffled = torch.randperm(len(src))  # packing: padding never changes a sequence's encoding
    with torch.no_grad():
        again, _ = model(src[shuffled, : src_len.max() + 3].contiguous(), src_len[shuffled], tgt_in[shuffled])
    torch.testing.assert_close(again, full[shuffled], atol=1e-5, rtol=1e-5)
