"""Entity-level scores and error analysis for sequence tagging (n7).

Scores are seqeval's, in its default mode (the CoNLL `conlleval` rules: an I- tag after O or after
another type opens an entity), micro-averaged over entities and per type. The error analysis sorts every
entity that is not exactly right into one kind of mistake, comparing spans (start, end) and types:

- boundary: a predicted entity overlaps a gold one of the same type, with other edges;
- type: same edges, another type;
- boundary+type: overlaps a gold entity, with other edges and another type;
- spurious: a predicted entity that overlaps no gold entity;
- missed: a gold entity that no predicted entity overlaps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from seqeval.metrics import classification_report
from seqeval.metrics.sequence_labeling import get_entities

Span = tuple[str, int, int]  # (type, first token, last token)
ERROR_KINDS = ("boundary", "type", "boundary+type", "spurious", "missed")


def entity_scores(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
) -> dict[str, dict[str, float]]:
    """{"micro avg" | type: {"precision", "recall", "f1", "support"}} from seqeval."""
    report = classification_report(
        [list(g) for g in gold], [list(p) for p in pred], output_dict=True, zero_division=0
    )
    return {
        name: {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": float(row["support"]),
        }
        for name, row in report.items()
        if name not in ("macro avg", "weighted avg")
    }


def spans(tags: Sequence[str]) -> set[Span]:
    return set(get_entities(list(tags)))


def overlaps(a: Span, b: Span) -> bool:
    return a[1] <= b[2] and b[1] <= a[2]


def classify_errors(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> Counter:
    """How many entities of each ERROR_KINDS (and 'correct') over all sentences."""
    counts: Counter = Counter({kind: 0 for kind in ("correct", *ERROR_KINDS)})
    for gold_tags, pred_tags in zip(gold, pred, strict=True):
        truth, guess = spans(gold_tags), spans(pred_tags)
        counts["correct"] += len(truth & guess)
        for p in guess - truth:
            near = [g for g in truth if overlaps(p, g)]
            if not near:
                counts["spurious"] += 1
            elif any(g[0] == p[0] for g in near):
                counts["boundary"] += 1
            elif any(g[1:] == p[1:] for g in near):
                counts["type"] += 1
            else:
                counts["boundary+type"] += 1
        counts["missed"] += sum(1 for g in truth - guess if not any(overlaps(g, p) for p in guess))
    return counts


def recall_by_group(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    group: Callable[[int, Span], str],
) -> dict[str, tuple[int, int]]:
    """{group: (found exactly, gold entities)}; `group(sentence index, span)` names a gold entity's group."""
    found: Counter = Counter()
    total: Counter = Counter()
    for i, (gold_tags, pred_tags) in enumerate(zip(gold, pred, strict=True)):
        guess = spans(pred_tags)
        for span in spans(gold_tags):
            name = group(i, span)
            total[name] += 1
            found[name] += span in guess
    return {name: (found[name], total[name]) for name in sorted(total)}
