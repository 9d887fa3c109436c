"""Gallery pages: one self-contained HTML page per claim, and an index linking them.

Built from the report's blocks (:mod:`trainlab.report.html`), so the gallery and the run
reports look and escape alike.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from trainlab.report.html import Markup, escape, figure, page, paragraph, section, table, write_html
from trainlab.reproduce import Experiment, Outcome


def page_name(name: str) -> str:
    return f"{name}.html"


def verdict(holds: bool) -> Markup:
    color, word = ("#1a7f37", "holds") if holds else ("#b42318", "does not hold")
    return Markup(f'<strong style="color:{color}">{word}</strong>')


def render_page(exp: Experiment, outcome: Outcome, seeds: int, quick: bool) -> str:
    parts = [
        section(
            "Claim",
            paragraph(exp.claim),
            Markup(f"<p>Source: {escape(exp.source)}</p>"),
            *([Markup(f"<blockquote>{escape(exp.quote)}</blockquote>")] if exp.quote else []),
            Markup(f"<p>Verdict over {seeds} seeds{' (quick version)' if quick else ''}: {verdict(outcome.holds)}</p>"),
            paragraph("Test: " + outcome.statement),
            anchor="claim",
        )
    ]
    if exp.protocol:
        parts.append(
            section(
                "Protocol: ours beside the source's", table(protocol_rows(exp), PROTOCOL_HEADERS), anchor="protocol"
            )
        )
    if outcome.notes:
        parts.append(section("Notes", paragraph(outcome.notes), anchor="notes"))
    for i, (caption, headers, rows) in enumerate(outcome.tables):
        parts.append(section(caption, table(rows, headers), anchor=f"table-{i}"))
    if outcome.plots:
        figs = "".join(figure(svg, caption) for caption, svg in outcome.plots)
        parts.append(section("Figures", Markup(f'<div class="grid">{figs}</div>'), anchor="figures"))
    numbers = json.dumps(to_jsonable(outcome.figures), indent=1)
    parts.append(
        section(
            "Measured figures",
            Markup(f"<details><summary>JSON</summary><pre>{escape(numbers)}</pre></details>"),
            anchor="data",
        )
    )
    parts.append(Markup('<p><a href="index.html">← all claims</a></p>'))
    return page(exp.name, parts, subtitle=exp.claim, toc=False)


PROTOCOL_HEADERS = ["", "here", "source", "why different"]


def protocol_rows(exp: Experiment) -> list[list[str]]:
    return [[p.aspect, p.ours, p.theirs, p.reason or "same"] for p in exp.protocol]


def protocol_markdown(exp: Experiment) -> str:
    """The experiment's docs page (docs/gallery/<name>.md): the claim, the source's words, the
    protocol table and where the test lives — what the HTML page shows before its results."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    module = exp.name.replace("-", "_")
    lines = [
        f"# `{exp.name}`",
        "",
        f"**Claim.** {exp.claim}",
        "",
        f"**Source.** {exp.source}",
        "",
        f"> {exp.quote}",
        "",
        "## Protocol: ours beside the source's",
        "",
        "| | here | source | why different |",
        "|---|---|---|---|",
        *(f"| {cell(r[0])} | {cell(r[1])} | {cell(r[2])} | {cell(r[3])} |" for r in protocol_rows(exp)),
        "",
        f"The test, its margins (fixed in code before running) and the set-up: `src/trainlab/reproduce/{module}.py`. "
        f"Run it: `trainlab reproduce {exp.name}` (full) or `trainlab reproduce {exp.name} --quick`. "
        "The results of the last full run are in [the gallery's table](../gallery.md).",
        "",
    ]
    return "\n".join(lines)


def render_index(summaries: list[dict[str, Any]]) -> str:
    rows = [
        [
            Markup(f'<a href="{escape(page_name(s["name"]))}">{escape(s["name"])}</a>'),
            s["claim"],
            s["source"],
            verdict(s["holds"]),
            s["seeds"] if not s["quick"] else f"{s['seeds']} (quick)",
        ]
        for s in summaries
    ]
    held = sum(s["holds"] for s in summaries)
    intro = paragraph(
        f"Each claim of the notes rerun over several seeds and checked with a confidence interval: {held} of {len(summaries)} hold here. "
        "A claim that does not hold is reported with its figures, not tuned until it passes."
    )
    return page(
        "trainlab gallery",
        [section("Claims", intro, table(rows, ["experiment", "claim", "source", "verdict", "seeds"]), anchor="claims")],
        toc=False,
    )


def write_gallery(entries: list[tuple[Experiment, Outcome, int, bool]], out_dir: str | Path) -> Path:
    """Write each experiment's page (and a small JSON summary beside it), then rebuild
    ``gallery.html`` (= ``index.html``) from every summary in the folder: running one
    experiment adds its page to the gallery already there."""
    from trainlab._io import atomic_write_json
    from trainlab.reproduce import NAMES

    out = Path(out_dir)
    for exp, outcome, seeds, quick in entries:
        write_html(out / page_name(exp.name), render_page(exp, outcome, seeds, quick))
        summary = {
            "name": exp.name, "claim": exp.claim, "source": exp.source, "holds": outcome.holds, "seeds": seeds,
            "quick": quick, "statement": outcome.statement, "figures": to_jsonable(outcome.figures),
        }  # fmt: skip
        atomic_write_json(out / f"{exp.name}.json", summary)
    summaries = [s for s in (read_summary(out, n) for n in NAMES) if s is not None]
    index = render_index(summaries)
    write_html(out / "index.html", index)
    return write_html(out / "gallery.html", index)


def read_summary(out_dir: str | Path, name: str) -> dict[str, Any] | None:
    """The summary an earlier run of experiment ``name`` left in ``out_dir``, or None."""
    path = Path(out_dir) / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def to_jsonable(obj: Any) -> Any:
    """Figures as JSON: tuples to lists, NaN/inf to None, numpy scalars to Python."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
