"""Progress of a long command: a live bar on a terminal, one line per finished item elsewhere.

A live bar (rich) on a pipe or a CI log shows nothing until the end; there each finished run
or trial prints one flushed line on stderr instead, so ``trainlab compare ... | tee log`` and
CI logs show progress as it happens.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Literal, TextIO


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def line(text: str, stream: TextIO | None = None) -> None:
    """One progress line, flushed at once (stderr by default)."""
    print(text, file=sys.stderr if stream is None else stream, flush=True)


class ItemProgress:
    """``with ItemProgress("compare x", total) as p: ... p.done("run abc completed")``.

    On a terminal: a rich bar on stderr. Otherwise: ``compare x: 3/12 run abc completed (41 s)``
    per item. ``quiet=True``: nothing.
    """

    def __init__(self, description: str, total: int, *, quiet: bool = False) -> None:
        self.description, self.total, self.quiet = description, total, quiet
        self.count, self._task, self._start = 0, None, time.monotonic()
        self._bar: Any = None  # a rich Progress on a terminal

    def __enter__(self) -> ItemProgress:
        if not self.quiet and is_terminal():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=Console(stderr=True),
            )  # fmt: skip
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def done(self, text: str = "") -> None:
        self.count += 1
        if self._bar is not None:
            self._bar.advance(self._task)
        elif not self.quiet:
            elapsed = time.monotonic() - self._start
            what = f" {text}" if text else ""
            line(f"{self.description}: {self.count}/{self.total}{what} ({elapsed:.0f} s)")

    def __exit__(self, *exc: Any) -> Literal[False]:
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False
