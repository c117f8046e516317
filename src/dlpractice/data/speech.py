"""Synthetic speech: eSpeak NG (through the `espeakng-loader` wheel) as an offline, labelled speech source.

`espeakng-loader` ships libespeak-ng and its voice data. We load that library by its absolute path
with ctypes, in synchronous mode, and collect what a synth callback receives: 16-bit samples at
22,050 Hz and phoneme events with their sample positions. So every utterance comes with its text,
its phonemes and where each one starts and ends, its speaker (voice + variant + pitch + rate) and its
language, all known exactly.

    synthesize("seven three", voice="en", variant="f2", rate=160, pitch=60) -> Utterance
    speech_dataset(texts, speakers, seed=0, noise="babble", snr_db=10) -> list[Utterance]  (cached)
    vad_recordings(n, seed=0, snr_db=10) -> list[Recording]  (speech with silences + the true labels)

Reproducible per process, not per call: eSpeak's wave generator carries its phase from one call to
the next, so the same text can come out a few samples longer or shorter depending on what was spoken
before. The same calls in the same order give the same audio, and the cache freezes a dataset.

Simplified: eSpeak is a formant synthesiser, so its voices are far more alike than people are; the
noises (white, babble of other eSpeak voices, music-like chords) and the reverberation (exponentially
decaying noise as the room's impulse response) are generated, not recorded.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from dlpractice.data.audio import add_noise
from dlpractice.errors import DlpError, did_you_mean
from dlpractice.home import cache_dir

SAMPLE_RATE = 22050
FEMALE_VARIANTS = tuple(f"f{i}" for i in range(1, 6))
MALE_VARIANTS = tuple(f"m{i}" for i in range(1, 9))
VARIANTS = FEMALE_VARIANTS + MALE_VARIANTS  # the plain human-like variants; eSpeak has ~100 in all
NOISES = ("white", "babble", "music")
CACHE_VERSION = 1  # bump when the synthesis or the noises change, so old caches are not reused

# speak_lib.h: output mode, init options, event types, parameters, text flags.
AUDIO_OUTPUT_SYNCHRONOUS = 2
INIT_PHONEME_EVENTS, INIT_PHONEME_IPA, INIT_DONT_EXIT = 0x0001, 0x0002, 0x8000
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_PHONEME = 0, 1, 7
PARAM_RATE, PARAM_PITCH = 1, 3
POS_CHARACTER, CHARS_UTF8 = 1, 1
RANDOM_SEED = 1


class EspeakEvent(ctypes.Structure):
    """espeak_EVENT: `sample` is the event's position in the output, in samples since the text began."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),  # a union; for phoneme events, the phoneme's name in UTF-8 (IPA here)
    ]


SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(EspeakEvent)
)


class EspeakVoice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class Phoneme:
    symbol: str  # IPA, with eSpeak's stress marks ("ˈəʊ")
    start: int  # first sample
    end: int  # one past the last sample


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: a language voice, a variant (timbre), a pitch (0-99) and a rate (words/min)."""

    voice: str = "en"
    variant: str | None = None
    pitch: int = 50
    rate: int = 175

    @property
    def name(self) -> str:
        return f"{self.voice}+{self.variant or 'default'}/p{self.pitch}/r{self.rate}"


@dataclass
class Utterance:
    audio: np.ndarray  # (T,) float32 in [-1, 1]
    sr: int
    text: str
    phonemes: list[Phoneme]
    speaker: Speaker = field(default_factory=Speaker)

    @property
    def language(self) -> str:
        return self.speaker.voice

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sr

    def speech_intervals(self) -> np.ndarray:
        """(K, 2) [start, end) samples where a phoneme sounds; eSpeak's pauses (unnamed events) excluded."""
        return np.array([(p.start, p.end) for p in self.phonemes], dtype=np.int64).reshape(-1, 2)


class Espeak:
    """The process's eSpeak NG library. eSpeak keeps global state, so one lock serialises every call."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError:
            raise DlpError(
                "speech synthesis needs espeakng-loader: pip install 'dlpractice[speech]'"
            ) from None
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())  # absolute path: no system eSpeak needed
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(EspeakVoice))
        data = espeakng_loader.get_data_path().encode()
        options = INIT_PHONEME_EVENTS | INIT_PHONEME_IPA | INIT_DONT_EXIT
        self.sr = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, options)
        if self.sr <= 0:
            raise DlpError(f"eSpeak NG failed to initialise with data at {data.decode()}")
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, str]] = []  # (sample, phoneme name; "" for a pause)
        self.callback = SynthCallback(self.collect)  # kept on self: the C side holds only a raw pointer
        self.lib.espeak_SetSynthCallback(self.callback)
        self.lock = threading.Lock()

    def collect(self, wav, n_samples: int, events) -> int:
        if n_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, (n_samples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            if events[i].type == EVENT_PHONEME:
                self.events.append((events[i].sample, events[i].id.decode("utf-8", "replace")))
            i += 1
        return 0  # 0 = go on synthesising

    def synthesize(self, text: str, speaker: Speaker) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """int16 samples (T,) and the phoneme events of `text` spoken by `speaker`."""
        self.check(speaker)
        name = speaker.voice + (f"+{speaker.variant}" if speaker.variant else "")
        encoded = text.encode("utf-8")
        with self.lock:
            if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise DlpError(f"eSpeak NG could not load voice {name!r}")
            self.lib.espeak_SetParameter(PARAM_RATE, int(speaker.rate), 0)
            self.lib.espeak_SetParameter(PARAM_PITCH, int(speaker.pitch), 0)
            self.lib.espeak_ng_SetRandSeed(ctypes.c_long(RANDOM_SEED))  # breathy variants draw random noise
            self.chunks, self.events = [], []
            status = self.lib.espeak_Synth(
                encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None
            )
            if status != 0:
                raise DlpError(f"eSpeak NG failed (error {status}) on {text[:40]!r}")
            samples = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
            return samples, list(self.events)

    def check(self, speaker: Speaker) -> None:
        """eSpeak falls back to a default voice on unknown names; we refuse them instead."""
        if speaker.voice not in self.known_voices:
            raise DlpError(
                f"eSpeak NG has no voice {speaker.voice!r}{did_you_mean(speaker.voice, self.known_voices)}"
                " (see dlpractice.data.speech.list_voices())"
            )
        if speaker.variant is not None and speaker.variant not in self.variants:
            raise DlpError(
                f"eSpeak NG has no variant {speaker.variant!r}{did_you_mean(speaker.variant, self.variants)}"
            )

    @cached_property
    def known_voices(self) -> set[str]:
        """Identifiers ('gmw/en') and their short forms ('en'), as espeak_SetVoiceByName takes them."""
        return {name for identifier in self.voices() for name in (identifier, identifier.split("/")[-1])}

    @cached_property
    def variants(self) -> set[str]:
        import espeakng_loader

        return {path.name for path in (Path(espeakng_loader.get_data_path()) / "voices" / "!v").iterdir()}

    def voices(self) -> list[str]:
        with self.lock:
            table = self.lib.espeak_ListVoices(None)
            found, i = [], 0
            while table[i]:
                found.append(table[i].contents.identifier.decode())
                i += 1
        return found


ENGINES: dict[int, Espeak] = {}  # by process id: a forked child initialises its own copy
ENGINES_LOCK = threading.Lock()


def engine() -> Espeak:
    with ENGINES_LOCK:
        pid = os.getpid()
        if pid not in ENGINES:
            ENGINES.clear()
            ENGINES[pid] = Espeak()
        return ENGINES[pid]


def list_voices() -> list[str]:
    """eSpeak NG's voice identifiers, e.g. 'gmw/en', 'roa/fr'; `Speaker.voice` takes the last part ('fr')."""
    return engine().voices()


def phoneme_spans(events: list[tuple[int, str]], n_samples: int) -> list[Phoneme]:
    """Each named phoneme lasts until the next event (a phoneme or a pause), the last one until the end."""
    bounds = [min(sample, n_samples) for sample, _ in events] + [n_samples]
    return [
        Phoneme(symbol, bounds[i], bounds[i + 1])
        for i, (_, symbol) in enumerate(events)
        if symbol and bounds[i + 1] > bounds[i]
    ]


def synthesize(
    text: str, voice: str = "en", variant: str | None = None, rate: int = 175, pitch: int = 50
) -> Utterance:
    """`text` spoken by eSpeak NG: float32 audio at 22,050 Hz with each phoneme's span in samples."""
    speaker = Speaker(voice, variant, pitch, rate)
    samples, events = engine().synthesize(text, speaker)
    audio = samples.astype(np.float32) / 32768.0
    return Utterance(audio, SAMPLE_RATE, text, phoneme_spans(events, len(audio)), speaker)


def random_speakers(
    n: int,
    rng: np.random.Generator,
    voice: str = "en",
    variants: Sequence[str] = VARIANTS,
    pitch: tuple[int, int] = (25, 75),
    rate: tuple[int, int] = (130, 220),
) -> list[Speaker]:
    """n speakers of one voice, each with a random variant, pitch and rate."""
    return [
        Speaker(voice, str(rng.choice(list(variants))), int(rng.integers(*pitch)), int(rng.integers(*rate)))
        for _ in range(n)
    ]


# A tiny grammar, so English test sentences vary without shipping a corpus.
SUBJECTS = ("the farmer", "my sister", "a small dog", "our teacher", "the old man", "this robot", "nobody")
VERBS = ("found", "painted", "carried", "forgot", "wanted", "cleaned", "sold", "watched")
OBJECTS = ("a red box", "the heavy chair", "seven green apples", "the broken window", "a long letter")
TAILS = ("yesterday", "before lunch", "in the garden", "after the storm", "on Monday morning", "again")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def english_sentences(n: int, rng: np.random.Generator) -> list[str]:
    """n short English sentences from a small grammar, some with a comma pause and a number."""
    out = []
    for _ in range(n):
        words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
        if rng.random() < 0.5:
            words.append(rng.choice(TAILS))
        if rng.random() < 0.3:
            words.append(", then counted " + " ".join(rng.choice(DIGITS, size=int(rng.integers(1, 4)))))
        out.append(" ".join(str(w) for w in words).replace(" ,", ","))
    return out


def make_noise(kind: str, n_samples: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """(n_samples,) float32 noise of unit power: white, babble (5 talkers) or music (random chords)."""
    if kind == "white":
        noise = rng.standard_normal(n_samples)
    elif kind == "babble":
        noise = babble(n_samples, rng)
    elif kind == "music":
        noise = music(n_samples, sr, rng)
    else:
        raise DlpError(f"unknown noise {kind!r}; choose one of {', '.join(NOISES)}")
    return (noise / max(np.sqrt(np.mean(noise**2)), 1e-12)).astype(np.float32)


def babble(n_samples: int, rng: np.random.Generator, talkers: int = 5) -> np.ndarray:
    """Several random eSpeak speakers talking over each other, each looped to length with a random offset."""
    mix = np.zeros(n_samples)
    for speaker, text in zip(
        random_speakers(talkers, rng), english_sentences(talkers * 3, rng)[::3], strict=True
    ):
        voice = synthesize(" ".join(english_sentences(3, rng)) + " " + text, **speaker_kwargs(speaker)).audio
        voice = voice / max(np.sqrt(np.mean(voice**2)), 1e-12)
        mix += np.roll(np.resize(voice, n_samples), int(rng.integers(n_samples)))
    return mix


def music(n_samples: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Chords of 3 harmonic notes that change every 0.25-1 s, with a decaying envelope: music-like noise."""
    out = np.zeros(n_samples)
    start = 0
    while start < n_samples:
        length = min(int(sr * rng.uniform(0.25, 1.0)), n_samples - start)
        t = np.arange(length) / sr
        for midi in rng.integers(45, 80, size=3):
            f0 = 440.0 * 2 ** ((midi - 69) / 12)
            out[start : start + length] += sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))
        out[start : start + length] *= np.exp(-3.0 * t / max(t[-1], 1e-3))
        start += length
    return out


def reverberate(wave: np.ndarray, sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room: a direct path plus noise decaying by 60 dB over `rt60` seconds."""
    length = max(int(rt60 * sr), 1)
    t = np.arange(length) / sr
    impulse = rng.standard_normal(length) * np.exp(-6.9 * t / rt60) * 0.3  # 60 dB = e^-6.9 in amplitude
    impulse[0] = 1.0
    wet = fftconvolve(wave, impulse)[: len(wave)]
    peak = max(np.abs(wet).max(), 1e-12)
    return (wet * min(1.0, 0.99 / peak)).astype(np.float32)


def speaker_kwargs(speaker: Speaker) -> dict:
    return {"voice": speaker.voice, "variant": speaker.variant, "rate": speaker.rate, "pitch": speaker.pitch}


def degrade(
    utt: Utterance, rng: np.random.Generator, noise: str | None, snr_db: float | None, rt60: float | None
) -> Utterance:
    """The utterance with reverberation, then noise at `snr_db` (measured over its phonemes' samples)."""
    audio = utt.audio
    if rt60:
        audio = reverberate(audio, utt.sr, rt60, rng)
    if noise is not None and snr_db is not None:
        audio = add_noise(audio, make_noise(noise, len(audio), utt.sr, rng), snr_db, active=speech_mask(utt))
        audio = np.clip(audio, -1.0, 1.0)
    return Utterance(audio, utt.sr, utt.text, utt.phonemes, utt.speaker)


def intervals_mask(intervals: np.ndarray, length: int) -> np.ndarray:
    """(length,) bool: True inside any [start, end) of the (K, 2) intervals."""
    mask = np.zeros(length, dtype=bool)
    for start, end in intervals:
        mask[start:end] = True
    return mask


def speech_mask(utt: Utterance) -> np.ndarray:
    """(T,) bool: True on samples inside a phoneme."""
    return intervals_mask(utt.speech_intervals(), len(utt.audio))


def speech_dataset(
    texts: Sequence[str],
    speakers: Sequence[Speaker],
    seed: int = 0,
    noise: str | None = None,
    snr_db: float | None = None,
    rt60: float | None = None,
    cache: bool = True,
) -> list[Utterance]:
    """texts[i] spoken by speakers[i], optionally reverberated and noised (seeded); cached on disk.

    The cache key is a hash of every argument, so the same call returns the same utterances, read
    from `<DLP_HOME>/cache/speech/<key>.npz`, without synthesising again.
    """
    if len(texts) != len(speakers):
        raise DlpError(f"speech_dataset needs one speaker per text, got {len(texts)} texts, {len(speakers)}")
    if noise is not None and noise not in NOISES:
        raise DlpError(f"unknown noise {noise!r}; choose one of {', '.join(NOISES)}")
    key = dataset_key(texts, speakers, seed, noise, snr_db, rt60)
    path = cache_dir() / "speech" / f"{key}.npz"
    if cache and path.exists():
        return read_utterances(path)
    rng = np.random.default_rng(seed)
    utterances = [
        degrade(synthesize(text, **speaker_kwargs(speaker)), rng, noise, snr_db, rt60)
        for text, speaker in zip(texts, speakers, strict=True)
    ]
    if cache:
        write_utterances(path, utterances)
    return utterances


def dataset_key(texts, speakers, seed, noise, snr_db, rt60) -> str:
    spec = [CACHE_VERSION, list(texts), [asdict(s) for s in speakers], seed, noise, snr_db, rt60]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:20]


def write_utterances(path: Path, utterances: list[Utterance]) -> None:
    """One .npz: the audio end to end with offsets, and the texts, phonemes and speakers as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = [
        {
            "text": u.text,
            "speaker": asdict(u.speaker),
            "phonemes": [[p.symbol, p.start, p.end] for p in u.phonemes],
        }
        for u in utterances
    ]
    offsets = np.cumsum([0] + [len(u.audio) for u in utterances])
    audio = np.concatenate([u.audio for u in utterances]) if utterances else np.zeros(0, np.float32)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
    np.savez(partial, audio=audio, offsets=offsets, meta=np.array(json.dumps(meta)))
    os.replace(partial, path)  # atomic: a reader never sees half a file


def read_utterances(path: Path) -> list[Utterance]:
    with np.load(path) as saved:
        audio, offsets, meta = saved["audio"], saved["offsets"], json.loads(str(saved["meta"]))
    return [
        Utterance(
            audio[offsets[i] : offsets[i + 1]],
            SAMPLE_RATE,
            m["text"],
            [Phoneme(s, int(a), int(b)) for s, a, b in m["phonemes"]],
            Speaker(**m["speaker"]),
        )
        for i, m in enumerate(meta)
    ]


@dataclass
class Recording:
    """A long recording: utterances separated by silences, noise over all of it, and where speech is."""

    audio: np.ndarray  # (T,) float32
    sr: int
    speech: np.ndarray  # (K, 2) [start, end) samples where a phoneme sounds
    snr_db: float | None
    noise: str | None

    @cached_property
    def mask(self) -> np.ndarray:
        """(T,) bool: True where speech sounds."""
        return intervals_mask(self.speech, len(self.audio))

    def frame_labels(self, hop_seconds: float, n_frames: int) -> np.ndarray:
        """(n_frames,) int64: 1 where the sample at frame t's centre (t * hop) is speech."""
        centres = np.minimum(
            (np.arange(n_frames) * hop_seconds * self.sr).round().astype(int), len(self.audio) - 1
        )
        return self.mask[centres].astype(np.int64)


def vad_recordings(
    n: int,
    seed: int = 0,
    utterances_per_recording: int = 6,
    silence: tuple[float, float] = (0.3, 2.0),
    noise: str | Sequence[str] | None = ("white", "babble", "music"),
    snr_db: float | Sequence[float] | None = 10.0,
    cache: bool = True,
) -> list[Recording]:
    """n recordings of random English speakers with silences between utterances, noised at an SNR.

    `noise` and `snr_db` may be lists: recording r takes item r % len of each. The SNR is measured over the
    speech samples only (the active speech level), so it does not depend on how much silence there is.
    The speech and silences depend on `seed` alone: the same seed at another SNR is the same talk.
    """
    rng = np.random.default_rng(seed)  # what is said, by whom, with which silences
    noise_rng = np.random.default_rng([seed, 1])  # apart, so a seed gives the same talk at any SNR
    count = n * utterances_per_recording
    texts, speakers = english_sentences(count, rng), random_speakers(count, rng)
    utterances = speech_dataset(texts, speakers, seed=seed, cache=cache)
    noises = [noise] if noise is None or isinstance(noise, str) else list(noise)
    snrs = [snr_db] if snr_db is None or isinstance(snr_db, int | float) else list(snr_db)
    recordings = []
    for r in range(n):
        parts = utterances[r * utterances_per_recording : (r + 1) * utterances_per_recording]
        audio, speech = join_with_silences(parts, silence, rng)
        kind, snr = noises[r % len(noises)], snrs[r % len(snrs)]  # in turn: every kind equally often
        recording = Recording(audio, SAMPLE_RATE, speech, snr, kind)
        if kind is not None and snr is not None:
            noise_wave = make_noise(kind, len(audio), SAMPLE_RATE, noise_rng)
            noisy = add_noise(audio, noise_wave, snr, active=recording.mask)
            recording.audio = np.clip(noisy, -1.0, 1.0)
        recordings.append(recording)
    return recordings


def join_with_silences(
    parts: Sequence[Utterance], silence: tuple[float, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The utterances end to end with random silences before, between and after; their speech intervals."""
    pieces, intervals, position = [], [], 0
    for utt in parts:
        gap = np.zeros(int(rng.uniform(*silence) * SAMPLE_RATE), np.float32)
        pieces += [gap, utt.audio]
        intervals.append(utt.speech_intervals() + position + len(gap))
        position += len(gap) + len(utt.audio)
    pieces.append(np.zeros(int(rng.uniform(*silence) * SAMPLE_RATE), np.float32))
    return np.concatenate(pieces), np.concatenate(intervals)
