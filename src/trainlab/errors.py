"""The one exception type a user sees for bad input.

``ConfigError`` subclasses ``ValueError`` so code that already catches ``ValueError``
keeps working; the CLI prints its message on one line and exits with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A config key, argument or input file is wrong; the message names it and the fix."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` if none is close."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """The error for an unknown registry name: names the bad value and lists the valid ones."""
    choices = sorted(choices)
    return ConfigError(f"unknown {kind} '{name}'{did_you_mean(name, choices)}; choose one of: {', '.join(choices)}")
