"""HTML building blocks: escaping, tables, a self-contained page, atomic writes."""

from __future__ import annotations

import re

from trainlab.report.html import Markup, escape, figure, format_value, page, section, table, write_html


def test_escape_covers_tags_quotes_and_ampersands_but_not_markup():
    assert (
        escape("<script>alert(\"x\")</script> & 'q'")
        == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;q&#x27;"
    )
    assert escape(Markup("<b>ok</b>")) == "<b>ok</b>"


def test_table_escapes_cells_and_highlights_rows():
    html = table(
        [["<i>name</i>", 0.123456, None], [Markup("<b>x</b>"), float("nan"), True]], ["<th>", "v", "w"], highlight=[1]
    )
    assert "&lt;i&gt;name&lt;/i&gt;" in html and "<i>" not in html
    assert "&lt;th&gt;" in html
    assert "<td>0.1235</td>" in html and "<td>–</td>" in html and "<td>true</td>" in html
    rows = re.findall(r"<tr[^>]*>", html)
    assert rows == ["<tr>", "<tr>", '<tr class="diff">']  # header, row 0, row 1 highlighted
    assert "<b>x</b>" in html


def test_format_value():
    assert [format_value(v) for v in (None, float("nan"), 1234567.0, 3, "a")] == ["–", "–", "1.235e+06", "3", "a"]


def test_page_is_self_contained_and_escapes_the_title(tmp_path):
    html = page(
        "<Title>",
        [section("A & B", "text <x>", anchor="a"), section("C", figure("<svg></svg>", "cap <y>"), anchor="c")],
    )
    assert html.startswith("<!DOCTYPE html>")
    assert "<title>&lt;Title&gt;</title>" in html
    assert "<h2>A &amp; B</h2>" in html and "text &lt;x&gt;" in html and "cap &lt;y&gt;" in html
    assert '<a href="#a">' in html and '<a href="#c">' in html  # the table of contents
    assert not re.search(r"<script|<link|<img|src=|@import|url\(|https?://", html)
    path = write_html(tmp_path / "sub" / "p.html", html)
    assert path.read_text(encoding="utf-8") == html
    assert [p.name for p in path.parent.iterdir()] == ["p.html"]  # no temp file left behind


def test_every_page_carries_a_content_security_policy_that_allows_no_script_and_no_fetch():
    from trainlab.report.html import CSP

    html = page("t", [section("s", "x")])
    meta = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
    assert meta in html and html.index(meta) < html.index("<style>")  # before anything it governs
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives == {
        "default-src": "'none'",  # scripts, fetches, fonts, frames, objects: none
        "img-src": "data:",  # the heatmaps matplotlib embeds in its SVG
        "style-src": "'unsafe-inline'",  # the page's <style> and SVG style attributes
        "base-uri": "'none'",
        "form-action": "'none'",
    }
