"""nanoGPT's own CPU recipe for tiny Shakespeare beside our l8, timed side by side in one process.

The reference is Karpathy's nanoGPT as it stands in its repository: the model of `model.py`, the data
preparation of `data/shakespeare_char/prepare.py` (a 90/10 split of the characters, written as uint16
`train.bin`/`val.bin` and read back through `np.memmap` every batch), and the training loop of `train.py`
with `config/train_shakespeare_char.py` and the README's CPU overrides:

    python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
        --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
        --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0

Its get_batch, estimate_loss, cosine schedule with warm-up, checkpointing on a better validation loss
and per-iteration logging (with the MFU estimate) are kept as they are; the loop runs iterations 0 to
2,000 as train.py does (2,001 updates, validation measured before the last one). Trimmed: DDP, the
GradScaler (a no-op without float16), wandb, `configurator.py` (the values are written out below),
resuming and GPT-2 initialisation (`from_pretrained`, `crop_block_size`), `generate`, and the slow
attention path taken only before PyTorch 2.0. Code reformatted to this project's line length.

The nanoGPT parts are copied from https://github.com/karpathy/nanoGPT under its licence:

    MIT License

    Copyright (c) 2022 Andrej Karpathy

    Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
    associated documentation files (the "Software"), to deal in the Software without restriction,
    including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense,
    and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so,
    subject to the following conditions:

    The above copyright notice and this permission notice shall be included in all copies or substantial
    portions of the Software.

    THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT
    LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN
    NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY,
    WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE
    SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

Then our l8 runs, with the preset we claim is fastest to the bar, in the same process on the same thread
count; both wall times run from the start of the work (data preparation included) to its end. The
speedup counts only when ours reaches l8's bar (val ≤ 1.88); a run that misses it scores 0.
Run: `.venv/bin/python benchmarks/nanogpt_reference.py [--preset fast] [--threads 1]`; writes
benchmarks/results/nanogpt-reference.json.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import pickle
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# --- nanoGPT model.py ---------------------------------------------------------------------------------


class LayerNorm(nn.Module):
    """LayerNorm but with an optional bias. PyTorch doesn't support simply bias=False"""

    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, input):
        return F.layer_norm(input, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        # key, query, value projections for all heads, but in a batch
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        # output projection
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        # regularization
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout

    def forward(self, x):
        B, T, C = x.size()  # batch size, sequence length, embedding dimensionality (n_embd)

        # calculate query, key, values for all heads in batch and move head forward to be the batch dim
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)

        # causal self-attention; Self-attend: (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T)
        y = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=None, dropout_p=self.dropout if self.training else 0, is_causal=True
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble all head outputs side by side

        # output projection
        y = self.resid_dropout(self.c_proj(y))
        return y


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        x = self.c_fc(x)
        x = self.gelu(x)
        x = self.c_proj(x)
        x = self.dropout(x)
        return x


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304  # GPT-2 vocab_size of 50257, padded up to nearest multiple of 64 for efficiency
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # True: bias in Linears and LayerNorms, like GPT-2. False: a bit better and faster


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.vocab_size is not None
        assert config.block_size is not None
        self.config = config

        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # https://paperswithcode.com/method/weight-tying

        # init all weights
        self.apply(self._init_weights)
        # apply special scaled init to the residual projections, per GPT-2 paper
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

        # report number of parameters
        print("number of parameters: %.2fM" % (self.get_num_params() / 1e6,))  # noqa: UP031

    def get_num_params(self, non_embedding=True):
        n_params = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n_params -= self.transformer.wpe.weight.numel()
        return n_params

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        device = idx.device
        b, t = idx.size()
        assert t <= self.config.block_size, (
            f"Cannot forward sequence of length {t}, block size is only {self.config.block_size}"
        )
        pos = torch.arange(0, t, dtype=torch.long, device=device)  # shape (t)

        # forward the GPT model itself
        tok_emb = self.transformer.wte(idx)  # token embeddings of shape (b, t, n_embd)
        pos_emb = self.transformer.wpe(pos)  # position embeddings of shape (t, n_embd)
        x = self.transformer.drop(tok_emb + pos_emb)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)

        if targets is not None:
            # if we are given some desired targets also calculate the loss
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        else:
            # inference-time mini-optimization: only forward the lm_head on the very last position
            logits = self.lm_head(x[:, [-1], :])  # note: using list [-1] to preserve the time dim
            loss = None

        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        # start with all of the candidate parameters
        param_dict = {pn: p for pn, p in self.named_parameters()}
        # filter out those that do not require grad
        param_dict = {pn: p for pn, p in param_dict.items() if p.requires_grad}
        # create optim groups. Any parameters that is 2D will be weight decayed, otherwise no.
        # i.e. all weight tensors in matmuls + embeddings decay, all biases and layernorms don't.
        decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
        nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
        optim_groups = [
            {"params": decay_params, "weight_decay": weight_decay},
            {"params": nodecay_params, "weight_decay": 0.0},
        ]
        num_decay_params = sum(p.numel() for p in decay_params)
        num_nodecay_params = sum(p.numel() for p in nodecay_params)
        print(f"num decayed parameter tensors: {len(decay_params)}, with {num_decay_params:,} parameters")
        n_nodecay = len(nodecay_params)
        print(f"num non-decayed parameter tensors: {n_nodecay}, with {num_nodecay_params:,} parameters")
        # Create AdamW optimizer and use the fused version if it is available
        fused_available = "fused" in inspect.signature(torch.optim.AdamW).parameters
        use_fused = fused_available and device_type == "cuda"
        extra_args = dict(fused=True) if use_fused else dict()
        optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas, **extra_args)
        print(f"using fused AdamW: {use_fused}")

        return optimizer

    def estimate_mfu(self, fwdbwd_per_iter, dt):
        """estimate model flops utilization (MFU) in units of A100 bfloat16 peak FLOPS"""
        # first estimate the number of flops we do per iteration.
        # see PaLM paper Appendix B as ref: https://arxiv.org/abs/2204.02311
        N = self.get_num_params()
        cfg = self.config
        L, H, Q, T = cfg.n_layer, cfg.n_head, cfg.n_embd // cfg.n_head, cfg.block_size
        flops_per_token = 6 * N + 12 * L * H * Q * T
        flops_per_fwdbwd = flops_per_token * T
        flops_per_iter = flops_per_fwdbwd * fwdbwd_per_iter
        # express our flops throughput as ratio of A100 bfloat16 peak flops
        flops_achieved = flops_per_iter * (1.0 / dt)  # per second
        flops_promised = 312e12  # A100 GPU bfloat16 peak flops is 312 TFLOPS
        mfu = flops_achieved / flops_promised
        return mfu


# --- nanoGPT data/shakespeare_char/prepare.py -------------------------------------------------------------


def prepare(input_file_path: Path, out: Path) -> None:
    """Characters to ids, 90/10 split, train.bin/val.bin (uint16) and meta.pkl in `out`."""
    with open(input_file_path) as f:
        data = f.read()
    print(f"length of dataset in characters: {len(data):,}")
    chars = sorted(list(set(data)))
    vocab_size = len(chars)
    print(f"vocab size: {vocab_size:,}")
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = {i: ch for i, ch in enumerate(chars)}
    n = len(data)
    train_data = data[: int(n * 0.9)]
    val_data = data[int(n * 0.9) :]
    train_ids = np.array([stoi[c] for c in train_data], dtype=np.uint16)
    val_ids = np.array([stoi[c] for c in val_data], dtype=np.uint16)
    print(f"train has {len(train_ids):,} tokens")
    print(f"val has {len(val_ids):,} tokens")
    train_ids.tofile(out / "train.bin")
    val_ids.tofile(out / "val.bin")
    with open(out / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": vocab_size, "itos": itos, "stoi": stoi}, f)


# --- nanoGPT train.py with config/train_shakespeare_char.py and the README's CPU overrides ---------------

RECIPE = dict(
    eval_interval=250,
    log_interval=1,
    eval_iters=20,
    always_save_checkpoint=False,
    gradient_accumulation_steps=1,
    batch_size=12,
    block_size=64,
    n_layer=4,
    n_head=4,
    n_embd=128,
    dropout=0.0,
    bias=False,
    learning_rate=1e-3,
    max_iters=2000,
    weight_decay=1e-1,
    beta1=0.9,
    beta2=0.99,
    grad_clip=1.0,
    decay_lr=True,
    warmup_iters=100,
    lr_decay_iters=2000,
    min_lr=1e-4,
    device="cpu",
)


def train_reference(data_dir: Path, out_dir: Path, max_iters: int = 2000) -> dict[str, float]:
    """train.py's loop, top to bottom; returns the last validation and training loss estimates."""
    c = dict(RECIPE, max_iters=max_iters, lr_decay_iters=max_iters)
    batch_size, block_size, eval_iters = c["batch_size"], c["block_size"], c["eval_iters"]
    device, gradient_accumulation_steps = c["device"], c["gradient_accumulation_steps"]
    torch.manual_seed(1337)
    device_type = "cuda" if "cuda" in device else "cpu"
    ctx = nullcontext()  # float32 on the CPU

    def get_batch(split):
        # We recreate np.memmap every batch to avoid a memory leak
        name = "train.bin" if split == "train" else "val.bin"
        data = np.memmap(os.path.join(data_dir, name), dtype=np.uint16, mode="r")
        ix = torch.randint(len(data) - block_size, (batch_size,))
        x = torch.stack([torch.from_numpy((data[i : i + block_size]).astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy((data[i + 1 : i + 1 + block_size]).astype(np.int64)) for i in ix])
        return x.to(device), y.to(device)

    iter_num, best_val_loss = 0, 1e9
    with open(os.path.join(data_dir, "meta.pkl"), "rb") as f:
        meta_vocab_size = pickle.load(f)["vocab_size"]
    model_args = dict(
        n_layer=c["n_layer"],
        n_head=c["n_head"],
        n_embd=c["n_embd"],
        block_size=block_size,
        bias=c["bias"],
        vocab_size=meta_vocab_size,
        dropout=c["dropout"],
    )
    model = GPT(GPTConfig(**model_args))
    model.to(device)
    optimizer = model.configure_optimizers(
        c["weight_decay"], c["learning_rate"], (c["beta1"], c["beta2"]), device_type
    )

    @torch.no_grad()
    def estimate_loss():
        out = {}
        model.eval()
        for split in ["train", "val"]:
            losses = torch.zeros(eval_iters)
            for k in range(eval_iters):
                X, Y = get_batch(split)
                with ctx:
                    logits, loss = model(X, Y)
                losses[k] = loss.item()
            out[split] = losses.mean()
        model.train()
        return out

    def get_lr(it):
        warmup_iters, lr_decay_iters = c["warmup_iters"], c["lr_decay_iters"]
        learning_rate, min_lr = c["learning_rate"], c["min_lr"]
        # 1) linear warmup for warmup_iters steps
        if it < warmup_iters:
            return learning_rate * (it + 1) / (warmup_iters + 1)
        # 2) if it > lr_decay_iters, return min learning rate
        if it > lr_decay_iters:
            return min_lr
        # 3) in between, use cosine decay down to min learning rate
        decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
        assert 0 <= decay_ratio <= 1
        coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))  # coeff ranges 0..1
        return min_lr + coeff * (learning_rate - min_lr)

    X, Y = get_batch("train")  # fetch the very first batch
    t0 = time.time()
    local_iter_num, running_mfu, losses = 0, -1.0, {}
    while True:
        lr = get_lr(iter_num) if c["decay_lr"] else c["learning_rate"]
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        if iter_num % c["eval_interval"] == 0:
            losses = estimate_loss()
            print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
            if losses["val"] < best_val_loss or c["always_save_checkpoint"]:
                best_val_loss = losses["val"]
                if iter_num > 0:
                    checkpoint = {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "model_args": model_args,
                        "iter_num": iter_num,
                        "best_val_loss": best_val_loss,
                        "config": c,
                    }
                    print(f"saving checkpoint to {out_dir}")
                    torch.save(checkpoint, os.path.join(out_dir, "ckpt.pt"))
        for _ in range(gradient_accumulation_steps):
            with ctx:
                logits, loss = model(X, Y)
                loss = loss / gradient_accumulation_steps
            X, Y = get_batch("train")
            loss.backward()
        if c["grad_clip"] != 0.0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), c["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        t1 = time.time()
        dt = t1 - t0
        t0 = t1
        if iter_num % c["log_interval"] == 0:
            lossf = loss.item() * gradient_accumulation_steps
            if local_iter_num >= 5:  # let the training loop settle a bit
                mfu = model.estimate_mfu(batch_size * gradient_accumulation_steps, dt)
                running_mfu = mfu if running_mfu == -1.0 else 0.9 * running_mfu + 0.1 * mfu
            print(f"iter {iter_num}: loss {lossf:.4f}, time {dt * 1000:.2f}ms, mfu {running_mfu * 100:.2f}%")
        iter_num += 1
        local_iter_num += 1
        if iter_num > c["max_iters"]:
            break
    return {"val_loss": float(losses["val"]), "train_loss": float(losses["train"])}


# --- the side-by-side measurement --------------------------------------------------------------------------


def run_reference(corpus: Path, max_iters: int = 2000) -> dict[str, float]:
    """prepare.py then train.py in a scratch directory; wall seconds from the start of prepare."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        prepare(corpus, Path(tmp))
        losses = train_reference(Path(tmp), Path(tmp), max_iters)
    return {**losses, "wall_seconds": time.perf_counter() - started}


def run_ours(preset: str, overrides: tuple[str, ...], data_dir: str, threads: int) -> dict[str, float]:
    """Our l8 through the same entry point as `dlp run` (tracked run, report, figures, sample)."""
    from dlpractice.runner import start_run

    started = time.perf_counter()
    outcome = start_run(
        "l8", preset, overrides, data="real", data_dir=data_dir, threads=threads, device="cpu"
    )
    m = outcome.metrics
    return {
        "val_loss": m["val_loss"],
        "train_loss": m["train_loss"],
        "wall_seconds": m["wall_seconds"],  # the lab's own figure: data, training, evaluation, sample
        "run_seconds": time.perf_counter() - started,  # plus the run's setup and tracking
        "tokens_per_second": m["tokens_per_second"],
    }


def l8_bar() -> float:
    from dlpractice.labs.language.l8_nanogpt import LAB

    return LAB.bar


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="fast", help="our l8's preset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override it")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--data-dir", default=os.environ.get("DLP_DATA_DIR", str(REPO.parent / "shared/data"))
    )
    parser.add_argument("--max-iters", type=int, default=2000, help="the reference's; fewer for a try")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the result file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["DLP_THREADS"] = str(args.threads)
    started = time.perf_counter()
    corpus = Path(args.data_dir) / "tinyshakespeare" / "input.txt"
    ref = run_reference(corpus, args.max_iters)
    print({"nanogpt": ref}, flush=True)
    ours = run_ours(args.preset, tuple(args.set), args.data_dir, args.threads)
    print({"ours": ours}, flush=True)
    figures = {f"nanogpt_{k}": v for k, v in ref.items()} | {f"ours_{k}": v for k, v in ours.items()}
    reached = ours["val_loss"] <= l8_bar()  # the bar is "val ≤ 1.88, faster than the reference"
    figures["speedup"] = ref["wall_seconds"] / ours["wall_seconds"] if reached else 0.0
    figures["load_after"] = os.getloadavg()[0]
    print({k: round(v, 4) for k, v in figures.items()})
    if args.no_write:
        return
    path = write_result(
        "nanogpt-reference",
        metric="speedup",
        value=figures["speedup"],
        bar=1.0,
        goal="max",
        seconds=time.perf_counter() - started,
        data=f"real: tinyshakespeare; ours: l8 --preset {args.preset} {' '.join(args.set)}".strip(),
        figures=figures,
        threads=args.threads,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
