"""A small training corpus every tokenizer test shares: Python source (shipped with Python) and prose."""

from __future__ import annotations

import inspect
import textwrap

import pytest

PROSE = (
    "The quick brown fox jumps over the lazy dog. Tokenizers split text into pieces; "
    "a byte-level BPE never meets an unknown character. Café, naïve, Straße, 東京, Москва!\n"
) * 20


class Stub:
    """What practice mode leaves in place of an exercise: calling it, or anything taken from it, raises."""

    def __call__(self, *args, **kwargs):
        raise NotImplementedError("exercise")

    def __getattr__(self, name: str) -> Stub:
        return self


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture(scope="session")
def corpus() -> str:
    return inspect.getsource(textwrap) + PROSE
