"""User-facing errors: the CLI prints these as one line and exits non-zero, never as a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DlpError(Exception):
    """A mistake the user can fix (bad input, missing data, corrupt file). Its message is one line."""


class RunInterrupted(DlpError):
    """Training stopped by Ctrl-C or SIGTERM after saving a checkpoint."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the nearest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
