"""The ``trainlab`` command line (also ``python -m trainlab``).

Every command takes ``--store URL`` (default ``$TRAINLAB_STORE``, else ``runs/trainlab.db``;
``:memory:`` for a throwaway store). Bad input (a config key, a file, a run id, a store) prints
one line naming the problem and the fix and exits with status 2 — never a traceback;
``trainlab --debug ...`` (or ``TRAINLAB_DEBUG=1``) shows the traceback instead. An error that is
not the user's is a bug: its traceback, a line saying so, exit status 1.

Start-up matters (``trainlab --help``, ``trainlab runs`` should answer at once): this module
imports neither torch nor rich at the top; each command imports what it needs.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

import trainlab
from trainlab.cli_options import ArtifactsOpt, OverridesArg, StoreOpt
from trainlab.credentials import redact
from trainlab.diagnose import commands as diagnose_commands
from trainlab.errors import ConfigError
from trainlab.export import export_command
from trainlab.report import commands as report_commands
from trainlab.tune import commands as tune_commands

# Plain help (rich_markup_mode=None): no text lost to markup ("trainlab[ray]", "[default: ...]"),
# the same output on a terminal and in a pipe; -h as well as --help, in every subcommand.
app = typer.Typer(
    help="trainlab: make neural networks train well — run, compare, tune, diagnose and report.",
    epilog=(
        "An error is one line; trainlab --debug COMMAND … (or TRAINLAB_DEBUG=1) shows its traceback. "
        "trainlab --allow-target MODULE COMMAND … (or TRAINLAB_ALLOW_TARGETS=MODULE,…) lets configs read back "
        "from a store import that module's code (see SECURITY.md)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Data sets.", no_args_is_help=True, rich_markup_mode=None)
schedule_app = typer.Typer(help="Learning-rate schedules.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(data_app, name="data")
app.add_typer(schedule_app, name="schedule")


@functools.cache
def _out():
    """The stdout console, made on first use (importing rich costs start-up)."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)  # piped output keeps whole ids


@functools.cache
def _err():
    from rich.console import Console

    return Console(stderr=True)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _version(value: bool) -> None:
    if value:
        print(f"trainlab {trainlab.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """trainlab: make neural networks train well — run, compare, tune, diagnose and report."""


def _store(url: str | None):
    from trainlab.store import Store

    return Store(url)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Argument(metavar="CONFIG", help="TOML run config (omit with --resume)")
    ] = None,
    overrides: OverridesArg = None,
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", metavar="RUN_ID", help="continue an interrupted run from its last checkpoint"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            metavar="N",
            help="train data-parallel on N local processes (DDP; data.batch_size is the global batch)",
        ),
    ] = 1,
) -> None:
    """Train one run; prints the run id as the last line of stdout.

    Under torchrun (torchrun --nproc-per-node N -m trainlab run CONFIG) each process is one rank
    of the run; rank 0 alone writes the store and prints."""
    from trainlab.train import load_config
    from trainlab.train import run as run_config

    if resume is None and config is None:
        raise ConfigError("give a CONFIG file, or --resume RUN_ID")
    if resume is not None and (config is not None or overrides):
        raise ConfigError("--resume continues a run with its stored config; do not pass CONFIG or overrides")
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    cfg = None if resume else load_config(config, overrides or [])  # type: ignore[arg-type]
    result = run_config(cfg, store=store if nproc > 1 else _store(store), quiet=quiet, resume=resume, nproc=nproc)
    if os.environ.get("RANK", "0") != "0" and nproc == 1:  # a torchrun worker other than rank 0
        return
    shown = ", ".join(
        f"{k} {_fmt(result.final.get(k))}"
        for k in ("val_acc", "val_loss", "test_acc")
        if result.final.get(k) is not None
    )
    _err().print(
        f"run {result.run_id} {result.status}: {shown} ({result.final.get('seconds', 0):.1f} s)",
        soft_wrap=True,
        highlight=False,
    )
    if result.message:
        _err().print(result.message)
    print(result.run_id)
    if result.status in ("diverged", "failed") or (nproc > 1 and result.status == "interrupted"):  # a worker died
        raise typer.Exit(1)


@app.command()
def runs(
    store: StoreOpt = None,
    group: Annotated[str | None, typer.Option(metavar="NAME", help="only runs of this comparison / study")] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="show the last N runs")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the runs as a JSON list (config, final metrics, status, times)")
    ] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="print one CSV row per run, final metrics as final.<key> columns")
    ] = False,
    reap: Annotated[
        bool, typer.Option("--reap", help="first mark runs whose process is gone (killed, machine lost) as interrupted")
    ] = False,
) -> None:
    """List runs in a table (or as JSON / CSV for other tools)."""
    if as_json and as_csv:
        raise ConfigError("give --json or --csv, not both")
    st = _store(store)
    if reap:
        reaped = st.reap(group=group)
        listed = f" ({', '.join(reaped)})" if reaped else ""
        _err().print(f"marked {len(reaped)} run(s) interrupted: their process is gone{listed}", highlight=False)
    records = st.list_runs(group=group)[-limit:]
    if as_json or as_csv:
        from trainlab.export import run_summary_rows, to_csv

        print(
            json.dumps([r.to_dict() for r in records], indent=2, default=str)
            if as_json
            else to_csv(run_summary_rows(records)),
            end="\n" if as_json else "",
        )
        return
    from rich.table import Table

    table = Table("id", "name", "status", "seed", "step", "val_acc", "val_loss", "created")
    for r in records:
        table.add_row(
            r.id,
            r.name,
            r.status,
            _fmt(r.seed),
            _fmt(r.final.get("step")),
            _fmt(r.final.get("val_acc")),
            _fmt(r.final.get("val_loss")),
            r.to_dict()["created_at"],
        )
    _out().print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="run id (a unique prefix is enough)")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Print a run's config and final metrics."""
    record = _store(store).get_run(run_id)
    if as_json:
        print(
            json.dumps(
                {
                    "id": record.id,
                    "name": record.name,
                    "status": record.status,
                    "seed": record.seed,
                    "config": record.config,
                    "final": record.final,
                    "message": record.message,
                },
                indent=2,
                default=str,
            )
        )
        return
    from rich.table import Table

    out = _out()
    out.print(f"[bold]{record.id}[/bold]  {escape(record.name)}  ({record.status})")
    if record.message:
        out.print(escape(record.message))
    table = Table("metric", "value")
    for k, v in record.final.items():
        table.add_row(k, _fmt(v))
    out.print(table)
    out.print_json(json.dumps(record.config), indent=2)


@app.command()
def compare(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help="TOML config with a [compare] section")],
    overrides: OverridesArg = None,
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", metavar="N", help="parallel worker processes")] = 1,
    seeds: Annotated[
        int | None, typer.Option("--seeds", metavar="N", help="seeds per variant (overrides compare.seeds)")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="write the HTML report here")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    vectorize: Annotated[
        str,
        typer.Option(
            "--vectorize",
            metavar="MODE",
            help="auto: train runs differing only in seed or scalars as populations; off: one by one",
        ),
    ] = "auto",
) -> None:
    """Run every variant x seed (resumable: finished runs are skipped), then print the table.

    Progress: a bar on a terminal, one line per finished run otherwise."""
    from trainlab.compare import print_summary, run_comparison, summarize_plan
    from trainlab.train import load_config

    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    cfg = load_config(config, overrides or [])
    st = _store(store)
    run_comparison(cfg, store=st, jobs=jobs, seeds=seeds, quiet=quiet, vectorize=vectorize)
    print_summary(summarize_plan(cfg, st, seeds), _out())
    if output is not None:
        from trainlab.report.build import write_report

        print(write_report([cfg.name], output, st).absolute())


@app.command()
def reproduce(
    name: Annotated[str | None, typer.Argument(metavar="EXPERIMENT", help="an experiment name, or 'all'")] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the experiments with their claim and source")] = False,
    seeds: Annotated[int | None, typer.Option("--seeds", metavar="N", help="seeds per configuration")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="the small version (seconds), as the tests run it")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the outcome as JSON")] = False,
    output: Annotated[Path, typer.Option("-o", "--output", metavar="DIR", help="gallery folder")] = Path("gallery"),
    rerun: Annotated[
        bool, typer.Option("--rerun", help="with 'all': rerun experiments whose page is already in the gallery folder")
    ] = False,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", metavar="N", help="worker processes for each experiment's seed sweeps")
    ] = 1,
    store: StoreOpt = None,
    artifacts: ArtifactsOpt = None,
) -> None:
    """Rerun a claim of the notes over several seeds and check it; 'all' writes gallery.html.

    Each experiment's page is written as soon as it finishes; 'all' skips the experiments whose
    page (same seeds, same quick/full) is already in the folder, so an interrupted 'all' resumes.
    """
    from rich.table import Table

    from trainlab import reproduce as rep
    from trainlab.reproduce.gallery import page_name, read_summary, to_jsonable, write_gallery

    out, err = _out(), _err()
    if list_ or name is None:
        table = Table("experiment", "claim", "source")
        for n in rep.NAMES:
            exp = rep.get(n)
            table.add_row(n, exp.claim, exp.source)
        out.print(table)
        return
    if seeds is not None and seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    names = list(rep.NAMES) if name == "all" else [name]
    st = _store(store)
    for n in names:
        done = read_summary(output, n) if name == "all" and not rerun else None
        if (
            done is not None
            and done.get("quick") == quick
            and done.get("seeds") == rep.seeds_for(rep.get(n), seeds, quick)
            and "figures" in done
        ):
            err.print(
                f"{n}: already in {output} ({'holds' if done['holds'] else 'does NOT hold'}); skipped (--rerun to run it again)",
                highlight=False,
                soft_wrap=True,
            )
            result = done
        else:
            exp, outcome, used = rep.run_experiment(
                n,
                seeds=seeds,
                quick=quick,
                store=st,
                out_dir=output,
                log=lambda m: err.print(escape(m), highlight=False),
                jobs=jobs,
            )
            write_gallery([(exp, outcome, used, quick)], output)
            err.print(
                f"{n}: {'holds' if outcome.holds else 'does NOT hold'} — {escape(outcome.statement)}",
                highlight=False,
                soft_wrap=True,
            )
            result = {
                "name": n,
                "claim": exp.claim,
                "holds": outcome.holds,
                "statement": outcome.statement,
                "figures": to_jsonable(outcome.figures),
                "seeds": used,
            }
        if as_json:
            print(json.dumps({k: result[k] for k in ("name", "claim", "holds", "statement", "figures", "seeds")}))
    index = write_gallery([], output)
    if not as_json:
        print((index if name == "all" else output / page_name(name)).absolute())


@data_app.command("list")
def data_list() -> None:
    """List the built-in data sets and file loaders with their options."""
    from rich.table import Table

    from trainlab.data.datasets import DATASETS

    table = Table("name", "options", "description")
    for name, spec in DATASETS.items():
        table.add_row(name, ", ".join(spec.options), spec.description)
    _out().print(table)


@schedule_app.command("plot")
def schedule_plot(
    config_or_spec: Annotated[
        str,
        typer.Argument(
            metavar="CONFIG_OR_SPEC", help="a run config (.toml) or a spec like 'cosine:lr=0.1,total_steps=1000'"
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE", help="SVG file to write")] = Path("lr.svg"),
) -> None:
    """Draw the learning rate over a run's steps, before spending a run on it."""
    from trainlab.report.lr_plot import plot_schedule
    from trainlab.schedules import from_config, from_spec

    if config_or_spec.endswith(".toml"):
        from trainlab.train import build, load_config
        from trainlab.train.trainer import load_builtin_data

        cfg = load_config(config_or_spec)
        d = cfg.data
        data = build.data(cfg)  # the config's own data (a target, a registered name), else a built-in set
        if data is None:
            data = load_builtin_data(cfg)
        if hasattr(data, "x_train"):
            n = len(data.x_train)
            steps_per_epoch = n // d.batch_size if d.drop_last else -(-n // d.batch_size)
        else:
            steps_per_epoch = len(data.batches)
        total = cfg.train.max_steps or cfg.train.epochs * steps_per_epoch
        lr = cfg.optim.scaled_lr(d.batch_size)
        schedule, title = (
            from_config(cfg.schedule.name, cfg.schedule.options(), base_lr=lr, total_steps=total),
            f"{cfg.name}: {cfg.schedule.name}",
        )
    else:
        schedule, total = from_spec(config_or_spec)
        title = config_or_spec
    plot_schedule(schedule, total, output, title=title)
    print(output)


@app.command()
def examples() -> None:
    """List the example configs that ship with trainlab (copy one with `trainlab init NAME`)."""
    from trainlab import _examples

    shipped = _examples.available()
    width = max(map(len, shipped), default=0)
    for name, path in shipped.items():
        print(f"{name:<{width}}  {_examples.summary(path)}")


@app.command()
def init(
    example: Annotated[
        str, typer.Argument(metavar="EXAMPLE", help="which example (see `trainlab examples`)")
    ] = "quickstart",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="FILE", help="where to write it [default: EXAMPLE.toml here]"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite FILE if it exists")] = False,
) -> None:
    """Write an example config to start from (the quickstart by default); prints its path."""
    from trainlab import _examples

    path = _examples.write(example, output, force=force)
    print(path)
    _err().print(f"next: trainlab run {path}", highlight=False, soft_wrap=True)


# Commands that live beside the module they drive (each a plain typer-annotated function).
app.command("tune")(tune_commands.tune)
app.command("nas")(tune_commands.nas)
app.command("studies")(tune_commands.studies)
app.command("show-study")(tune_commands.show_study)
app.command("lr-find")(diagnose_commands.lr_find)
app.command("diagnose")(diagnose_commands.diagnose)
app.command("report")(report_commands.report)
app.command("export")(export_command)


def _plain_metavars(command) -> None:
    """Give every option and argument without a metavar an argparse-style one (``--jobs JOBS``,
    ``RUN_ID``): typer's own (``<int>``, ``<bool>`` on flags) depend on its version."""
    for param in command.params:
        if param.metavar is None and not getattr(param, "is_flag", False):
            param.metavar = param.name.upper()
        if param.param_type_name == "argument" and hasattr(param, "display_type_rich"):
            param.display_type_rich = lambda ctx: None  # recent typer adds "<path>" after "CONFIG"
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)


def command():
    """The click command behind ``trainlab`` (what ``main`` runs)."""
    cmd = typer.main.get_command(app)
    _plain_metavars(cmd)
    return cmd


DEBUG_ENV = "TRAINLAB_DEBUG"


def _take_debug_flag(args: list[str]) -> bool:
    """Remove the global ``--debug`` from ``args`` (anywhere before a ``--``); True if it was
    there or ``$TRAINLAB_DEBUG`` is set."""
    end = args.index("--") if "--" in args else len(args)
    found = "--debug" in args[:end]
    args[:end] = [a for a in args[:end] if a != "--debug"]
    return found or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _take_allow_targets(args: list[str]) -> None:
    """Remove every global ``--allow-target MODULE`` (or ``=MODULE``) from ``args`` and add the
    modules to ``$TRAINLAB_ALLOW_TARGETS``, where worker processes see them too."""
    from trainlab.targets import ALLOW_ENV

    end = args.index("--") if "--" in args else len(args)
    head, allowed, i = [], [], 0
    while i < end:
        a = args[i]
        if a == "--allow-target":
            if i + 1 >= end:
                raise ConfigError("--allow-target needs a MODULE (or a .py file) to allow")
            allowed.append(args[i + 1])
            i += 2
            continue
        if a.startswith("--allow-target="):
            allowed.append(a.partition("=")[2])
        else:
            head.append(a)
        i += 1
    args[:end] = head
    if allowed:
        present = [m for m in os.environ.get(ALLOW_ENV, "").split(",") if m.strip()]
        os.environ[ALLOW_ENV] = ",".join(present + allowed)


def _click_exceptions():
    try:
        from typer._click import exceptions  # typer >= 0.20 carries its own click
    except ImportError:  # pragma: no cover - older typer depends on click
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def _fail(message: str) -> None:
    """The one line of a user error, then exit status 2."""
    _err().print(f"[red]error:[/red] {escape(redact(' '.join(message.split())))}", highlight=False, soft_wrap=True)
    sys.exit(2)


def _one_line_warnings() -> None:
    """trainlab's own warnings (a resume that skipped a damaged checkpoint, a logger that
    stopped) as one ``warning: …`` line on stderr, without Python's source-line echo."""
    import warnings

    default = warnings.formatwarning
    if getattr(default, "trainlab", False):
        return

    def fmt(message, category, filename, lineno, line=None):
        if category.__module__.startswith("trainlab") or f"{os.sep}trainlab{os.sep}" in filename:
            return f"warning: {message}\n"
        return default(message, category, filename, lineno, line)

    fmt.trainlab = True  # type: ignore[attr-defined]
    warnings.formatwarning = fmt


INTERRUPTED = 130  # 128 + SIGINT


def main(argv: list[str] | None = None) -> None:
    """Entry point: a user error is one line on stderr and exit status 2 (``--debug``: the traceback)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _take_debug_flag(args)
    _one_line_warnings()
    click_errors = _click_exceptions()
    try:
        _take_allow_targets(args)
        code = command()(args=args, standalone_mode=False)
    except click_errors.NoArgsIsHelpError as e:  # `trainlab` alone: the help is already printed
        if e.format_message().strip():
            e.show()
        sys.exit(e.exit_code)
    except click_errors.ClickException as e:  # a wrong option or argument
        if debug:
            raise
        names, ctx = [], getattr(e, "ctx", None)  # type: ignore[var-annotated]
        while ctx is not None and ctx.parent is not None:  # the subcommands, without the program's own name
            names.insert(0, ctx.info_name)
            ctx = ctx.parent
        _fail(f"{e.format_message()} (see `{' '.join(['trainlab', *names])} --help`)")
    except typer.Abort:
        _err().print("aborted")
        sys.exit(1)
    except (ConfigError, FileNotFoundError) as e:
        if debug:
            raise
        _fail(str(e) if isinstance(e, ConfigError) else f"file not found: {e.filename or e}")
    except Exception:
        if debug:
            raise
        traceback.print_exc()
        _err().print(
            "[red]internal error:[/red] this is a bug in trainlab, not in your input; please report it "
            "with the command you ran and the traceback above.",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
    if code == INTERRUPTED:  # typer's exit status for Ctrl-C (KeyboardInterrupt), as a shell's
        _err().print(
            "interrupted: what finished is kept in the store (an interrupted run resumes from its "
            "checkpoint); run the same command again to continue",
            highlight=False,
            soft_wrap=True,
        )
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
