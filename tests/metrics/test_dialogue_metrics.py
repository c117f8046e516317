"""metrics/dialogue.py: the scores of a set of replies (distinct-n itself is checked by lab r4's checks)."""

from __future__ import annotations

import pytest

from dlpractice.metrics.dialogue import accuracy_by_intent, reply_scores
from dlpractice.metrics.rouge import rouge_l


def test_reply_scores_grade_only_replies_with_slots() -> None:
    replies = ["friday: 7 am to 10 pm.", "a latte is 3.00.", "hi!"]
    references = ["on friday we are open from 7 am to 10 pm.", "a small latte is 3.00.", "hello!"]
    slots = [{"day": "friday", "hours": "7 am to 10 pm"}, {"item": "small latte", "price": "3.00"}, {}]
    scores = reply_scores(replies, references, slots)
    assert scores["answer_accuracy"] == 0.5  # the second reply lacks the size; the third has nothing to state
    assert scores["rouge_l"] == pytest.approx(sum(map(rouge_l, references, replies)) / 3)
    assert scores["mean_words"] == pytest.approx((8 + 5 + 2) / 3)  # punctuation marks count as words
    assert accuracy_by_intent(replies, ["hours", "price", "greeting"], slots) == {"hours": 1.0, "price": 0.0}
