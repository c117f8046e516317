"""Named-entity data for n7: CoNLL-2003 English, or generated news sentences offline.

Real: the CoNLL-2003 English shared-task files (train 14,041 / valid 3,250 / test 3,453 sentences),
found in the data directory or downloaded with a checksum. The reader takes the original four-column
format (`token POS chunk NER`, `-DOCSTART-` lines between documents, IOB1 tags) as well as the common
`token NER 0` copies with IOB2 tags: the NER tag is the last column that looks like one, `-DOCSTART-`
lines are skipped, and every tag sequence is rewritten in IOB2 (an entity always starts with B-).

Embedded (generated, not real text): news-like sentences from templates whose slots are filled with
people (first and last names from the `names` package, US census lists), places, organisations and
miscellaneous entities (nationalities, events) from the short lists below, written for this lab.
Validation and test sentences come from templates that training never sees, so a model must tag names
in new contexts, not recall where each template puts them.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dlpractice.data import phrases
from dlpractice.data.fetch import RealFile, find_local, locate
from dlpractice.errors import DlpError

_COMMIT = "c0423ea3eaecbfcdcbff9d24c482cb862eedd629"  # v-mipeng/LexiconNER: IOB2 copy, `token TAG 0`
_SHA256 = {
    "train": "20d0e0b801f2e6e0dd674ac381c4804f9294c7839d73234d5c43affc5df531d9",
    "valid": "a80eb0886f28c26241e34c6a1c44f0409a9937970ac5169eaf1ad0fe721ea0b1",
    "test": "652c0a397cf4397a7fdb10ad042c50580a8f9ab87d91ed93737bcd57b42f47bb",
}
CONLL2003 = {
    split: RealFile(
        name=f"conll2003-{split}.txt",
        url=f"https://raw.githubusercontent.com/v-mipeng/LexiconNER/{_COMMIT}/data/conll2003/{split}.txt",
        sha256=sha,
        places=(f"conll2003/{split}.txt", f"{split}.txt"),
    )
    for split, sha in _SHA256.items()
}
ENTITY_TYPES = ("PER", "LOC", "ORG", "MISC")
LABELS = ("O", *(f"{p}-{t}" for t in ENTITY_TYPES for p in "BI"))  # label id = index
_TAG = re.compile(r"^(O|[BIES]-[A-Z]+)$")


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]  # IOB2, one per token


def to_iob2(tags: list[str]) -> list[str]:
    """IOB1 (I- may open an entity; B- only splits two adjacent ones) -> IOB2 (B- opens every entity)."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-"):
            before = out[i - 1] if i else "O"
            if before == "O" or before[2:] != tag[2:]:
                tag = "B-" + tag[2:]
        out.append(tag)
    return out


def read_conll(text: str) -> list[Sentence]:
    """Sentences from CoNLL text: one token a line, blank lines between sentences."""
    sentences, tokens, tags = [], [], []
    for line in [*text.splitlines(), ""]:
        columns = line.split()
        if columns and columns[0] != "-DOCSTART-":
            tag = next((c for c in reversed(columns[1:]) if _TAG.match(c)), None)
            if tag is None:
                raise DlpError(f"no NER tag in CoNLL line {line!r}")
            tokens.append(columns[0])
            tags.append(tag)
        elif tokens:  # a blank line (or a document boundary) closes the sentence
            sentences.append(Sentence(tuple(tokens), tuple(to_iob2(tags))))
            tokens, tags = [], []
    return sentences


@dataclass(frozen=True)
class NerData:
    train: list[Sentence]
    val: list[Sentence]
    test: list[Sentence]
    source: str  # "embedded" or "real"
    origin: str

    def describe(self) -> dict[str, str | int]:
        return {
            "data_source": self.source,
            "data_origin": self.origin,
            "tagging": "IOB2",
            "train_sentences": len(self.train),
            "val_sentences": len(self.val),
            "test_sentences": len(self.test),
        }


def load_ner(
    source: str = "auto", data_dir: str | Path | None = None, n_generated: int = 3000, seed: int = 0
) -> NerData:
    """CoNLL-2003 (`real`), generated sentences (`embedded`), or `auto`: real when it is on disk."""
    if source == "auto":
        source = "real" if all(find_local(f, data_dir) for f in CONLL2003.values()) else "embedded"
    if source == "real":
        paths = {split: locate(spec, data_dir) for split, spec in CONLL2003.items()}
        splits = {split: read_conll(path.read_text(encoding="utf-8")) for split, path in paths.items()}
        origin = f"CoNLL-2003 English ({paths['train'].parent})"
        return NerData(splits["train"], splits["valid"], splits["test"], "real", origin)
    if source == "embedded":
        rng = random.Random(seed)
        n_eval = max(1, n_generated // 5)
        train = generate_sentences(n_generated, rng, TEMPLATES[:-HELD_OUT])
        val, test = (generate_sentences(n_eval, rng, TEMPLATES[-HELD_OUT:]) for _ in range(2))
        origin = (
            "generated news sentences (names package people; places, organisations from lists in conll.py); "
            f"validation and test from {HELD_OUT} held-out templates"
        )
        return NerData(train, val, test, "embedded", origin)
    raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")


# ---- generated sentences (embedded source) ----------------------------------------------------------

PLACES = phrases(
    "Paris, London, Berlin, Madrid, Rome, Moscow, Tokyo, Beijing, Cairo, Nairobi, Lagos, Sydney, Toronto, "
    "Chicago, Boston, Houston, Lima, Bogota, Santiago, Oslo, Stockholm, Vienna, Prague, Warsaw, Athens, "
    "Lisbon, Dublin, Brussels, Geneva, Seoul, New York, Los Angeles, Hong Kong, Buenos Aires, "
    "Rio de Janeiro, Cape Town, New Delhi, France, Germany, Spain, Italy, Russia, Japan, China, Egypt, "
    "Kenya, Nigeria, Brazil, Canada, Mexico, Peru, Chile, Norway, Sweden, Austria, Poland, Greece, Portugal, "
    "Ireland, Belgium, India, Pakistan, Australia, Turkey, Israel, Iran, South Korea, South Africa, "
    "New Zealand, Sri Lanka, United States, Saudi Arabia"
)
NATIONALITIES = phrases(
    "French, German, Spanish, Italian, Russian, Japanese, Chinese, Egyptian, Kenyan, Brazilian, Canadian, "
    "Mexican, Norwegian, Swedish, Polish, Greek, Irish, Indian, Australian, Turkish, British, American, "
    "European, Asian, African"
)
EVENTS = phrases(
    "World Cup, Olympic Games, Tour de France, Davis Cup, Asian Games, Super Bowl, Champions League, "
    "Wimbledon, Grand Prix, Ryder Cup"
)
# organisation name patterns: {L} a surname, {P} a place
ORGANISATIONS = phrases(
    "{L} Holdings, {L} Group, {L} Motors, {L} Bank, {L} and {L}, {L} Brothers, Bank of {P}, {P} United, "
    "{P} Airlines, University of {P}, {P} Telecom, {P} City, {L} Industries, {L} Electric, "
    "National Bank of {P}, {P} Stock Exchange, {L} Oil"
)
TEMPLATES = (
    "{PER} , a spokesman for {ORG} , said on {DAY} that talks in {LOC} had failed .",
    "{ORG} shares rose {NUM} percent in {LOC} after {PER} took over as chief executive .",
    "{PER} scored twice as {ORG} beat {ORG} {NUM}-1 in {LOC} .",
    "The {NAT} government said {PER} would visit {LOC} next week .",
    "{LOC} beat {LOC} {NUM}-0 in the {EVENT} on {DAY} .",
    "{PER} told reporters in {LOC} that {ORG} would cut {NUM} jobs .",
    "{ORG} said it would buy {ORG} for {NUM} million dollars .",
    "Police in {LOC} arrested {PER} on {DAY} .",
    "{PER} ( {LOC} ) won the race in {NUM} minutes .",
    "The {NAT} team arrived in {LOC} on {DAY} for the {EVENT} .",
    "{PER} joined {ORG} from {ORG} last year .",
    "It was the first {NAT} win at the {EVENT} since {PER} retired .",
    "{NAT} stocks closed higher in {LOC} on {DAY} .",
    "{PER} met {PER} in {LOC} to discuss the {NAT} proposal .",
    "Officials at {ORG} in {LOC} declined to comment .",
    "{PER} , who was born in {LOC} , now works for {ORG} .",
    "Heavy rain hit {LOC} and {LOC} on {DAY} .",
    "{ORG} reported a profit of {NUM} million in the first half .",
    "{PER} won the {EVENT} title for the {NUM}th time .",
    "The talks between {LOC} and {LOC} resumed in {LOC} .",
    # held out: validation and test sentences come from these templates only
    "{ORG} , based in {LOC} , hired {PER} as its new coach .",
    "Fans of {ORG} greeted {PER} at the airport in {LOC} on {DAY} .",
    "{PER} said the {NAT} side had played well against {ORG} .",
    "A court in {LOC} fined {ORG} {NUM} million for misleading {NAT} investors .",
    "{PER} and {PER} will lead the {NAT} delegation to the {EVENT} .",
)
HELD_OUT = 5  # the last templates, never seen in training
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@cache
def census_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(first names, last names) from the `names` package, capitalised as they are written."""
    import names as names_package

    folder = Path(names_package.__file__).parent

    def read(*files: str) -> tuple[str, ...]:
        words = {
            line.split()[0].capitalize() for f in files for line in (folder / f).read_text().splitlines()
        }
        return tuple(sorted(w for w in words if w.isalpha()))

    return read("dist.female.first", "dist.male.first"), read("dist.all.last")


def fill(slot: str, rng: random.Random) -> tuple[list[str], str | None]:
    """The words of one slot and their entity type (None for slots that are not entities)."""
    first, last = census_names()
    if slot == "PER":
        words = [rng.choice(last)] if rng.random() < 0.3 else [rng.choice(first), rng.choice(last)]
        return words, "PER"
    if slot == "LOC":
        return rng.choice(PLACES).split(), "LOC"
    if slot == "ORG":
        pattern = rng.choice(ORGANISATIONS)
        name = re.sub(r"\{L\}", lambda _: rng.choice(last), pattern)
        return re.sub(r"\{P\}", lambda _: rng.choice(PLACES), name).split(), "ORG"
    if slot == "NAT":
        return [rng.choice(NATIONALITIES)], "MISC"
    if slot == "EVENT":
        return rng.choice(EVENTS).split(), "MISC"
    if slot == "DAY":
        return [rng.choice(DAYS)], None
    return [str(rng.randint(2, 40))], None  # NUM


def generate_sentence(rng: random.Random, templates: tuple[str, ...] = TEMPLATES) -> Sentence:
    tokens, tags = [], []
    for word in rng.choice(templates).split():
        slot = re.fullmatch(r"\{([A-Z]+)\}(\S*)", word)
        if slot is None:
            tokens.append(word)
            tags.append("O")
            continue
        words, kind = fill(slot[1], rng)
        words[-1] += slot[2]  # a suffix glued to the slot, as in "{NUM}-1"
        tokens += words
        tags += ["O"] * len(words) if kind is None else [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
    return Sentence(tuple(tokens), tuple(tags))


def generate_sentences(n: int, rng: random.Random, templates: tuple[str, ...] = TEMPLATES) -> list[Sentence]:
    return [generate_sentence(rng, templates) for _ in range(n)]
