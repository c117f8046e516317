"""l8 nanoGPT: the smoke run, causality, reproducible sampling, the three model types, the corpus, resume."""

from __future__ import annotations

import signal

import pytest
import torch

from dlpractice.config import build_config
from dlpractice.data.shakespeare import CharVocab, TokenStream, stdlib_docstrings
from dlpractice.errors import RunInterrupted
from dlpractice.labs.language import l8_nanogpt
from dlpractice.models import gpt
from dlpractice.runner import RunSpec, read_run, resume_run, start_run
from dlpractice.tracking import Tracker

V, T = 11, 8


def tiny(model_type: str) -> torch.nn.Module:
    torch.manual_seed(0)
    size = gpt.GPTConfig(vocab_size=V, block_size=T, n_layer=2, n_head=2, n_embd=16)
    return gpt.build_model(model_type, size)


@pytest.mark.slow
def test_smoke_run():
    outcome = start_run(RunSpec("l8", "smoke", data="embedded"))
    m = outcome.metrics
    assert m["initial_loss"] > 4.0  # about ln(vocab size) at the start
    assert outcome.value == m["val_loss"] < m["initial_loss"] - 1.0
    assert m["tokens_per_second"] > 0 and m["wall_seconds"] > 0
    assert {p.stem for p in (outcome.run_dir / "figures").glob("*.png")} == {"loss", "sample"}
    assert "## Sample" in outcome.report.read_text()
    cfg = build_config(l8_nanogpt.Config, l8_nanogpt.PRESETS, "smoke")
    texts = l8_nanogpt.sample(outcome.run_dir, cfg, 2, seed=3)
    assert len(texts) == 2 and all(len(t) == cfg.sample_tokens for t in texts)
    assert texts == l8_nanogpt.sample(outcome.run_dir, cfg, 2, seed=3)


@pytest.mark.parametrize("model_type", ["gpt", "gru", "bigram"])
def test_changing_a_later_token_leaves_earlier_logits_unchanged(model_type):
    model = tiny(model_type).eval()
    idx = torch.randint(V, (2, T), generator=torch.Generator().manual_seed(1))
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % V
    a, b = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=1e-6)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


@pytest.mark.parametrize("model_type", ["gpt", "gru", "bigram"])
def test_forward_backward(model_type):
    model = tiny(model_type)
    idx = torch.randint(V, (3, T))
    logits, loss = model(idx, torch.randint(V, (3, T)))
    assert logits.shape == (3, T, V) and loss.ndim == 0
    assert abs(loss.item() - torch.log(torch.tensor(float(V))).item()) < 1.0
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model(idx)[1] is None


def test_gpt_ties_head_to_embedding():
    model = tiny("gpt")
    assert model.lm_head.weight is model.wte.weight


def test_gpt_config_defaults_are_the_full_presets_sizes_and_keywords_only():
    full = build_config(l8_nanogpt.Config, l8_nanogpt.PRESETS, "full")
    size = gpt.GPTConfig(vocab_size=V)
    assert all(getattr(size, k) == getattr(full, k) for k in ("block_size", "n_layer", "n_head", "n_embd"))
    model = gpt.GPT(size)
    assert model.config is size and len(model.blocks) == full.n_layer and model.wpe.num_embeddings == 64
    with pytest.raises(TypeError):
        gpt.GPTConfig(V, T)  # six ints in a row were easy to swap: sizes go by name


@pytest.mark.parametrize("model_type", ["gpt", "gru", "bigram"])
def test_sampling_is_reproducible_with_a_seed(model_type):
    model = tiny(model_type)
    start = torch.zeros(2, 1, dtype=torch.long)
    out = [gpt.generate(model, start, 20, 1.0, 3, torch.Generator().manual_seed(s)) for s in (5, 5, 6)]
    assert out[0].shape == (2, 21)  # longer than block_size: the context is cropped
    assert torch.equal(out[0], out[1]) and not torch.equal(out[0], out[2])


def test_token_stream_windows_are_shifted_and_evaluation_fixed():
    ids = torch.arange(100)
    data = TokenStream({"train": ids, "val": ids}, block_size=6, eval_iters=3, eval_batch_size=4)
    x, y = data.train_batch(5, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 6) and torch.equal(y, x + 1)
    first, second = list(data.eval_batches("val")), list(data.eval_batches("val"))
    assert len(first) == 3 and all(torch.equal(a[0], b[0]) for a, b in zip(first, second))


def test_embedded_corpus_is_deterministic_text():
    text = stdlib_docstrings()
    assert len(text) == 1_000_000 and text.isascii()
    vocab = CharVocab(sorted(set(text)))
    assert vocab.decode(vocab.encode(text[:500]).tolist()) == text[:500]


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_losses(monkeypatch):
    """A real SIGINT at step 80 of the smoke run; the resumed run ends where an unbroken one does."""
    unbroken = start_run(RunSpec("l8", "smoke", data="embedded"))
    log_metrics = Tracker.log_metrics

    def ctrl_c_at_80(self, step, metrics):
        log_metrics(self, step, metrics)
        if step == 80 and "train_loss" in metrics:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(Tracker, "log_metrics", ctrl_c_at_80)
    with pytest.raises(RunInterrupted, match="interrupted at step 80") as stop:
        start_run(RunSpec("l8", "smoke", data="embedded"))
    monkeypatch.setattr(Tracker, "log_metrics", log_metrics)
    run_id = str(stop.value).rsplit("--resume ", 1)[1]
    resumed = resume_run(run_id)
    assert read_run(resumed.run_dir).status == "finished"
    for key in ("val_loss", "train_loss", "steps"):
        assert resumed.metrics[key] == unbroken.metrics[key]


def test_our_gpt_computes_what_nanogpts_computes(peers):
    """Same recipe, same weights (renamed): the same logits and loss as nanoGPT's own model."""
    benchmark, folder = peers
    ref = benchmark.load_nanogpt_model(folder)
    torch.manual_seed(0)
    theirs = ref.GPT(ref.GPTConfig(block_size=T, vocab_size=V, n_layer=2, n_head=2, n_embd=16, bias=False))
    for p in theirs.parameters():  # weights far from the init, so that every difference shows in the logits
        torch.nn.init.normal_(p, 0.0, 0.5)
    ours = tiny("gpt")
    renamed = {
        k.removeprefix("transformer.").replace("h.", "blocks.", 1): v for k, v in theirs.state_dict().items()
    }
    renamed = {k.replace("mlp.c_fc", "mlp.0").replace("mlp.c_proj", "mlp.2"): v for k, v in renamed.items()}
    ours.load_state_dict(renamed)
    idx, targets = torch.randint(V, (3, T)), torch.randint(V, (3, T))
    (a, loss_a), (b, loss_b) = ours(idx, targets), theirs(idx, targets)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(loss_a, loss_b)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_peer_benchmark_runs_the_readme_cpu_recipe(peers):
    benchmark, folder = peers
    recipe = benchmark.NANOGPT_RECIPE
    readme = (folder / "nanoGPT" / "README.md").read_text()
    commands = [line.split() for line in readme.splitlines() if line.startswith("python train.py")]
    cpu = [command for command in commands if "--device=cpu" in command]
    assert cpu and cpu[0][2:] == recipe  # the README's own CPU line, word for word


def test_fast_preset_is_the_full_recipe_on_a_shorter_schedule():
    full, fast = (build_config(l8_nanogpt.Config, l8_nanogpt.PRESETS, p) for p in ("full", "fast"))
    same = ("model_type", "n_layer", "n_head", "n_embd", "block_size", "batch_size", "dropout", "eval_iters")
    assert all(getattr(fast, k) == getattr(full, k) for k in same)
    assert fast.steps < full.steps and fast.lr > full.lr
