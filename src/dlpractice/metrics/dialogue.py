"""Scores of generated replies (lab r4): answer accuracy, ROUGE-L and distinct-n (Li et al., 2016).

distinct-n is the number of different n-grams over all replies, divided by the number of n-grams: 1.0 when
no n-gram repeats anywhere, near 0 when every reply says the same thing. Li et al. divide by the number
of generated words instead; dividing by the n-grams keeps distinct-2 within [0, 1] for short replies.
"""

from __future__ import annotations

from dlpractice.data.dialogue import answer_correct, tokens
from dlpractice.metrics.rouge import rouge_l


def distinct_n(replies: list[list[str]], n: int) -> float:
    """Distinct n-grams over all n-grams of the replies (each a list of words); 0 when there are none."""
    # BEGIN EXERCISE r4.1: every n-gram of every reply (not across replies); different ones over all of them
    grams = [tuple(words[i : i + n]) for words in replies for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0
    # END EXERCISE


def reply_scores(replies: list[str], references: list[str], slots: list[dict[str, str]]) -> dict[str, float]:
    """Answer accuracy (over the replies that have slot values to state), mean ROUGE-L, distinct-1/2, and
    the mean reply length in tokens (words and punctuation marks)."""
    graded = [answer_correct(r, s) for r, s in zip(replies, slots) if s]
    words = [tokens(r) for r in replies]
    return {
        "answer_accuracy": sum(graded) / len(graded) if graded else float("nan"),
        "rouge_l": sum(rouge_l(ref, r) for ref, r in zip(references, replies)) / max(1, len(replies)),
        "distinct_1": distinct_n(words, 1),
        "distinct_2": distinct_n(words, 2),
        "mean_words": sum(map(len, words)) / max(1, len(words)),
    }


def accuracy_by_intent(
    replies: list[str], intents: list[str], slots: list[dict[str, str]]
) -> dict[str, float]:
    """Answer accuracy per intent, over the replies that have slot values to state."""
    graded: dict[str, list[bool]] = {}
    for reply, intent, expected in zip(replies, intents, slots):
        if expected:
            graded.setdefault(intent, []).append(answer_correct(reply, expected))
    return {intent: sum(right) / len(right) for intent, right in sorted(graded.items())}
