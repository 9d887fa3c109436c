"""CLI commands of ``trainlab.tune``: ``tune``, ``nas``, ``studies``, ``show-study``.

Plain typer-annotated functions; ``trainlab.cli`` registers them
(``app.command("tune")(commands.tune)``) and turns a ``ConfigError`` into one line and exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from trainlab import _progress
from trainlab.cli_options import ArtifactsOpt, OverridesArg, StoreOpt
from trainlab.errors import ConfigError

TrialsOpt = Annotated[
    int | None, typer.Option("--trials", metavar="N", help="trials to run now [default: search.trials]")
]
JobsOpt = Annotated[
    int | None, typer.Option("--jobs", metavar="N", help="parallel worker processes [default: search.jobs]")
]
ExecutorOpt = Annotated[str, typer.Option("--executor", metavar="NAME", help="local | ray (needs trainlab[ray])")]
ResumeOpt = Annotated[
    str | None, typer.Option("--resume", metavar="STUDY", help="continue the stored study of this name")
]
StudyNameOpt = Annotated[
    str | None, typer.Option("--name", metavar="STUDY", help="study name [default: search.name or the config's name]")
]
PrunerOpt = Annotated[
    str | None, typer.Option("--pruner", metavar="NAME", help="none | median | sha | hyperband | asha")
]


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)  # piped output keeps whole ids


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def trials_table(study, limit: int = 30):
    """The last ``limit`` trials with their parameters, value and state; the best marked."""
    from rich.table import Table

    trials = study.trials
    best = study.best_trial
    names = list(study.space)
    title = f"study {study.name}: {len(trials)} trials, best {_fmt(best.value) if best else '-'} ({study.metric or 'value'}, {study.direction})"
    table = Table(title=title, title_justify="left")
    for col in ("#", "state", study.metric or "value", "step", *names, "run"):
        table.add_column(col, justify="right" if col not in ("state", "run") else "left")
    for t in trials[-limit:]:
        mark = "*" if best is not None and t.number == best.number else ""
        row = [f"{t.number}{mark}", t.state, _fmt(t.value), _fmt(t.last_step)]
        row += [_fmt(t.params.get(n)) for n in names] + [t.run_id or ""]
        table.add_row(*row)
    return table


def trial_line(study, trial) -> str:
    """One finished trial as a progress line: ``trial 3 complete: val_loss 0.512 (best 0.498, #1) lr=0.03 run ab12``."""
    best = study.best_trial
    shown = f"{study.metric or 'value'} {_fmt(trial.value)}" if trial.value is not None else (trial.message or "")
    best_text = f" (best {_fmt(best.value)}, #{best.number})" if best is not None else ""
    params = " ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    return f"trial {trial.number} {trial.state}: {shown}{best_text} {params}" + (
        f" run {trial.run_id}" if trial.run_id else ""
    )


def _run_study(study, objective, n_trials: int, jobs: int, executor: str, population: int | None = None) -> None:
    console = _console()

    def optimize(callback) -> None:
        if population is not None and population > 1:
            from trainlab.tune.runs import optimize_in_populations

            if jobs > 1 or executor != "local":
                raise ConfigError(
                    "--population trains each batch in this process; use it with --jobs 1 and the local executor"
                )
            optimize_in_populations(study, objective, n_trials, population, callback=callback)
        else:
            study.optimize(objective, n_trials, jobs=jobs, executor=executor, callback=callback)

    if console.is_terminal:  # a live table; on a pipe or CI log it would show nothing until the end
        from rich.live import Live

        with Live(trials_table(study), console=console, refresh_per_second=2, transient=False) as live:
            optimize(lambda s, _t: live.update(trials_table(s)))
    else:
        optimize(lambda s, t: _progress.line(trial_line(s, t)))
        console.print(trials_table(study))
    best = study.best_trial
    if best is not None:
        console.print()
        console.print(
            f"best trial {best.number}: {study.metric} = {best.value:.6g}  params = {json.dumps(best.params)}  run = {best.run_id}"
        )


def _tune(
    config: Path, overrides: list[str] | None, nas: bool, store: str | None, n_trials: int | None, jobs: int | None, executor: str,
    resume: str | None, population: int | None = None, **search,
) -> None:  # fmt: skip
    from trainlab.store import Store
    from trainlab.tune.runs import RunObjective, study_from_config

    for flag, value in (("--trials", n_trials), ("--jobs", jobs), ("--population", population)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be an integer >= 1, got {value}")
    study, spec = study_from_config(config, nas=nas, store=store, overrides=overrides or [], resume=resume, **search)
    stored = study.objective or {}
    allow: list[str] = []
    if isinstance(stored.get("config"), dict):
        from trainlab import targets

        allow = [] if resume else targets.trusted_code(stored["config"])  # a new study: the user's own config
        targets.check_stored(stored["config"], what=f"study '{study.name}'", allow=allow)  # before any worker starts
    if "config" not in stored:
        raise ConfigError(
            f"study '{study.name}' was not created from a run config; run it with trainlab.tune.Study in Python"
        )
    Store(study.storage_url).reap(group=study.name)  # runs of killed trials: interrupted, not left running
    objective = RunObjective(stored["config"], study.storage_url, nas=bool(stored.get("nas")), allow=allow)
    n_trials, jobs = spec.trials if n_trials is None else n_trials, spec.jobs if jobs is None else jobs
    _run_study(study, objective, n_trials, jobs, executor, population)


def tune(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help="TOML run config with a [search] section")],
    overrides: OverridesArg = None,
    sampler: Annotated[
        str | None,
        typer.Option(
            "--sampler", metavar="NAME", help="gp | random | grid | optuna:tpe | optuna:cmaes (needs trainlab[optuna])"
        ),
    ] = None,
    pruner: PrunerOpt = None,
    trials: TrialsOpt = None,
    jobs: JobsOpt = None,
    executor: ExecutorOpt = "local",
    resume: ResumeOpt = None,
    name: StudyNameOpt = None,
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    population: Annotated[
        int | None,
        typer.Option(
            "--population",
            metavar="N",
            help="ask N suggestions at a time and train them as one population (no pruning)",
        ),
    ] = None,
) -> None:
    """Search the hyperparameters named in the config's [search] section; a live table shows the trials
    (one line per finished trial when the output is not a terminal)."""
    _tune(
        config,
        overrides,
        False,
        store,
        trials,
        jobs,
        executor,
        resume,
        population,
        sampler=sampler,
        pruner=pruner,
        name=name,
    )


def nas(
    config: Annotated[
        Path, typer.Argument(metavar="CONFIG", help="TOML run config (an MLP) with [search.architecture]")
    ],
    overrides: OverridesArg = None,
    searcher: Annotated[str | None, typer.Option("--searcher", metavar="NAME", help="reinforce | random")] = None,
    pruner: PrunerOpt = None,
    trials: TrialsOpt = None,
    jobs: JobsOpt = None,
    executor: ExecutorOpt = "local",
    resume: ResumeOpt = None,
    name: StudyNameOpt = None,
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Architecture search: a REINFORCE controller (or random search) proposes MLPs; reward = val accuracy."""
    if searcher not in (None, "reinforce", "random"):
        raise ConfigError(f"--searcher must be 'reinforce' or 'random', got {searcher!r}")
    _tune(config, overrides, True, store, trials, jobs, executor, resume, sampler=searcher, pruner=pruner, name=name)


def studies(store: StoreOpt = None) -> None:
    """List the studies in the store."""
    from rich.table import Table

    from trainlab.credentials import display_url
    from trainlab.store import resolve_url
    from trainlab.tune.study import list_studies

    table = Table(title=f"studies in {display_url(resolve_url(store))}", title_justify="left")
    for col in ("name", "metric", "direction", "sampler", "pruner", "trials", "complete", "pruned", "failed", "best"):
        table.add_column(col)
    for s in list_studies(store):
        c = s["counts"]
        table.add_row(
            s["name"], s["metric"] or "value", s["direction"], s["sampler"], s["pruner"], str(s["n_trials"]),
            str(c.get("complete", 0)), str(c.get("pruned", 0)), str(c.get("failed", 0)), _fmt(s["best_value"]),
        )  # fmt: skip
    _console().print(table)


def show_study(
    name: Annotated[str, typer.Argument(metavar="STUDY", help="study name")],
    as_json: Annotated[bool, typer.Option("--json", help="print the study and all trials as JSON")] = False,
    store: StoreOpt = None,
) -> None:
    """One study: its space, sampler, pruner, best trial and every trial."""
    from trainlab.tune.study import Study

    study = Study.load(name, storage=store)
    if as_json:
        print(json.dumps({**study.summary(), "trials": [t.to_dict() for t in study.trials]}, indent=2, default=str))
        return
    console = _console()
    s = study.summary()
    console.print(f"sampler {s['sampler']}  pruner {s['pruner']}  seed {s['seed']}  counts {s['counts']}")
    console.print(trials_table(study, limit=10**9))
