"""Exports: runs, comparisons (groups) and studies out of the store, as csv, json, parquet or an Optuna storage.

``trainlab export TARGET --format csv|json|parquet|optuna [-o FILE|URL]`` — TARGET is a run id
(or a unique prefix), a study name or a comparison name (a run group), tried in that order, as
``trainlab report`` does. What each format holds:

- runs and groups, ``csv`` / ``parquet``: every logged metric row, long format — ``run_id, name,
  group, seed, status, step, key, value`` (what :meth:`Store.metrics` returns: each row the run
  logged, training steps and evaluations alike); ``json``: each run's record (config, final
  metrics, status, times) with its metrics as ``{key: {"steps": [...], "values": [...]}}``.
- studies, ``csv`` / ``parquet``: one row per trial — ``number, state, value, params_<name>...,
  seed, run_id, started_at, finished_at, duration, message`` (:func:`trial_rows`, also
  :meth:`trainlab.tune.Study.trials_dataframe`); ``json``: the study summary and every trial
  with its intermediate values; ``optuna``: the study written into an Optuna storage
  (:func:`to_optuna`), which ``optuna.load_study`` and ``optuna-dashboard URL`` open.

Parquet needs pyarrow (``pip install 'trainlab[parquet]'``), Optuna ``trainlab[optuna]``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trainlab._io import atomic_write_bytes, atomic_write_text
from trainlab.cli_options import StoreOpt
from trainlab.credentials import display_url, redact
from trainlab.errors import ConfigError

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when an export runs, not when the CLI starts
    from trainlab.store import RunRecord, Store

FORMATS = ("csv", "json", "parquet", "optuna")


def _num(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


# -- rows ----------------------------------------------------------------------------------


def metric_rows(store: Store, records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Every metric row of ``records``, long format, ordered by run then step."""
    rows = []
    for r in records:
        flat = sorted(
            (int(s), k, float(v)) for k, (steps, values) in store.metrics(r.id).items() for s, v in zip(steps, values)
        )
        base = {"run_id": r.id, "name": r.name, "group": r.group, "seed": r.seed, "status": r.status}
        rows += [{**base, "step": s, "key": k, "value": _num(v)} for s, k, v in flat]
    return rows


def run_summary_rows(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One flat row per run (``trainlab runs --csv``): id, name, group, status, seed, times, then
    every final metric as ``final.<key>`` (the union over the runs)."""
    keys = sorted({k for r in records for k, v in r.final.items() if not isinstance(v, (dict, list))})
    rows = []
    for r in records:
        row = {"id": r.id, "name": r.name, "group": r.group, "status": r.status, "seed": r.seed,
               "created_at": _iso(r.created_at), "finished_at": _iso(r.finished_at), "message": r.message}  # fmt: skip
        row.update({f"final.{k}": _num(r.final.get(k)) for k in keys})
        rows.append(row)
    return rows


def run_json(store: Store, record: RunRecord) -> dict[str, Any]:
    metrics = {
        k: {"steps": s.tolist(), "values": [_num(float(x)) for x in v]}
        for k, (s, v) in store.metrics(record.id).items()
    }
    return {**record.to_dict(), "config_hash": record.config_hash, "metrics": metrics}


def trial_rows(study: Any) -> list[dict[str, Any]]:
    """One flat row per trial, parameters as ``params_<name>`` (Optuna's ``trials_dataframe`` naming)."""
    names = list(study.space)
    rows = []
    for t in study.trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state, "value": _num(t.value)}
        row.update({f"params_{n}": _cell(t.params.get(n)) for n in names})
        row.update({"seed": t.seed, "run_id": t.run_id, "started_at": _iso(t.started_at)})
        row.update(
            {"finished_at": _iso(t.finished_at), "duration": t.duration, "last_step": t.last_step, "message": t.message}
        )
        rows.append(row)
    return rows


def _cell(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, (list, dict)) else v


# -- writers -------------------------------------------------------------------------------


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    rows = list(rows)
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def to_parquet(rows: Sequence[dict[str, Any]]) -> bytes:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("--format parquet needs pyarrow: pip install 'trainlab[parquet]'") from None
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(list(rows)), sink)
    return sink.getvalue().to_pybytes()


def to_optuna(study: Any, url: str, name: str | None = None):
    """Write ``study`` into the Optuna storage at ``url`` (an SQLAlchemy URL) as a new Optuna
    study of the same name: direction, every trial's state, parameters with their
    distributions, value and intermediate values, start and end times; trainlab's seed,
    run id and message as user attributes. Returns the ``optuna.Study``.

    Waiting and running trials are written as Optuna's WAITING / RUNNING; a study of that name
    already in the storage is an error (Optuna studies are append-only)."""
    from trainlab.tune.optuna import STATE_TO_OPTUNA, _require_optuna, to_optuna_params

    optuna = _require_optuna("--format optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = name or study.name
    try:
        storage = optuna.storages.RDBStorage(url)
    except Exception as err:  # a bad URL or an unreachable server: one line naming it
        raise ConfigError(
            f"cannot open Optuna storage '{display_url(url)}': {type(err).__name__}: {redact(str(err), url)}"
        ) from None
    if name in {s.study_name for s in storage.get_all_studies()}:
        raise ConfigError(
            f"Optuna storage '{display_url(url)}' already has a study '{name}'; choose another URL or remove it first"
        )
    target = optuna.create_study(storage=storage, study_name=name, direction=study.direction)
    target.set_user_attr("trainlab.metric", study.metric)
    frozen = []
    for t in study.trials:
        params, dists = to_optuna_params(study.space, t.params)
        state = getattr(optuna.trial.TrialState, STATE_TO_OPTUNA[t.state])
        value = t.value if t.state in ("complete", "pruned") else None  # Optuna, too, keeps a pruned trial's last value
        ft = optuna.trial.create_trial(
            state=state,
            params=params,
            distributions=dists,
            value=value,
            intermediate_values={s: v for s, v in t.intermediate if math.isfinite(v)},
            user_attrs={k: getattr(t, k) for k in ("seed", "run_id", "message") if getattr(t, k) is not None},
        )
        start = None if t.started_at is None else datetime.fromtimestamp(t.started_at)
        end = None if t.finished_at is None else datetime.fromtimestamp(t.finished_at)
        ft.datetime_start = start if t.state != "waiting" else None
        ft.datetime_complete = (end or start) if state.is_finished() else None
        frozen.append(ft)
    target.add_trials(frozen)
    return target


# -- the export ----------------------------------------------------------------------------


def resolve(target: str, store: Store) -> tuple[str, Any]:
    """``("run", [record])``, ``("study", Study)`` or ``("group", records)`` for a target name."""
    try:
        return "run", [store.get_run(target)]
    except ConfigError:
        pass
    from trainlab.tune.storage import StudyStorage

    if StudyStorage(store.url).get_study(target) is not None:
        from trainlab.tune.study import Study

        return "study", Study.load(target, storage=store.url)
    group = store.list_runs(group=target)
    if group:
        return "group", group
    raise ConfigError(
        f"'{target}' is neither a run id, a study nor a comparison in store {display_url(store.url)} "
        "(list them with `trainlab runs`, `trainlab studies`)"
    )


def export(
    target: str, fmt: str, output: str | os.PathLike | None = None, store: Store | str | None = None
) -> str | Path:
    """Export ``target`` (a run id, study or group) as ``fmt``; returns the path (or URL) written,
    or the text when ``output`` is None (csv, json)."""
    from trainlab.store import Store

    store = store if isinstance(store, Store) else Store(store)
    if fmt not in FORMATS:
        from trainlab.errors import unknown_name

        raise unknown_name("--format", fmt, FORMATS)
    if fmt in ("parquet", "optuna") and output is None:
        raise ConfigError(f"--format {fmt} needs -o {'FILE' if fmt == 'parquet' else 'URL (e.g. sqlite:///optuna.db)'}")
    kind, found = resolve(target, store)
    if fmt == "optuna":
        if kind != "study":
            raise ConfigError(f"--format optuna exports a study; '{target}' is a {kind}")
        to_optuna(found, str(output))
        return str(output)
    if kind == "study":
        rows = trial_rows(found)
        document: Any = {**found.summary(), "trials": [t.to_dict() for t in found.trials]}
    else:
        rows = metric_rows(store, found)
        document = {"runs": [run_json(store, r) for r in found]}
    if fmt == "parquet":
        assert output is not None  # refused above
        return atomic_write_bytes(output, to_parquet(rows))
    text = to_csv(rows) if fmt == "csv" else json.dumps(document, indent=2, default=str, allow_nan=False) + "\n"
    return text if output is None else atomic_write_text(output, text)


def export_command(
    target: Annotated[str, typer.Argument(help="a run id (or unique prefix), a study name or a comparison name")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="csv | json | parquet (needs trainlab[parquet]) | optuna (a study; needs trainlab[optuna])",
        ),
    ] = "csv",
    output: Annotated[
        str | None,
        typer.Option(
            "-o", "--output", help="file to write (csv/json: stdout when omitted); for optuna an SQLAlchemy URL"
        ),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Export a run, a comparison or a study: metric rows or trials (csv, json, parquet), or a study into Optuna."""
    result = export(target, fmt, output, store)
    if output is None:
        print(result, end="")
    else:
        print(display_url(result) if fmt == "optuna" else Path(result).absolute())
