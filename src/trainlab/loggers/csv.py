"""``csv``: one file per run, ``<run folder>/metrics.csv`` with columns ``step,key,value``.

Every row the store receives, appended batch by batch (one write per batch). On resume the
file is first rewritten from the store, which has dropped the rows logged after the
checkpoint, so the file again holds exactly the store's rows.
"""

from __future__ import annotations

import csv as _csv
import io
import math
from collections.abc import Sequence

from trainlab._io import atomic_write_text
from trainlab.loggers._base import Logger, Row


def rows_to_csv(rows: Sequence[Row], header: bool = False) -> str:
    buf = io.StringIO()
    writer = _csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(("step", "key", "value"))
    writer.writerows((s, k, "" if v is None or not math.isfinite(v) else repr(float(v))) for s, k, v in rows)
    return buf.getvalue()


class CSVLogger(Logger):
    name = "csv"

    def open(self, trainer) -> None:
        self.path = trainer.run_dir / "metrics.csv"
        stored = trainer.store.metrics(trainer.run_id) if trainer.step else {}
        rows = sorted((int(s), k, float(v)) for k, (steps, values) in stored.items() for s, v in zip(steps, values))
        atomic_write_text(self.path, rows_to_csv(rows, header=True))
        trainer.store.add_artifact(trainer.run_id, "metrics_csv", self.path)

    def write(self, rows: Sequence[Row]) -> None:
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(rows_to_csv(rows))
