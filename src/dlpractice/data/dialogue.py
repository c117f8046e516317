"""Dialogues for lab r4 (the chatbot): a generated café assistant (embedded), the Cornell Movie-Dialogs
corpus and the Alpaca-format instruction records (real), as (context, reply) pairs of word ids.

Embedded: multi-turn conversations with the assistant of a small café, generated from templates with a
fixed seed (there is nothing real about them): greetings, opening hours by day, prices of drinks by size
and of pastries, whether something is on offer, table bookings whose day, party size, time and name are
asked for one at a time (the assistant restates what it has so far), small talk, and follow-ups that only
make sense with the previous turn ("and on sunday?", "and a large one?"). User turns are drawn from
several paraphrases, and so are the assistant's. Each assistant turn carries the slot values a right
reply must state (`Turn.slots`), which makes `answer_correct` an exact score. Held-out dialogues book
(day, party, time) combinations that no training dialogue books.
Real: Cornell (Danescu-Niculescu-Mizil and Lee, 2011; movie_lines.txt and movie_conversations.txt, fields
separated by " +++$+++ ", ISO-8859-1) from its zip, and instruction-data.json (data/prose.py) as single
turns, instruction (and input) in, response out, in n10's 85/5/10 split. Cornell's conversations are
split 90/5/5 by a seeded shuffle. The context of a reply: the last `context_turns` utterances, joined by
<sep>.
"""

from __future__ import annotations

import random
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dlpractice.data.fetch import RealFile, find_local, locate
from dlpractice.data.prose import INSTRUCTIONS, load_instructions
from dlpractice.data.seq2seq import BOS, EOS, PAD, Example, ExampleBatches
from dlpractice.errors import DlpError

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>", "<sep>")  # pad, start and end keep data/seq2seq.py's ids
UNK, SEP = 3, 4
TOKEN = re.compile(r"\d+(?:[.:]\d+)*|[a-zé]+(?:'[a-z]+)?|[^\s\w]")
CORNELL = RealFile(
    name="cornell_movie_dialogs_corpus.zip",
    url="https://www.cs.cornell.edu/~cristian/data/cornell_movie_dialogs_corpus.zip",
    sha256="3bde8a571f615201bc2d2453e22878090719638592f774720eddec739de8c900",
    places=("cornell/cornell_movie_dialogs_corpus.zip", "cornell_movie_dialogs_corpus.zip"),
)
FIELDS = " +++$+++ "

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
HOURS = dict(
    zip(DAYS, ("7 am to 6 pm",) * 3 + ("7 am to 8 pm", "7 am to 10 pm", "8 am to 10 pm", "9 am to 4 pm"))
)
DRINKS = {"espresso": 2.0, "latte": 3.0, "cappuccino": 3.0, "flat white": 3.25, "mocha": 3.5, "tea": 1.75}
DRINKS |= {"hot chocolate": 2.75, "chai latte": 3.25}
SIZES = {"small": 0.0, "medium": 0.5, "large": 1.0}
PASTRIES = {"croissant": 2.25, "muffin": 2.5, "bagel": 2.0, "cookie": 1.5, "scone": 2.75, "brownie": 3.0}
OFFERED = {"oat milk": True, "soy milk": True, "decaf": True, "wifi": True, "almond milk": False}
OFFERED |= {"gluten free cake": False, "vegan muffins": True, "parking": False, "sandwiches": False}
TIMES = ("5 pm", "5:30 pm", "6 pm", "6:30 pm", "7 pm", "7:30 pm", "8 pm", "8:30 pm")
PARTY = tuple(range(1, 9))
NAMES = ("anna", "ben", "chloe", "david", "emma", "farid", "grace", "hugo", "ines", "jack", "kofi", "lena")
NAMES += ("maya", "noah", "olga", "pablo", "quinn", "rosa", "sami", "tara", "umar", "vera", "will", "yuki")
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight")


def price(amount: float) -> str:
    return f"{amount:.2f}"


# every value a slot kind can take: a reply is right when it states its value and no other of the kind
SLOT_VALUES = {
    "day": DAYS,
    "hours": tuple(set(HOURS.values())),
    "item": (*(f"{s} {d}" for s in SIZES for d in DRINKS), *PASTRIES),
    "price": tuple(
        {price(d + s) for d in DRINKS.values() for s in SIZES.values()} | set(map(price, PASTRIES.values()))
    ),
    "offer": tuple(OFFERED),
    "answer": ("yes", "sorry"),
    "party": tuple(f"for {n}" for n in PARTY),
    "time": tuple(f"at {t}" for t in TIMES),
    "name": NAMES,
}


def tokens(text: str) -> list[str]:
    """Lower-case words, numbers (3.50, 7:30 as one token) and punctuation marks."""
    return TOKEN.findall(text.lower())


def detokenize(words: list[str]) -> str:
    """Words joined by spaces, no space before punctuation."""
    return re.sub(r" ([.,!?;:])", r"\1", " ".join(words))


def contains(words: list[str], phrase: str) -> bool:
    target = tokens(phrase)
    return any(words[i : i + len(target)] == target for i in range(len(words) - len(target) + 1))


def answer_correct(reply: str, slots: dict[str, str]) -> bool:
    """Does the reply state every expected slot value, and no other value of the same kind?"""
    words = tokens(reply)
    return all(
        {v for v in SLOT_VALUES[kind] if contains(words, v)} == {value} for kind, value in slots.items()
    )


@dataclass
class Turn(Example):
    """One reply to learn: `task` is its intent, `source` the context, `target` the reply."""

    slots: dict[str, str] = field(default_factory=dict)


class CafeDialogue:
    """One generated conversation: (user, assistant, intent, slots) exchanges, drawn from `rng`."""

    def __init__(self, rng: random.Random, bookings: list[tuple[str, int, str]]):
        self.rng, self.bookings = rng, bookings
        self.exchanges: list[tuple[str, str, str, dict[str, str]]] = []

    def say(self, user: str, bot: str, intent: str, **slots: str) -> None:
        self.exchanges.append((user, bot, intent, slots))

    def pick(self, *options: str) -> str:
        return self.rng.choice(options)

    def hours(self) -> None:
        day = self.rng.choice(DAYS)
        ask = self.pick("when are you open on {}?", "what are your hours on {}?", "are you open on {}?")
        ask = self.pick(ask, "what time do you open on {}?", "opening hours for {}, please.")
        tell = self.pick("on {} we are open from {}.", "we're open {1} on {0}.", "{} : {}.")
        self.say(ask.format(day), tell.format(day, HOURS[day]), "hours", day=day, hours=HOURS[day])
        if self.rng.random() < 0.5:  # a follow-up that needs the previous turn
            day = self.rng.choice([d for d in DAYS if d != day])
            ask = self.pick("and on {}?", "what about {}?", "and {}?", "how about on {}?")
            self.say(
                ask.format(day), tell.format(day, HOURS[day]), "hours_followup", day=day, hours=HOURS[day]
            )

    def drink_price(self) -> None:
        drink, size = self.rng.choice(list(DRINKS)), self.rng.choice(list(SIZES))
        ask = self.pick("how much is a {} {}?", "what does a {} {} cost?", "price of a {} {}, please?")
        ask = self.pick(ask, "how much for a {} {}?", "i'd like a {} {}. how much is it?")
        tell = self.pick("a {} {} is {}.", "that's {2} for a {0} {1}.", "a {} {} costs {}.")
        amount = price(DRINKS[drink] + SIZES[size])
        self.say(
            ask.format(size, drink),
            tell.format(size, drink, amount),
            "price",
            item=f"{size} {drink}",
            price=amount,
        )
        if self.rng.random() < 0.5:
            size = self.rng.choice([s for s in SIZES if s != size])
            ask = self.pick("and a {} one?", "what about a {}?", "and in {}?", "how much is the {} one?")
            amount = price(DRINKS[drink] + SIZES[size])
            self.say(
                ask.format(size),
                tell.format(size, drink, amount),
                "price_followup",
                item=f"{size} {drink}",
                price=amount,
            )

    def pastry_price(self) -> None:
        pastry = self.rng.choice(list(PASTRIES))
        ask = self.pick("how much is a {}?", "what does a {} cost?", "how much are your {}s?")
        tell = self.pick("a {} is {}.", "a {} is {} each.", "that's {1} for a {0}.")
        self.say(
            ask.format(pastry),
            tell.format(pastry, price(PASTRIES[pastry])),
            "price",
            item=pastry,
            price=price(PASTRIES[pastry]),
        )

    def offer(self) -> None:
        thing = self.rng.choice(list(OFFERED))
        ask = self.pick("do you have {}?", "is there {}?", "can i get {} here?", "any {}?")
        if OFFERED[thing]:
            tell = self.pick("yes, we have {}.", "yes, {} is available.")
        else:
            tell = self.pick("sorry, we don't have {}.", "sorry, no {} here.")
        self.say(
            ask.format(thing),
            tell.format(thing),
            "offer",
            offer=thing,
            answer="yes" if OFFERED[thing] else "sorry",
        )

    def booking(self) -> None:
        day, party, time = self.rng.choice(self.bookings)
        name = self.rng.choice(NAMES)
        said = self.pick(str(party), NUMBER_WORDS[party - 1])
        if self.rng.random() < 0.4:  # all at once, then the name
            ask = self.pick(
                "can i book a table for {} on {} at {}?", "i'd like a table for {} people on {} at {}."
            )
            self.say(
                ask.format(said, day, time),
                "sure. what name should i put the booking under?",
                "book_ask_name",
            )
        else:  # one slot at a time; the assistant restates what it has so far
            start = self.pick(
                "i'd like to book a table.", "can i reserve a table?", "i want to make a booking."
            )
            self.say(start, self.pick("sure, which day?", "of course. for which day?"), "book_ask_day")
            ask = self.pick("{}.", "on {}, please.", "{} would be great.").format(day)
            self.say(ask, f"a table on {day}. for how many people?", "book_ask_party", day=day)
            ask = self.pick("{}.", "for {}.", "we are {}.", "{} people.").format(said)
            self.say(
                ask,
                f"a table for {party} on {day}. what time?",
                "book_ask_time",
                day=day,
                party=f"for {party}",
            )
            ask = self.pick("{}.", "at {}, please.", "around {}.").format(time)
            tell = f"a table for {party} on {day} at {time}. what name should i put it under?"
            self.say(ask, tell, "book_ask_name", day=day, party=f"for {party}", time=f"at {time}")
        tell = self.pick(
            "done: a table for {} on {} at {}, under {}.", "booked! {3}, a table for {0} on {1} at {2}."
        )
        user = self.pick("{}.", "it's {}.", "under {}, please.", "my name is {}.").format(name)
        slots = {"day": day, "party": f"for {party}", "time": f"at {time}", "name": name}
        self.say(user, tell.format(party, day, time, name), "book_confirm", **slots)

    def small_talk(self) -> None:
        user, bots = self.rng.choice(SMALL_TALK)
        self.say(user, self.rng.choice(bots), "small_talk")


SMALL_TALK = [
    ("how are you?", ("i'm fine, thanks! what can i get you?", "very well, thank you. how can i help?")),
    ("what's your name?", ("i'm the assistant of the corner café.", "i'm the corner café's chat assistant.")),
    ("tell me a joke.", ("why did the coffee file a police report? it got mugged.", "decaf? no, thanks.")),
    ("is the coffee good?", ("we think so! our beans are roasted every week.", "our regulars love it.")),
    ("are you a robot?", ("i'm a small chat assistant for the café.", "yes, a very small one.")),
]
GREETINGS = ("hi", "hello!", "hello there.", "good morning.", "hey.")
WELCOMES = ("hello! welcome to the corner café. how can i help?", "hi! what can i do for you?")
GOODBYES = (
    ("thanks, bye!", "you're welcome. goodbye!"),
    ("thank you.", "you're welcome!"),
    ("bye.", "goodbye, see you soon!"),
)


def cafe_dialogue(
    rng: random.Random, bookings: list[tuple[str, int, str]]
) -> list[tuple[str, str, str, dict[str, str]]]:
    """A greeting (often), one to three requests, a goodbye (often)."""
    d = CafeDialogue(rng, bookings)
    if rng.random() < 0.6:
        d.say(rng.choice(GREETINGS), rng.choice(WELCOMES), "greeting")
    requests = (d.hours, d.drink_price, d.pastry_price, d.offer, d.booking, d.small_talk)
    for _ in range(rng.randint(1, 3)):
        rng.choices(requests, weights=(2, 2, 1, 1, 3, 1))[0]()
    if rng.random() < 0.6:
        user, bot = rng.choice(GOODBYES)
        d.say(user, bot, "goodbye")
    return d.exchanges


def booking_split(rng: random.Random, held_out: float = 0.2) -> tuple[list, list]:
    """(training, held-out) (day, party, time) combinations: held-out dialogues book only the latter."""
    combos = [(d, p, t) for d in DAYS for p in PARTY for t in TIMES]
    rng.shuffle(combos)
    cut = int(len(combos) * held_out)
    return combos[cut:], combos[:cut]


@dataclass
class Conversations:
    """Split conversations: each a list of (utterance, reply, intent, slots); where they came from."""

    splits: dict[str, list[list[tuple[str, str, str, dict[str, str]]]]]
    source: str
    origin: str


def cafe_conversations(n_train: int, n_eval: int, seed: int = 0) -> Conversations:
    rng = random.Random(seed)
    train_combos, held_out = booking_split(rng)
    splits = {"train": [cafe_dialogue(rng, train_combos) for _ in range(n_train)]}
    splits |= {s: [cafe_dialogue(rng, held_out) for _ in range(n_eval)] for s in ("val", "test")}
    origin = "generated café-assistant dialogues (dlpractice.data.dialogue), held-out bookings unseen"
    return Conversations(splits, "embedded", origin)


def split_90_5_5(items: list, seed: int = 0) -> dict[str, list]:
    items = list(items)
    random.Random(seed).shuffle(items)
    n_eval = max(1, len(items) // 20)
    return {"val": items[:n_eval], "test": items[n_eval : 2 * n_eval], "train": items[2 * n_eval :]}


def read_cornell(path: Path) -> list[list[str]]:
    """Each conversation of the corpus zip as its lines, in order."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = {Path(n).name: n for n in zf.namelist() if not n.startswith("__MACOSX")}
            lines_raw = zf.read(names["movie_lines.txt"]).decode("iso-8859-1")
            conversations_raw = zf.read(names["movie_conversations.txt"]).decode("iso-8859-1")
    except (zipfile.BadZipFile, KeyError) as err:
        raise DlpError(
            f"{path} is not the Cornell corpus zip (movie_lines.txt, movie_conversations.txt): {err!r}"
        ) from None
    lines = {}
    for row in lines_raw.splitlines():
        parts = row.split(FIELDS)
        if len(parts) == 5:
            lines[parts[0]] = parts[4].strip()
    out = []
    for row in conversations_raw.splitlines():
        parts = row.split(FIELDS)
        if len(parts) == 4:
            ids = re.findall(r"L\d+", parts[3])
            out.append([lines[i] for i in ids if i in lines])
    return out


def cornell_conversations(data_dir: str | Path | None, spec: RealFile = CORNELL) -> Conversations:
    path = locate(spec, data_dir)
    talks = [[(a, b, "movie", {}) for a, b in zip(c, c[1:])] for c in read_cornell(path) if len(c) > 1]
    if not talks:
        raise DlpError(f"{path} holds no conversation of two or more lines")
    return Conversations(split_90_5_5(talks), "real", f"Cornell Movie-Dialogs corpus ({path})")


def instruction_conversations(data_dir: str | Path | None) -> Conversations:
    """Single turns in data/prose.py's 85/5/10 split: the same 110 held-out records as lab n10."""
    records = load_instructions("real", data_dir)
    splits = {
        split: [
            [(f"{r.instruction} {r.input}".strip(), r.output, "instruction", {})]
            for r in getattr(records, split)
        ]
        for split in ("train", "val", "test")
    }
    return Conversations(splits, "real", records.origin)


class Vocab:
    """Word ids: the specials, then the training words seen `min_count` times, most frequent first."""

    def __init__(self, words: list[str]):
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, texts: list[str], min_count: int = 1, max_size: int = 10000) -> Vocab:
        counts = Counter(w for t in texts for w in tokens(t))
        common = [w for w, c in counts.most_common(max_size - len(SPECIALS)) if c >= min_count]
        return cls([*SPECIALS, *common])

    def encode(self, text: str) -> list[int]:
        return [self.index.get(w, UNK) for w in tokens(text)]

    def decode(self, ids: list[int]) -> str:
        """Text of ids, stopping at </s>, skipping <pad> and <s>."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.words[i])
        return detokenize(out)


def context_ids(vocab: Vocab, history: list[str], context_turns: int, max_len: int) -> list[int]:
    """The last context_turns utterances (at most max_len words each), joined by <sep>, then </s>."""
    ids: list[int] = []
    for utterance in history[-context_turns:]:
        ids += [SEP] if ids else []
        ids += vocab.encode(utterance)[-max_len:]  # the end of a turn matters most
    return ids + [EOS]


class DialoguePairs(ExampleBatches):
    """(context, reply) examples of every assistant turn; fit()'s batches (src, src_len, tgt_in, targets)."""

    def __init__(
        self,
        talks: Conversations,
        context_turns: int = 3,
        max_len: int = 40,
        min_count: int = 1,
        max_vocab: int = 10000,
        eval_batch_size: int = 500,
    ):
        self.source, self.origin, self.context_turns = talks.source, talks.origin, context_turns
        self.max_len, self.eval_batch_size = max_len, eval_batch_size
        train_texts = [
            text for talk in talks.splits["train"] for user, bot, *_ in talk for text in (user, bot)
        ]
        self.vocab = Vocab.build(train_texts, min_count, max_vocab)
        self.splits = {split: self.examples(t) for split, t in talks.splits.items()}

    def examples(self, talks: list[list[tuple[str, str, str, dict[str, str]]]]) -> list[Turn]:
        out = []
        for talk in talks:
            history: list[str] = []
            for user, bot, intent, slots in talk:
                history.append(user)
                reply = [BOS, *self.vocab.encode(bot)[: self.max_len], EOS]
                context = " <sep> ".join(history[-self.context_turns :])
                src = context_ids(self.vocab, history, self.context_turns, self.max_len)
                out.append(Turn(intent, context, bot, src, reply, slots))
                history.append(bot)
        return out

    def describe(self) -> dict[str, str | int]:
        sizes = {f"{split}_replies": len(examples) for split, examples in self.splits.items()}
        return {
            "data_source": self.source,
            "data_origin": self.origin,
            "vocab": len(self.vocab.words),
        } | sizes


def load_conversations(
    source: str, data_dir: str | Path | None, corpus: str, n_train: int, n_eval: int
) -> Conversations:
    """embedded: the café; real: Cornell or the instruction records (`corpus`); auto: real if on disk."""
    if source == "embedded":
        return cafe_conversations(n_train, n_eval)
    if source == "auto":  # real when its file is on disk (a damaged one is an error, not a fallback)
        source = (
            "real" if find_local(CORNELL if corpus == "cornell" else INSTRUCTIONS, data_dir) else "embedded"
        )
        return load_conversations(source, data_dir, corpus, n_train, n_eval)
    if source != "real":
        raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")
    return cornell_conversations(data_dir) if corpus == "cornell" else instruction_conversations(data_dir)
