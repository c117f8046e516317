"""Sentences in 16 languages for n6's homework variant (language identification), from gettext catalogues.

Programs translate their messages with gettext: one compiled catalogue (.mo file) per program and
language, installed under /usr/share/locale/<language>/LC_MESSAGES/ by Linux distributions (Debian,
Ubuntu, Fedora) and inside some Python packages. Python's own `gettext` module reads them. Every
translated message is a sentence written by a person in that language; this loader keeps those of 20
to 150 characters, without printf/format placeholders, keyboard accelerators or escapes, drops any that
occurs in more than one language (untranslated English, product names), and samples the same number
per language. The catalogues ship with installed packages, so the source is `embedded`; which ones a
machine has depends on its packages, and the run records the folder and the number of files read.
"""

from __future__ import annotations

import gettext
import random
import re
from collections import Counter
from pathlib import Path

from dlpractice.data.sentiment import Sentences, split
from dlpractice.errors import DlpError

LOCALE_DIR = Path("/usr/share/locale")
LANGUAGES = ("bg", "ca", "cs", "da", "de", "es", "fi", "fr", "it", "nl", "pl", "pt", "ru", "sk", "sv", "uk")
NOISE = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]|\{[^}]*\}|[_&](?=\w)|\\[nt]")  # %s, {0}, _File, \n
MIN_CHARS, MAX_CHARS = 20, 150


def clean(message: str) -> str:
    return " ".join(NOISE.sub(" ", message).split())


def catalogue_messages(path: Path) -> list[str]:
    """The translated messages of one .mo file, cleaned; unreadable files give none."""
    try:
        with path.open("rb") as f:
            catalogue = gettext.GNUTranslations(f)
    except (OSError, UnicodeDecodeError, LookupError):  # not a catalogue, or an unknown charset
        return []
    found = []
    for source, translated in catalogue._catalog.items():  # the catalogue has no public listing
        original = source[0] if isinstance(source, tuple) else source  # (msgid, n) for plural forms
        text = clean(translated) if isinstance(translated, str) else ""
        if original and MIN_CHARS <= len(text) <= MAX_CHARS and text.lower() != clean(original).lower():
            found.append(text)
    return found


def load_catalogues(
    per_language: int = 1500, languages: tuple[str, ...] = LANGUAGES, locale_dir: Path = LOCALE_DIR
) -> Sentences:
    """`per_language` messages of each language, labelled by its index in `languages`, split like n6's."""
    messages: dict[str, set[str]] = {}
    n_files = 0
    for language in languages:
        files = sorted((locale_dir / language / "LC_MESSAGES").glob("*.mo"))
        n_files += len(files)
        messages[language] = {text for path in files for text in catalogue_messages(path)}
    owners = Counter(text for found in messages.values() for text in found)
    texts, labels = [], []
    for label, language in enumerate(languages):
        unique = sorted(text for text in messages[language] if owners[text] == 1)
        if len(unique) < per_language:
            raise DlpError(
                f"only {len(unique)} {language} messages in {locale_dir} (need {per_language}): install "
                "translated packages, or lower per_language / choose other languages"
            )
        chosen = random.Random(label).sample(unique, per_language)
        texts += chosen
        labels += [label] * per_language
    origin = f"gettext catalogues: {n_files} .mo files in {locale_dir}, {per_language} messages a language"
    return split(texts, labels, "embedded", origin, classes=languages)
