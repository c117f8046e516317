"""A small training corpus every tokenizer test shares: Python source (shipped with Python) and prose."""

from __future__ import annotations

import inspect
import textwrap

import pytest

PROSE = (
    "The quick brown fox jumps over the lazy dog. Tokenizers split text into pieces; "
    "a byte-level BPE never meets an unknown character. Café, naïve, Straße, 東京, Москва!\n"
) * 20


@pytest.fixture(scope="session")
def corpus() -> str:
    return inspect.getsource(textwrap) + PROSE
