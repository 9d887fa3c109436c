"""``trainlab lr-find CONFIG`` and ``trainlab diagnose RUN``: typer-annotated, registered in ``trainlab.cli``.

Both record what they measure in the run store so ``trainlab report`` shows it: the range test
as a run named ``<config name>/lr-find`` with metrics ``lr_find/lr``, ``lr_find/loss``,
``lr_find/smoothed`` (step = batch index); sharpness as metrics ``sharpness/*`` of the
diagnosed run at its final step; everything ``diagnose`` computed also as a JSON artifact
``diagnose`` (``<run dir>/diagnose.json``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from trainlab.cli_options import StoreOpt
from trainlab.errors import ConfigError


def _console():
    from rich.console import Console

    return Console(stderr=True)


def lr_find(
    config: Annotated[Path, typer.Argument(help="TOML run config: its data, model, optimizer and loss are used")],
    overrides: Annotated[list[str] | None, typer.Argument(help="overrides as key.sub=value")] = None,
    start_lr: Annotated[float, typer.Option("--start-lr", help="first learning rate")] = 1e-7,
    end_lr: Annotated[float, typer.Option("--end-lr", help="last learning rate")] = 10.0,
    steps: Annotated[int, typer.Option("--steps", help="mini-batches in the sweep")] = 100,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="also write the curve as SVG here")] = None,
    store: StoreOpt = None,
) -> None:
    """The LR range test (Smith 2017): prints the suggested lr, then the id of the run that records the curve."""
    from trainlab.diagnose.lr_finder import lr_find as range_test
    from trainlab.store import Store
    from trainlab.train import load_config, setup

    cfg = load_config(config, overrides or [])
    st = Store(store)
    s = setup(cfg, st)
    try:
        result = range_test(s.model, s.batches, s.optimizer, start_lr, end_lr, steps, loss_fn=s.loss_fn)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    run_id = st.create_run(f"{cfg.name}/lr-find", cfg.to_dict(), seed=cfg.seed, config_hash=cfg.hash())
    rows = [
        (i, key, float(v))
        for i in range(len(result.lrs))
        for key, v in (
            ("lr_find/lr", result.lrs[i]),
            ("lr_find/loss", result.losses[i]),
            ("lr_find/smoothed", result.smoothed[i]),
        )
    ]
    st.log_metrics(run_id, rows)
    final = {
        "suggested_lr": result.suggested_lr,
        "min_loss_lr": result.min_loss_lr,
        "stopped_early": result.stopped_early,
        "steps": len(result.lrs),
    }
    st.finish_run(run_id, "completed", final=final)
    if output is not None:
        from trainlab._io import atomic_write_text
        from trainlab.report.plots import figure_to_svg, lr_find_figure

        atomic_write_text(
            output,
            figure_to_svg(
                lr_find_figure(result.lrs, result.losses, result.smoothed, result.suggested_lr, title=cfg.name)
            ),
        )
    _console().print(
        f"suggested lr {result.suggested_lr:.3g} (steepest descent); min-loss lr {result.min_loss_lr:.3g}, a tenth of it {result.min_loss_lr / 10:.3g}"
        + (f"; stopped early at lr {result.lrs[-1]:.3g}" if result.stopped_early else ""),
        highlight=False,
    )
    print(run_id)


def diagnose(
    run_id: Annotated[str, typer.Argument(help="run id (a unique prefix is enough)")],
    sharpness: Annotated[
        bool, typer.Option("--sharpness", help="ε-sharpness, Hessian top eigenvalue and trace")
    ] = False,
    gradcheck: Annotated[bool, typer.Option("--gradcheck", help="autograd against finite differences")] = False,
    flops: Annotated[bool, typer.Option("--flops", help="multiplications and additions per layer")] = False,
    samples: Annotated[int, typer.Option("--samples", help="training samples the loss is measured on")] = 1000,
    epsilon: Annotated[
        float, typer.Option("--epsilon", help="box size of ε-sharpness (Keskar et al.: 1e-3, 5e-4)")
    ] = 1e-3,
    power_iters: Annotated[int, typer.Option("--power-iters", help="power iterations for the top eigenvalue")] = 100,
    trace_samples: Annotated[int, typer.Option("--trace-samples", help="Hutchinson probe vectors")] = 100,
    store: StoreOpt = None,
) -> None:
    """Diagnose a finished run from its final checkpoint (all three checks when none is chosen)."""
    from rich.table import Table

    from trainlab._io import atomic_write_json, torch_load
    from trainlab.store import Store
    from trainlab.train import load_config, setup

    if samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {samples}")
    if not (sharpness or gradcheck or flops):
        sharpness = gradcheck = flops = True
    st = Store(store)
    record = st.get_run(run_id)
    ckpt = st.artifacts(record.id).get("checkpoint")
    if ckpt is None or not ckpt.exists():
        raise ConfigError(f"run {record.id} has no checkpoint file to diagnose (status {record.status})")
    from trainlab import targets

    targets.check_stored(record.config, what=f"run {record.id}")
    s = setup(load_config(record.config), st)
    s.model.load_state_dict(torch_load(ckpt)["model"])
    x, y = (s.data.x_train[:samples], s.data.y_train[:samples]) if hasattr(s.data, "x_train") else s.data.head(samples)  # type: ignore[attr-defined]
    report: dict[str, Any] = {"run_id": record.id, "samples": len(x)}
    console = _console()

    if flops:
        from trainlab.diagnose.flops import count_flops

        count = count_flops(s.model, x[:1])
        report["flops"] = {
            "per_sample": count.total_flops,
            "rows": [vars(r) | {"flops": r.flops} for r in count.rows],
            "unsupported": count.unsupported,
        }
        console.print("[bold]FLOPs of one forward pass, one sample[/bold]")
        console.print(count.table(), markup=False, highlight=False)
    if gradcheck:
        from trainlab.diagnose.gradcheck import gradcheck as check

        result = check(s.model, s.loss_fn, (x[:16], y[:16]), max_per_param=10)
        report["gradcheck"] = {"ok": result.ok, "rows": [vars(r) for r in result.rows]}
        console.print(f"[bold]gradient check: {'ok' if result.ok else 'FAILED'}[/bold]")
        console.print(result.table(), markup=False, highlight=False)
    if sharpness:
        from trainlab.diagnose.sharpness import measure_sharpness

        with console.status("sharpness: power iteration, Hutchinson, L-BFGS-B ..."):
            values = measure_sharpness(
                s.model,
                s.loss_fn,
                x,
                y,
                epsilon=epsilon,
                power_iters=power_iters,
                trace_samples=trace_samples,
                seed=record.seed or 0,
            )
        report["sharpness"] = values
        step = int(record.final.get("step") or 0)
        st.log_metrics(record.id, [(step, f"sharpness/{k}", v) for k, v in values.items() if math.isfinite(v)])
        table = Table("measure", "value", title=f"sharpness of run {record.id} on {len(x)} training samples")
        for k, v in values.items():
            table.add_row(k, f"{v:.5g}")
        console.print(table)
    path = atomic_write_json(st.run_dir(record.id) / "diagnose.json", report)
    st.add_artifact(record.id, "diagnose", path)
    print(path)
