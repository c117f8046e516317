"""A trained model ready to ship: int8 quantisation with torch.ao, TorchScript and ONNX export, and what
each costs on disk and in time.

- Dynamic int8 (torch.ao.quantization.quantize_dynamic): Linear weights stored in int8, activations
  quantised on the fly batch by batch; convolutions stay float.
- Static int8 (FX graph mode, x86/fbgemm backend): conv-BN-ReLU fused, observers record activation ranges on
  calibration batches, then every layer runs in int8 with fixed scales.
- Quantisation-aware training (FX): fake-quantise modules round weights and activations in the forward
  pass while the float weights keep training (straight-through gradients), then the same conversion.
- TorchScript (torch.jit.trace) and ONNX (torch.onnx.export, run by onnxruntime on one thread).
torch.ao.quantization warns on every call that it will move to torchao; torch 2.14 still runs it, and the
warnings are silenced here so that a run's log shows the lab's own lines.
Sizes are the bytes of the file each format saves; latency is the median of many timed calls after a
warm-up, one thread, batch by batch as a server would call it.
"""

from __future__ import annotations

import gzip
import io
import pickle
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlpractice.errors import DlpError
from dlpractice.models.convnets import classify

BACKEND = "x86"  # fbgemm's successor in torch.ao: int8 kernels for x86 CPUs


class LogitsOnly(nn.Module):
    """The `logits, loss = model(x)` contract cut to `logits = model(x)`: what tracers and exporters take."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[0]


class WithLoss(nn.Module):
    """A logits-only module (a QAT graph) back in the `logits, loss = model(x, targets)` contract of fit()."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        return classify(self.net(x), targets)


@contextmanager
def quiet_quantisation() -> Iterator[None]:
    """torch.ao.quantization's deprecation notices (one per call) and observer warnings, silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao")
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")  # torch.load of qtensors
        yield


def quantise_dynamic(model: nn.Module) -> nn.Module:
    """Int8 weights for every Linear, activations quantised per batch at run time."""
    from torch.ao.quantization import quantize_dynamic

    with quiet_quantisation():
        return quantize_dynamic(LogitsOnly(model).eval(), {nn.Linear}, dtype=torch.qint8)


def quantise_static(model: nn.Module, calibration: torch.Tensor, batch: int = 256) -> nn.Module:
    """Post-training static int8: fuse, observe activation ranges on `calibration` (N, C, H, W), convert."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with quiet_quantisation(), torch.no_grad():
        prepared = prepare_fx(
            LogitsOnly(model).eval(), get_default_qconfig_mapping(BACKEND), (calibration[:1],)
        )
        for i in range(0, len(calibration), batch):
            prepared(calibration[i : i + batch])
        return convert_fx(prepared)


def static_skeleton(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """The static int8 graph of `model` with placeholder scales: load_state_dict of a saved static model
    fills in its weights and scales (a served run rebuilds its model this way, with no pickle)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with quiet_quantisation(), torch.no_grad():
        prepared = prepare_fx(LogitsOnly(model).eval(), get_default_qconfig_mapping(BACKEND), (example,))
        prepared(example)
        return convert_fx(prepared)


def load_static(model: nn.Module, example: torch.Tensor, path: Path) -> nn.Module:
    """A saved static int8 state_dict (state_bytes) back in `model`'s static int8 graph."""
    skeleton = static_skeleton(model, example)
    with quiet_quantisation():
        try:
            state = torch.load(path, weights_only=True)  # tensors, qparams and dtypes only: no code runs
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
            raise DlpError(f"{path} is unreadable (missing or damaged): {err}") from None
        skeleton.load_state_dict(state)
    return skeleton.eval()


def prepare_qat(model: nn.Module, example: torch.Tensor) -> WithLoss:
    """`model` with fake quantisation of weights and activations, ready for fit() (train mode)."""
    from torch.ao.quantization import get_default_qat_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    with quiet_quantisation():
        net = prepare_qat_fx(LogitsOnly(model).train(), get_default_qat_qconfig_mapping(BACKEND), (example,))
    return WithLoss(net)


def convert_qat(trained: WithLoss) -> nn.Module:
    """The fake-quantised graph after training, converted to real int8 kernels."""
    from torch.ao.quantization.quantize_fx import convert_fx

    with quiet_quantisation():
        return convert_fx(trained.net.eval())


def state_bytes(model: nn.Module) -> bytes:
    """The model's state_dict as torch.save writes it: the one format that holds quantised tensors, and
    that torch.load(weights_only=True) reads back without running code."""
    buffer = io.BytesIO()
    with quiet_quantisation():
        torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def gzipped_size(data: bytes) -> int:
    """Bytes after gzip: zeros left by pruning cost nothing in a dense file, but compress away."""
    return len(gzip.compress(data, compresslevel=6))


def torchscript(model: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """torch.jit.trace of a logits-only model on `example` (N, C, H, W); batch size stays free."""
    with quiet_quantisation(), torch.no_grad():
        return torch.jit.trace(model.eval(), example)


def script_bytes(scripted: torch.jit.ScriptModule) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    return buffer.getvalue()


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """The logits-only model as an ONNX file with a free batch axis, through torch.export (the exporter
    torch uses by default)."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=UserWarning)
        torch.onnx.export(
            model.eval(),
            (example,),
            str(path),
            input_names=["image"],
            output_names=["logits"],
            dynamic_shapes={"x": {0: batch}},
            verbose=False,
            report=False,
            external_data=False,  # one file: the weights inside the .onnx, so its size is the model's
        )
    return path


def onnx_session(path: Path) -> Any:
    """An onnxruntime CPU session on one thread (the same budget the torch models get)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_runner(session: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The session as a function of a (B, C, H, W) tensor returning its (B, n_classes) logits."""
    name = session.get_inputs()[0].name

    def logits(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {name: x.numpy()})[0])

    return logits


def interleaved_median_ms(
    calls: dict[str, Callable[[torch.Tensor], Any]], x: torch.Tensor, repeats: int, warmup: int, rounds: int
) -> dict[str, float]:
    """Median wall time of each call(x) in milliseconds, over `rounds` rounds that take the calls in turn,
    each call timed repeats // rounds times per round after `warmup` untimed calls: a change in the
    machine's load during the measurement hits every call alike instead of the one timed at that moment."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, call in calls.items():
                for _ in range(warmup):
                    call(x)
                for _ in range(max(1, repeats // rounds)):
                    start = time.perf_counter()
                    call(x)
                    times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(seconds) for name, seconds in times.items()}


@torch.inference_mode()
def predict_logits(call: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int = 500):
    """(N, n_classes) float logits of a logits-only callable, batch by batch."""
    return torch.cat([call(x[i : i + batch]).float() for i in range(0, len(x), batch)])


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


def int8_weights(model: nn.Module) -> list[torch.Tensor]:
    """The quantised weight tensors of a converted model's Linear layers, in module order."""
    from torch.ao.nn.quantized import Linear as QuantisedLinear

    return [m.weight() for m in model.modules() if isinstance(m, QuantisedLinear)]
