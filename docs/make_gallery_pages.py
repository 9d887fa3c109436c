"""Write docs/gallery/<name>.md, each experiment's claim, source quote and protocol table,
from the experiments' code (tests/reproduce/test_gallery.py checks the pages are current);
with ``--results DIR``, also the results table of docs/gallery.md from the ``<name>.json``
files a ``trainlab reproduce all -o DIR`` run wrote.

    .venv/bin/python docs/make_gallery_pages.py
    .venv/bin/python docs/make_gallery_pages.py --results gallery/
"""

import argparse
import json
from pathlib import Path

from trainlab import reproduce as rep
from trainlab.reproduce.gallery import protocol_markdown

DOCS = Path(__file__).parent
OUT = DOCS / "gallery"
START, END = "<!-- results table: written by docs/make_gallery_pages.py --results -->", "<!-- end of results table -->"


def results_table(folder: Path) -> str:
    """One row per experiment, in the gallery's order: its claim, seeds, verdict and the test
    exactly as the run measured it (the ``statement`` of its JSON)."""
    rows = [
        "| experiment | claim | seeds | verdict | the test as measured (difference, 95% CI, margin) |",
        "|---|---|---:|---|---|",
    ]
    for name in rep.NAMES:
        path = folder / f"{name}.json"
        if not path.is_file():
            rows.append(f"| [`{name}`](gallery/{name}.md) | | | not run | |")
            continue
        out = json.loads(path.read_text(encoding="utf-8"))
        quick = " (quick)" if out.get("quick") else ""
        verdict = ("**holds**" if out["holds"] else "does not hold") + quick
        cells = [f"[`{name}`](gallery/{name}.md)", out["claim"], str(out["seeds"]), verdict, out["statement"]]
        rows.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(rows)


def write_results(folder: Path, page: Path = DOCS / "gallery.md") -> None:
    if not any((folder / f"{name}.json").is_file() for name in rep.NAMES):
        raise SystemExit(f"error: {folder} holds no experiment's JSON; give the -o folder of a trainlab reproduce run")
    text = page.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{page} has no results-table markers ({START!r} … {END!r})")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    page.write_text(f"{head}{START}\n{results_table(folder)}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results",
        type=Path,
        metavar="DIR",
        help="a gallery folder: rewrite docs/gallery.md's results table from its JSON",
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    for name in rep.NAMES:
        (OUT / f"{name}.md").write_text(protocol_markdown(rep.get(name)), encoding="utf-8")
    if args.results is not None:
        write_results(args.results)


if __name__ == "__main__":
    main()
