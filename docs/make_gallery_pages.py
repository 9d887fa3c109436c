"""Write docs/gallery/<name>.md, each experiment's claim, source quote and protocol table,
from the experiments' code (tests/reproduce/test_gallery.py checks the pages are current).

    .venv/bin/python docs/make_gallery_pages.py
"""

from pathlib import Path

from trainlab import reproduce as rep
from trainlab.reproduce.gallery import protocol_markdown

OUT = Path(__file__).parent / "gallery"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name in rep.NAMES:
        (OUT / f"{name}.md").write_text(protocol_markdown(rep.get(name)), encoding="utf-8")


if __name__ == "__main__":
    main()
