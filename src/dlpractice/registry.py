"""The lab catalogue: every lab of the syllabus, and the ones implemented under `labs/<track>/<id>_<slug>.py`.

`SYLLABUS` is the one place a lab's id, slug, track and title are written. Implemented labs are found by
file name (no import needed to list them); a lab module is imported only when it is shown or run. Each
lab module follows `LabModule`: `LAB = lab("l2", requires=..., metric=..., bar=...)` (the syllabus
entry plus what the lab declares), `Config`, `PRESETS` and `run(cfg, ctx)`.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, runtime_checkable

from dlpractice.errors import DlpError, did_you_mean

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LABS_DIR = Path(__file__).parent / "labs"

TRACKS = {
    "foundations": "F · Foundations",
    "language": "L · Language modelling",
    "nlp": "N · NLP with Transformers and Hugging Face",
    "speech": "S · Speech",
    "vision": "V · Vision",
    "production": "P · Practice and production",
    "beyond": "R · Beyond",
}


@dataclass(frozen=True)
class Lab:
    """What a lab declares about itself: its place in the syllabus, its data, its metric and the bar."""

    id: str
    slug: str
    track: str
    title: str
    requires: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    metric: str | None = None
    goal: Literal["min", "max"] = "min"  # which way the metric improves
    bar: float | None = None

    def met(self, value: float | None) -> bool | None:
        """Whether `value` reaches the bar (None when there is no bar or no value)."""
        if self.bar is None or value is None:
            return None
        return value <= self.bar if self.goal == "min" else value >= self.bar


def _syllabus(track: str, rows: str) -> list[Lab]:
    labs = []
    for line in rows.strip().splitlines():
        lab_id, slug, title = (part.strip() for part in line.split("|"))
        labs.append(Lab(id=lab_id, slug=slug, track=track, title=title))
    return labs


# Every lab of SYLLABUS.md, in order: its id, slug, track and title are written here and nowhere else.
# An implemented lab's `LAB = lab(id, ...)` takes them from here and adds its prerequisites, data and bar.
SYLLABUS: list[Lab] = [
    *_syllabus(
        "foundations",
        """
        f1 | scratch-engine | NumPy autograd engine
        f2 | three-frameworks | NumPy, PyTorch and Keras side by side
        f3 | activations | Activation functions and gradient flow
        f4 | losses | Loss functions under outliers and imbalance
        f5 | optimizers | Optimisers and LR schedules from scratch
        f6 | capacity | Capacity, regularisation and normalisation
        f7 | pytorch-core | PyTorch core: tensors, autograd, modules, data
        f8 | hparam-search | Hyper-parameter search: grid, random and Bayesian
    """,
    ),
    *_syllabus(
        "language",
        """
        l1 | makemore-bigram | makemore: bigram model
        l2 | makemore-mlp | makemore: MLP (Bengio et al., 2003)
        l3 | makemore-cnn | makemore: WaveNet-style CNN
        l4 | makemore-rnn | makemore: RNN
        l5 | makemore-lstm | makemore: LSTM
        l6 | makemore-gru | makemore: GRU
        l7 | makemore-transformer | makemore: decoder-only transformer
        l8 | nanogpt | nanoGPT on characters
        l9 | word-embeddings | Word embeddings: word2vec and GloVe
    """,
    ),
    *_syllabus(
        "nlp",
        """
        n1 | hf-tour | A tour of Hugging Face, offline
        n2 | tokenizers | BPE, WordPiece and Unigram from scratch
        n3 | attention | Attention and positional encodings
        n4 | transformer-from-scratch | The encoder-decoder transformer
        n5 | rnn-seq2seq | RNN encoder-decoder with attention
        n6 | text-classification | Text classification and error analysis
        n7 | ner | Named-entity recognition
        n8 | qa | Extractive question answering
        n9 | continued-pretraining | Continued pre-training
        n10 | instruction-tuning | Instruction tuning, LoRA vs full
        n11 | rag | Retrieval-augmented generation
        n12 | agents | Tool-using agents
    """,
    ),
    *_syllabus(
        "speech",
        """
        s1 | audio-basics | Audio basics and voice activity
        s2 | spoken-lid | Spoken language identification
        s3 | diarization | Speaker embeddings and diarisation
        s4 | asr | Speech recognition with CTC
        s5 | tts | Text to speech
        s6 | wake-word | Wake-word detection
    """,
    ),
    *_syllabus(
        "vision",
        """
        v1 | image-classification | Image classification
        v2 | cnn-architectures | CNN architectures
        v3 | transfer-learning | Transfer learning
        v4 | visualize | Visualising what a CNN sees
        v5 | object-detection | Object detection
        v6 | segmentation | Semantic segmentation
        v7 | depth | Monocular and stereo depth
        v8 | super-resolution | Super-resolution
        v9 | generative | Autoencoders, VAEs, GANs, diffusion
        v10 | self-supervised | Self-supervised learning
        v11 | image-captioning | Image captioning
    """,
    ),
    *_syllabus(
        "production",
        """
        p1 | experiment-manager | Experiment management
        p2 | serve | Serving a model
        p3 | compression | Pruning, quantisation, distillation
        p4 | distributed | Distributed training
        p5 | model-maths | Parameters, memory and FLOPs
        p6 | explainability | Explainability and fairness
    """,
    ),
    *_syllabus(
        "beyond",
        """
        r1 | time-series | Time-series forecasting
        r2 | rl-games | Reinforcement learning on games
        r3 | research | Few-shot, federated, tiny NeRF
        r4 | chatbot | A seq2seq chatbot
    """,
    ),
]

_LAB_FILE = re.compile(r"^(?P<id>[a-z]\d+)_(?P<slug>[a-z0-9_]+)\.py$")


def implemented_modules() -> dict[str, str]:
    """Lab id -> module path, from the files under labs/<track>/."""
    found = {}
    for path in sorted(LABS_DIR.glob("*/*.py")):
        match = _LAB_FILE.match(path.name)
        if match:
            found[match["id"]] = f"dlpractice.labs.{path.parent.name}.{path.stem}"
    return found


def resolve_id(name: str) -> str:
    """A lab id from an id (`l2`) or slug (`makemore-mlp`); a typo gets the nearest suggestion."""
    key = name.strip().lower()
    for entry in SYLLABUS:
        if key in (entry.id, entry.slug):
            return entry.id
    names = [e.id for e in SYLLABUS] + [e.slug for e in SYLLABUS]
    raise DlpError(f"unknown lab {name!r}{did_you_mean(key, names)}; `dlp list` shows them all")


def catalogue_entry(lab_id: str) -> Lab:
    """The syllabus entry of `lab_id` (an exact id)."""
    entry = next((e for e in SYLLABUS if e.id == lab_id), None)
    if entry is None:
        ids = [e.id for e in SYLLABUS]
        raise DlpError(f"lab id {lab_id!r} is not in the syllabus{did_you_mean(lab_id, ids)}")
    return entry


def lab(
    lab_id: str,
    *,
    requires: tuple[str, ...] = (),
    data: tuple[str, ...] = (),
    metric: str | None = None,
    goal: Literal["min", "max"] = "min",
    bar: float | None = None,
) -> Lab:
    """A lab's LAB: its syllabus entry (id, slug, track, title) and what the lab declares about itself."""
    if goal not in ("min", "max"):
        raise ValueError(f"lab {lab_id}: goal must be 'min' or 'max', not {goal!r}")
    unknown = [r for r in requires if r not in {e.id for e in SYLLABUS}]
    if unknown:
        raise ValueError(f"lab {lab_id}: requires labs not in the syllabus: {unknown}")
    entry = catalogue_entry(lab_id)
    return replace(entry, requires=tuple(requires), data=tuple(data), metric=metric, goal=goal, bar=bar)


@runtime_checkable
class LabModule(Protocol):
    """What every lab module defines: the lab contract, as a type (a module satisfies it structurally)."""

    LAB: Lab
    Config: type[Any]  # a dataclass: every knob with its default and valid range
    PRESETS: dict[str, dict[str, Any]]  # at least "smoke", "quick" and "full": overrides of Config

    def run(self, cfg: Any, ctx: RunContext) -> dict[str, float]:
        """Train and evaluate with `cfg` (a Config), writing to `ctx`; the metrics, LAB.metric among them."""
        ...


@runtime_checkable
class SamplingLab(LabModule, Protocol):
    """A lab that also generates from a finished run (`dlp sample`): the optional part of the contract."""

    def sample(self, run_dir: Path, cfg: Any, n: int, seed: int) -> list[str]: ...


def load_lab(name: str) -> LabModule:
    """Import an implemented lab's module by id or slug."""
    lab_id = resolve_id(name)
    module = implemented_modules().get(lab_id)
    if module is None:
        entry = catalogue_entry(lab_id)
        raise DlpError(f"lab {lab_id} ({entry.slug}) is planned but not implemented yet")
    from dlpractice.extras import missing_extra, require_track

    require_track(module.split(".")[2], f"lab {lab_id}")  # dlpractice.labs.<track>.<file>
    try:
        return cast(LabModule, importlib.import_module(module))
    except ModuleNotFoundError as error:  # a library of a missing extra: say which line installs it
        missing = missing_extra(error, f"lab {lab_id}")
        if missing is None:
            raise
        raise missing from None


def lab_record(lab_id: str) -> Lab:
    """The lab's own LAB when implemented, else its syllabus entry."""
    if lab_id in implemented_modules():
        return load_lab(lab_id).LAB
    return catalogue_entry(lab_id)
