"""Options shared by the ``trainlab`` commands, wherever a command is defined."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

# The help is rich markup: "\[" keeps "[env: ...]" as text instead of a (swallowed) style tag.
StoreOpt = Annotated[
    Optional[str],
    typer.Option("--store", help="run store: SQLite path or SQLAlchemy URL (default runs/trainlab.db) \\[env: TRAINLAB_STORE]"),
]
