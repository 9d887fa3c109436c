"""Reports: figures as inline SVG and one self-contained HTML file per run, comparison or study.

Building blocks (reused by the reproduction gallery): :mod:`trainlab.report.html` (``page``,
``section``, ``table``, ``figure``, ``escape``, ``write_html``), :mod:`trainlab.report.plots`
(``figure_to_svg``, ``band_figure``, ``heatmap_figure``, ...), :mod:`trainlab.report.bands`
(mean ± t-interval of curves across seeds). The report itself: ``build_report`` and
``write_report`` from :mod:`trainlab.report.build`, resolved lazily so ``import
trainlab.report`` stays cheap.
"""

from __future__ import annotations

from trainlab._lazy import lazy_exports

_EXPORTS = {
    "build_report": "build",
    "write_report": "build",
    "figure_to_svg": "plots",
    "page": "html",
    "table": "html",
    "write_html": "html",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
