"""Options shared by the ``trainlab`` commands, wherever a command is defined.

Help text is plain (the app sets ``rich_markup_mode=None``): brackets such as ``[search]`` or
``trainlab[ray]`` print as written, with no escaping.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer


def _set_artifacts(value: str | None) -> str | None:
    # Through the environment, so worker processes (compare --jobs, tune --jobs) inherit it.
    if value:
        os.environ["TRAINLAB_ARTIFACTS"] = value
    return value


StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help="run store: SQLite path, ':memory:' or SQLAlchemy URL (default runs/trainlab.db) [env: TRAINLAB_STORE]",
    ),
]
ArtifactsOpt = Annotated[
    str | None,
    typer.Option(
        "--artifacts",
        metavar="DIR",
        callback=_set_artifacts,
        help="folder for run folders (checkpoints) [default: beside the SQLite file; a temporary one for "
        "':memory:'] [env: TRAINLAB_ARTIFACTS]",
    ),
]
OverridesArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="KEY=VALUE", help="config overrides, e.g. optim.lr=0.1 'model.hidden=[128,128]' '~optim.momentum'"
    ),
]
