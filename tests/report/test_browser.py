"""The report in a real browser: headless Chromium renders it with no console message, and the
screenshot is not blank. A negative control proves the checks can fail."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed: apt-get install -y chromium (the CI set-up does)"
)


def render(page: Path, tmp_path: Path) -> tuple[list[str], np.ndarray]:
    """Screenshot ``page``; returns the console lines Chromium logged and the image (H × W × C)."""
    from matplotlib.image import imread

    shot = tmp_path / f"{page.stem}.png"
    cmd = [str(CHROMIUM), *FLAGS, "--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--window-size=1200,2400",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", page.resolve().as_uri()]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.exists(), proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return console, imread(shot)


def is_blank(image: np.ndarray) -> bool:
    """Blank: (almost) one colour — under 1% of the pixels differ from the most common one."""
    gray = image[..., :3].mean(axis=-1)
    values, counts = np.unique(np.round(gray, 2), return_counts=True)
    return 1 - counts.max() / gray.size < 0.01


def test_report_renders_with_no_console_message_and_is_not_blank(filled_store, tmp_path):
    from trainlab.report.build import write_report

    page = write_report(["cmp", filled_store.ids["lone"], filled_store.ids["lr_find"]], tmp_path / "report.html", filled_store)
    console, image = render(page, tmp_path)
    assert console == []
    assert not is_blank(image)
    assert image[..., :3].std() > 0.05  # text, tables and figures, not a faint smudge


def test_the_checks_catch_console_errors_and_blank_pages(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><script>console.error("boom"); missing();</script></body></html>')
    console, image = render(bad, tmp_path)
    assert any("boom" in line for line in console) and any("missing is not defined" in line for line in console)
    assert is_blank(image)
