"""Spoken language identification data for lab s2: eSpeak NG in 8 languages (embedded) or VoxLingua107 (real).

Embedded: sentences written in each language from small word lists (a subject, a verb, an object and
sometimes an adverbial, all grammatical in that language), read by eSpeak NG (data/speech.py) in that
language's voice with a variant (timbre), pitch and rate drawn per utterance. The split is by sentence
AND by voice variant: validation and test sentences are never heard in training, and validation and test
variants are not heard in training either (nor in each other), so the test measures unseen sentences
spoken by unseen voices. A share of the training utterances is noised (white or music-like, 5-20 dB);
`test_noisy` is the test set again with noise at 10 dB. Everything is resampled to 16 kHz.

Real: VoxLingua107 (Valk & Alumäe, 2021): YouTube speech, one zip per language at its original place
(`http://bark.phon.ioc.ee/voxlingua107/<lang>.zip`, unpacking to `<lang>/<video>__U__S<n>---<a>-<b>.wav`,
16 kHz) and a validated dev set (`dev.zip`: `dev/<lang>/*.wav`). Looked for in `<data dir>/voxlingua107/`,
then the cache, then downloaded. The corpus publishes no checksums, so a download is checked by reading
every clip, not by a digest. The test split is the dev set when it is there, else whole held-out videos;
validation is held-out videos of the training zips, so no video is in two splits.
Simplified: eSpeak's voices are far more alike than people, and its languages differ in phonology only
as far as its rules go; eight languages instead of 107; VoxLingua107 clips are cut to `max_seconds`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlpractice.data.audio import add_noise, load_audio, log_mel, resample, spec_augment
from dlpractice.data.fetch import TIMEOUT_S, data_dir
from dlpractice.errors import DlpError
from dlpractice.home import cache_dir

SAMPLE_RATE = 16000
N_MELS = 40
LANGUAGES = ("en", "de", "nl", "fr", "es", "it", "pl", "ru")

# One grammatical sentence per (subject, verb, object, adverbial or none), third person singular, present:
# per language, the four word lists, one a paragraph, their items separated by " | ".
GRAMMAR_TEXT = {
    "en": """
the farmer | my sister | our teacher | the old man | a young woman | the doctor | his brother
the little girl

buys | sees | finds | needs | carries | opens | paints | wants

a red apple | the heavy box | a new car | the old book | a long letter | the green door
a warm coat | the small house

every morning | in the garden | after dinner | on Sunday | near the river | with great care | today
in the city""",
    "de": """
der Bauer | meine Schwester | unser Lehrer | der alte Mann | eine junge Frau | die Ärztin
sein Bruder | das kleine Mädchen

kauft | sieht | findet | braucht | trägt | öffnet | malt | sucht

einen roten Apfel | die schwere Kiste | ein neues Auto | das alte Buch | einen langen Brief
die grüne Tür | einen warmen Mantel | das kleine Haus

jeden Morgen | im Garten | nach dem Essen | am Sonntag | am Fluss | mit großer Sorgfalt | heute
in der Stadt""",
    "nl": """
de boer | mijn zus | onze leraar | de oude man | een jonge vrouw | de dokter | zijn broer
het kleine meisje

koopt | ziet | vindt | zoekt | draagt | opent | schildert | wil

een rode appel | de zware doos | een nieuwe auto | het oude boek | een lange brief | de groene deur
een warme jas | het kleine huis

elke ochtend | in de tuin | na het eten | op zondag | bij de rivier | met veel zorg | vandaag
in de stad""",
    "fr": """
le fermier | ma sœur | notre professeur | le vieil homme | une jeune femme | le médecin | son frère
la petite fille

achète | voit | trouve | cherche | porte | ouvre | peint | veut

une pomme rouge | la boîte lourde | une voiture neuve | le vieux livre | une longue lettre
la porte verte | un manteau chaud | la petite maison

chaque matin | dans le jardin | après le dîner | le dimanche | près de la rivière
avec beaucoup de soin | aujourd'hui | en ville""",
    "es": """
el granjero | mi hermana | nuestro profesor | el hombre viejo | una mujer joven | el médico
su hermano | la niña pequeña

compra | ve | encuentra | busca | lleva | abre | pinta | quiere

una manzana roja | la caja pesada | un coche nuevo | el libro viejo | una carta larga
la puerta verde | un abrigo caliente | la casa pequeña

cada mañana | en el jardín | después de la cena | el domingo | cerca del río | con mucho cuidado
hoy | en la ciudad""",
    "it": """
il contadino | mia sorella | il nostro maestro | il vecchio | una giovane donna | il medico
suo fratello | la bambina

compra | vede | trova | cerca | porta | apre | dipinge | vuole

una mela rossa | la scatola pesante | una macchina nuova | il vecchio libro | una lunga lettera
la porta verde | un cappotto caldo | la piccola casa

ogni mattina | nel giardino | dopo cena | la domenica | vicino al fiume | con molta cura | oggi
in città""",
    "pl": """
rolnik | moja siostra | nasz nauczyciel | stary człowiek | młoda kobieta | lekarz | jego brat
mała dziewczynka

kupuje | widzi | znajduje | otwiera | maluje | niesie | ma | lubi

czerwone jabłko | ciężkie pudełko | nowy samochód | starą książkę | długi list | zielone drzwi
ciepły płaszcz | mały dom

każdego ranka | w ogrodzie | po obiedzie | w niedzielę | nad rzeką | bardzo starannie | dzisiaj
w mieście""",
    "ru": """
фермер | моя сестра | наш учитель | старик | молодая женщина | врач | его брат | маленькая девочка

покупает | видит | находит | открывает | рисует | несёт | ищет | любит

красное яблоко | тяжёлую коробку | новую машину | старую книгу | длинное письмо | зелёную дверь
тёплое пальто | маленький дом

каждое утро | в саду | после обеда | в воскресенье | у реки | очень аккуратно | сегодня | в городе""",
}


def parse_grammar(text: str) -> tuple[tuple[str, ...], ...]:
    """Paragraphs -> word lists: items split on "|", the lines of a paragraph joined."""
    return tuple(
        tuple(item.strip() for item in " | ".join(paragraph.splitlines()).split("|"))
        for paragraph in text.strip().split("\n\n")
    )


GRAMMARS = {language: parse_grammar(text) for language, text in GRAMMAR_TEXT.items()}

# Voice variants by split: disjoint, so validation and test voices are never heard in training.
VARIANT_SPLITS = {
    "train": (
        "f1",
        "f2",
        "f4",
        "m1",
        "m2",
        "m4",
        "m5",
        "m7",
        "Alex",
        "Andy",
        "adam",
        "anika",
        "announcer",
        "aunty",
        "benjamin",
        "boris",
        "caleb",
        "david",
        "ed",
        "edward",
        "grandma",
        "iven",
        "john",
        "linda",
        "max",
        "michel",
        "paul",
        "pedro",
        "quincy",
        "rob",
        "steph",
        "travis",
        "victor",
        "zac",
    ),
    "val": ("f5", "m8", "belinda", "ian"),
    "test": ("f3", "m3", "m6", "Annie", "norbert", "shelby", "Michael", "robert"),
}
PITCH, RATE = (20, 80), (120, 220)
TRAIN_NOISES = tuple((kind, snr) for kind in ("white", "music") for snr in (5.0, 10.0, 20.0))
TEST_NOISE_SNR = 10.0

VOXLINGUA_URL = "http://bark.phon.ioc.ee/voxlingua107"
VOXLINGUA_PLACES = ("voxlingua107", "VoxLingua107")
VIDEO_OF = re.compile(r"^(?P<video>.+?)__")  # "<video id>__U__S<n>---<start>-<end>.wav"


@dataclass(frozen=True)
class LangClip:
    audio: np.ndarray  # float32 (T,) at 16 kHz
    language: int  # index into SpokenLanguages.classes
    text: str  # what is said; "" when unknown (VoxLingua107)
    speaker: str  # the eSpeak speaker, or the VoxLingua107 video id


@dataclass
class SpokenLanguages:
    splits: dict[str, list[LangClip]]  # train, val, test (and test_noisy for the embedded set)
    classes: tuple[str, ...]  # language codes
    source: str  # embedded or real
    origin: str
    sample_rate: int = SAMPLE_RATE

    def describe(self) -> dict[str, str | int]:
        sizes = {f"n_{split}": len(clips) for split, clips in self.splits.items()}
        return {
            "data_source": self.source,
            "data_origin": self.origin,
            "classes": ",".join(self.classes),
        } | sizes


def sentences(language: str, n: int, rng: np.random.Generator) -> list[str]:
    """n distinct sentences of one language's grammar, in random order."""
    subjects, verbs, objects, tails = GRAMMARS[language]
    shape = (len(subjects), len(verbs), len(objects), len(tails) + 1)  # + 1: no adverbial
    total = int(np.prod(shape))
    if n > total:
        raise DlpError(f"the {language} grammar makes {total} sentences, not {n}")
    out = []
    for index in rng.choice(total, size=n, replace=False):
        s, v, o, t = np.unravel_index(index, shape)
        words = [subjects[s], verbs[v], objects[o]] + ([tails[t]] if t < len(tails) else [])
        text = " ".join(words)
        out.append(text[0].upper() + text[1:] + ".")
    return out


def embedded_split(
    split: str, texts: list[tuple[int, str]], rng: np.random.Generator, noises: list[tuple[str, float] | None]
) -> list[LangClip]:
    """(language, text) pairs read by random speakers of the split's variants, noised as `noises[i]` says."""
    from dlpractice.data.speech import SAMPLE_RATE as SYNTH_RATE
    from dlpractice.data.speech import Speaker, speech_dataset

    variants = VARIANT_SPLITS[split]
    speakers = [
        Speaker(
            LANGUAGES[lang], str(rng.choice(variants)), int(rng.integers(*PITCH)), int(rng.integers(*RATE))
        )
        for lang, _ in texts
    ]
    clips: list[LangClip | None] = [None] * len(texts)
    for setting in sorted(set(noises), key=str):  # one cached speech_dataset per noise setting
        index = [i for i, n in enumerate(noises) if n == setting]
        kind, snr = setting if setting else (None, None)
        said = speech_dataset([texts[i][1] for i in index], [speakers[i] for i in index], 0, kind, snr)
        for i, utt in zip(index, said):
            audio = resample(utt.audio, SYNTH_RATE, SAMPLE_RATE)
            clips[i] = LangClip(audio, texts[i][0], texts[i][1], utt.speaker.name)
    return clips  # type: ignore[return-value]


def noised(clip: LangClip, kind: str, rng: np.random.Generator) -> LangClip:
    """The clip with white or music-like noise at TEST_NOISE_SNR (over the whole clip, pauses included)."""
    from dlpractice.data.speech import make_noise

    noise = make_noise(kind, len(clip.audio), SAMPLE_RATE, rng)
    audio = np.clip(add_noise(clip.audio, noise, TEST_NOISE_SNR), -1.0, 1.0)
    return LangClip(audio, clip.language, clip.text, f"{clip.speaker} + {kind} {TEST_NOISE_SNR:g} dB")


def load_embedded(
    per_language: tuple[int, int, int] = (150, 25, 50),
    languages: tuple[str, ...] = LANGUAGES,
    noisy_share: float = 0.5,
    seed: int = 0,
) -> SpokenLanguages:
    """`per_language` (train, val, test) sentences of each language, each split with its own sentences and
    voice variants; a `noisy_share` of training utterances noised; `test_noisy` = test at 10 dB."""
    unknown = [lang for lang in languages if lang not in GRAMMARS]
    if unknown:
        raise DlpError(
            f"no sentences for {', '.join(unknown)}; the embedded languages are {', '.join(GRAMMARS)}"
        )
    rng = np.random.default_rng(seed)
    by_split: dict[str, list[tuple[int, str]]] = {"train": [], "val": [], "test": []}
    for lang in languages:
        drawn = iter(sentences(lang, sum(per_language), rng))  # distinct: no sentence is in two splits
        for split, n in zip(by_split, per_language):
            by_split[split] += [(LANGUAGES.index(lang), next(drawn)) for _ in range(n)]
    train_noises = [
        TRAIN_NOISES[int(rng.integers(len(TRAIN_NOISES)))] if rng.random() < noisy_share else None
        for _ in by_split["train"]
    ]
    splits = {
        "train": embedded_split("train", by_split["train"], rng, train_noises),
        "val": embedded_split("val", by_split["val"], rng, [None] * len(by_split["val"])),
        "test": embedded_split("test", by_split["test"], rng, [None] * len(by_split["test"])),
    }
    splits["test_noisy"] = [
        noised(clip, "white" if i % 2 else "music", rng) for i, clip in enumerate(splits["test"])
    ]
    classes = tuple(LANGUAGES[i] for i in sorted({LANGUAGES.index(lang) for lang in languages}))
    remap = {LANGUAGES.index(c): i for i, c in enumerate(classes)}
    splits = {
        k: [LangClip(c.audio, remap[c.language], c.text, c.speaker) for c in v] for k, v in splits.items()
    }
    origin = (
        f"eSpeak NG: {len(languages)} languages x {per_language} sentences (train/val/test), "
        f"variants {len(VARIANT_SPLITS['train'])}/{len(VARIANT_SPLITS['val'])}/{len(VARIANT_SPLITS['test'])}"
    )
    return SpokenLanguages(splits, classes, "embedded", origin)


# ---- VoxLingua107 -------------------------------------------------------------------------------------


def voxlingua_roots(directory: str | Path | None = None) -> list[Path]:
    root = data_dir(directory)
    return ([root / place for place in VOXLINGUA_PLACES] if root else []) + [cache_dir() / "voxlingua107"]


def language_folder(language: str, directory: str | Path | None = None) -> Path | None:
    """The unpacked training clips of a language: <root>/<lang>/ or <root>/train/<lang>/; None if absent."""
    for root in voxlingua_roots(directory):
        for folder in (root / language, root / "train" / language):
            if folder.is_dir() and any(folder.glob("*.wav")):
                return folder
    return None


def dev_folder(language: str, directory: str | Path | None = None) -> Path | None:
    for root in voxlingua_roots(directory):
        if (folder := root / "dev" / language).is_dir() and any(folder.glob("*.wav")):
            return folder
    return None


def unpack_wavs(archive: Path, target: Path) -> int:
    """The .wav members of a VoxLingua107 zip under `target`, keeping their last folders (<lang>/ or
    dev/<lang>/); any other member, or a path that climbs out, is skipped. Returns the number unpacked."""
    count = 0
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            parts = [p for p in member.split("/") if p]
            if not member.endswith(".wav") or ".." in parts or len(parts) < 2:
                continue
            keep = parts[-3:] if len(parts) >= 3 and parts[-3] == "dev" else parts[-2:]
            out = target.joinpath(*keep)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(zf.read(member))
            count += 1
    return count


def download_language(language: str) -> Path:
    """<url>/<lang>.zip into the cache, unpacked to cache/voxlingua107/<lang>/ once every clip reads."""
    root = cache_dir() / "voxlingua107"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        archive = Path(tmp) / f"{language}.zip"
        url = f"{VOXLINGUA_URL}/{language}.zip"
        with archive.open("wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        unpacked = Path(tmp) / "unpacked"
        if unpack_wavs(archive, unpacked) == 0 or not (unpacked / language).is_dir():
            raise DlpError(f"{url} holds no {language}/*.wav clips")
        for path in (unpacked / language).glob("*.wav"):
            load_audio(path)  # no checksum is published: a clip that does not read fails the download
        os.replace(unpacked / language, root / language)
    return root / language


def locate_language(language: str, directory: str | Path | None = None) -> Path:
    """The training clips of a language on disk or downloaded; otherwise a one-line DlpError."""
    found = language_folder(language, directory)
    if found:
        return found
    root = data_dir(directory)
    where = root / VOXLINGUA_PLACES[0] if root else "<data dir>/voxlingua107 (set DLP_DATA_DIR or --data-dir)"
    url = f"{VOXLINGUA_URL}/{language}.zip"
    if os.environ.get("DLP_OFFLINE") == "1":
        reason = "DLP_OFFLINE=1"
    else:
        try:
            return download_language(language)
        except (urllib.error.URLError, OSError, zipfile.BadZipFile) as err:
            reason = f"download failed: {getattr(err, 'reason', err)}"
    raise DlpError(f"VoxLingua107 {language} not found and {reason}; unzip {url} into {where}")


def video_of(path: Path) -> str:
    match = VIDEO_OF.match(path.name)
    return match["video"] if match else path.stem


def held_out(video: str, share: float, salt: str) -> bool:
    """A stable, seed-free choice of whole videos: the hash of the id, not its position in a listing."""
    digest = hashlib.sha256(f"{salt}:{video}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def read_clips(paths: list[Path], language: int, max_seconds: float) -> list[LangClip]:
    clips = []
    for path in paths:
        audio, _ = load_audio(path, SAMPLE_RATE)
        clips.append(LangClip(audio[: int(max_seconds * SAMPLE_RATE)], language, "", video_of(path)))
    return clips


def load_voxlingua(
    languages: tuple[str, ...] = LANGUAGES,
    directory: str | Path | None = None,
    per_language: int = 500,
    max_seconds: float = 10.0,
    val_share: float = 0.1,
    test_share: float = 0.1,
    seed: int = 0,
) -> SpokenLanguages:
    """Up to `per_language` training clips a language (a seeded sample); validation = held-out videos;
    test = the dev set where present, else other held-out videos."""
    rng = np.random.default_rng(seed)
    splits: dict[str, list[LangClip]] = {"train": [], "val": [], "test": []}
    dev_used = True
    for label, language in enumerate(languages):
        paths = sorted(locate_language(language, directory).glob("*.wav"))
        dev = dev_folder(language, directory)
        dev_used &= dev is not None
        chosen: dict[str, list[Path]] = {
            "train": [],
            "val": [],
            "test": sorted(dev.glob("*.wav")) if dev else [],
        }
        for path in paths:
            video = video_of(path)
            if dev is None and held_out(video, test_share, "test"):
                chosen["test"].append(path)
            elif held_out(video, val_share, "val"):
                chosen["val"].append(path)
            else:
                chosen["train"].append(path)
        for split, found in chosen.items():
            limit = per_language if split == "train" else max(1, per_language // 5)
            if len(found) > limit:
                found = [found[i] for i in sorted(rng.choice(len(found), limit, replace=False))]
            splits[split] += read_clips(found, label, max_seconds)
    empty = [split for split, clips in splits.items() if not clips]
    if empty:
        raise DlpError(f"VoxLingua107 gave no {' or '.join(empty)} clips: too few videos per language")
    test = "the dev set" if dev_used else "held-out videos"
    origin = f"VoxLingua107 ({VOXLINGUA_URL}): {len(languages)} languages, test = {test}"
    return SpokenLanguages(splits, tuple(languages), "real", origin)


def load_languages(source: str, directory: str | Path | None = None, **embedded) -> SpokenLanguages:
    """`auto`: VoxLingua107 when every language is on disk, else the synthesised set."""
    if source == "auto":
        on_disk = all(language_folder(lang, directory) for lang in embedded.get("languages", LANGUAGES))
        source = "real" if on_disk else "embedded"
    if source == "real":
        return load_voxlingua(embedded.get("languages", LANGUAGES), directory, seed=embedded.get("seed", 0))
    if source == "embedded":
        return load_embedded(**embedded)
    raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")


# ---- features and batches ------------------------------------------------------------------------------


def features(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS) -> torch.Tensor:
    """(frames, n_mels) log-mel frames (25 ms windows every 10 ms), each band's utterance mean removed
    (cepstral mean normalisation): the level and the channel's colouring go, the shape of speech stays."""
    wave = resample(wave, sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE else wave
    db = log_mel(torch.as_tensor(wave, dtype=torch.float32), SAMPLE_RATE, n_mels)  # (n_mels, frames)
    return ((db - db.mean(1, keepdim=True)) / 20.0).T.contiguous()  # 20 dB to one unit


class CropBatches:
    """fit()'s data: per split, feature sequences (T_i, F) and language ids.

    Training batches are random crops of `crop_frames` (shorter utterances set the batch's crop), with
    SpecAugment masks when `augment` is on: (x (B, T, F), targets (B,)). Evaluation batches hold one whole
    utterance each, so no padding is needed for fit()'s `model(x, targets)`."""

    def __init__(
        self,
        splits: dict[str, tuple[list[torch.Tensor], torch.Tensor]],
        crop_frames: int,
        augment: bool = True,
    ):
        self.splits, self.crop_frames, self.augment = splits, crop_frames, augment

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        feats, labels = self.splits["train"]
        index = torch.randint(len(feats), (batch_size,), generator=generator).tolist()
        crop = min(self.crop_frames, *(len(feats[i]) for i in index))
        rows = []
        for i in index:
            start = int(torch.randint(len(feats[i]) - crop + 1, (1,), generator=generator))
            rows.append(feats[i][start : start + crop])
        x = torch.stack(rows)  # (B, crop, F)
        if self.augment:  # masks filled with each example's mean (0 after mean normalisation)
            x = spec_augment(x.transpose(1, 2), generator, max_freq_width=6, max_time_width=10)
            x = x.transpose(1, 2).contiguous()
        return x, labels[index]

    def eval_batches(self, split: str, batch_size: int = 1):
        feats, labels = self.splits[split]
        for i in range(len(feats)):
            yield feats[i][None], labels[i : i + 1]


def padded(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T_max, F) zero-padded features and their (B,) lengths."""
    return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), torch.tensor([len(f) for f in feats])
