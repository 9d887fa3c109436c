"""``trainlab report``: typer-annotated, registered in ``trainlab.cli``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainlab.cli_options import StoreOpt


def report(
    targets: Annotated[list[str], typer.Argument(help="run ids (or unique prefixes), study names or comparison names")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write")] = Path("report.html"),
    title: Annotated[str | None, typer.Option(help="page title (default: the targets)")] = None,
    store: StoreOpt = None,
) -> None:
    """Write one self-contained HTML report (inline SVG, no script, opens from disk); prints its path."""
    from trainlab.report.build import write_report
    from trainlab.store import Store

    path = write_report(targets, output, Store(store), title=title)
    print(path.absolute())
