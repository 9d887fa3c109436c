"""Self-contained HTML pages: inline CSS, inline SVG, no script, no external resource.

A page opens from disk with no server and no network (TensorBoard #2045: a dashboard you
cannot send by mail). Every string that comes from a user — run names, config values,
messages, parameter names — goes through :func:`escape`; fragments this package builds
itself (tables, SVG figures) are wrapped in :class:`Markup` so they are not escaped twice.
The building blocks are small so the reproduction gallery composes its own pages from them.

Reports are sent to and opened by others, and their text comes from a store others may write
to, so every page also carries a Content-Security-Policy (:data:`CSP`) that lets the browser
run no script and load nothing from anywhere: even a future escaping bug cannot run code in
a reader's browser or call home from it.

Example::

    html = page("Demo", [section("Numbers", table([[1, 2.5]], ["a", "b"]))])
    write_html("demo.html", html)
"""

from __future__ import annotations

import html as _html
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from trainlab._io import atomic_write_text


class Markup(str):
    """An HTML fragment built by trainlab: inserted as is, never escaped again."""


def escape(value: Any) -> Markup:
    """``value`` as text safe inside HTML elements and attribute values (quotes escaped too)."""
    if isinstance(value, Markup):
        return value
    return Markup(_html.escape(str(value), quote=True))


def format_value(value: Any) -> str:
    """Numbers to 4 significant digits, None / NaN as an en dash, anything else as str."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def table(
    rows: Iterable[Sequence[Any]],
    headers: Sequence[Any],
    *,
    highlight: Iterable[int] = (),
    css_class: str = "",
) -> Markup:
    """An HTML table; cells are escaped unless they are :class:`Markup`; rows whose index is in
    ``highlight`` get the ``diff`` class (configs side by side: the keys that differ)."""
    marked = set(highlight)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(f"<td>{cell if isinstance(cell, Markup) else escape(format_value(cell))}</td>" for cell in row)
        body.append(f'<tr class="diff">{cells}</tr>' if i in marked else f"<tr>{cells}</tr>")
    cls = f' class="{escape(css_class)}"' if css_class else ""
    return Markup(f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def figure(svg: str, caption: str | None = None) -> Markup:
    """An inline SVG (from :func:`trainlab.report.plots.figure_to_svg`) with an escaped caption."""
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return Markup(f"<figure>{svg}{cap}</figure>")


def paragraph(text: str) -> Markup:
    return Markup(f"<p>{escape(text)}</p>")


def details(summary: str, body: str) -> Markup:
    """A collapsed block (no script needed: ``<details>`` is native HTML)."""
    return Markup(f"<details><summary>{escape(summary)}</summary>{body}</details>")


def section(title: str, *parts: str, anchor: str | None = None) -> Markup:
    """A titled section; ``parts`` are Markup fragments or plain text (escaped)."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    body = "".join(p if isinstance(p, Markup) else paragraph(p) for p in parts)
    return Markup(f"<section{ident}><h2>{escape(title)}</h2>{body}</section>")


# What a page needs and nothing more: its own <style> and style attributes (matplotlib's SVG),
# data: images (heatmaps embedded in the SVG). No script, no fetch, no font, no frame, no form;
# base-uri and form-action do not fall back to default-src, so they are named.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #222; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; }
.subtitle { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.85rem; display: block; overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
tr.diff td { background: #fff3c4; }
td { font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.85rem; }
nav ul { columns: 2; font-size: 0.9rem; }
details { margin: 0.5rem 0; }
.grid { display: flex; flex-wrap: wrap; gap: 1rem; }
p.answer { font-size: 1.05rem; background: #eef6ee; border-left: 4px solid #2ca02c; padding: 0.5rem 0.8rem; margin: 0.5rem 0; }
.grid figure { flex: 1 1 480px; }
"""


def page(title: str, sections: Sequence[str], *, subtitle: str | None = None, toc: bool = True) -> str:
    """A complete HTML document: inline CSS, the sections, a table of contents of their ids."""
    sub = f'<p class="subtitle">{escape(subtitle)}</p>' if subtitle else ""
    nav = ""
    if toc:
        import re

        links = re.findall(r'<section id="([^"]+)"><h2>(.*?)</h2>', "".join(sections))
        if len(links) > 1:
            items = "".join(f'<li><a href="#{ident}">{name}</a></li>' for ident, name in links)
            nav = f"<nav><ul>{items}</ul></nav>"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><h1>{escape(title)}</h1>{sub}{nav}{''.join(sections)}</body></html>\n"
    )


def write_html(path: str | os.PathLike, html: str) -> Path:
    """Write ``html`` to ``path`` atomically (a reader never sees half a report)."""
    return atomic_write_text(path, html)
