"""Study storage at scale: one ask + tell at trial 100, 1,000 and 10,000, trainlab vs Optuna's RDB storage.

Both sides use a SQLite file in a temporary folder and a random sampler (the sampler's own cost
is not what is measured). Each study is filled to N finished trials in one bulk insert (filling
through ask/tell would take hours on Optuna's side), reopened cold, given one untimed ask + tell
(which reads the N trials once), then timed over ``--repeats`` ask + tell pairs; the median
is printed with its ratio to the same side at the smallest N (flat = about 1) and trainlab's
ratio to Optuna at the same N.

    python benchmarks/study_storage.py                  # N = 100, 1000, 10000
    python benchmarks/study_storage.py --sizes 100 1000 --repeats 20

Optuna is a benchmark-only dependency (the ``dev`` extra). Timings on a shared machine are
noisy; medians of the repeats are the least disturbed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def fill_trainlab(url: str, name: str, n: int):
    import sqlalchemy as sa

    from trainlab.tune import Float, Random, Study
    from trainlab.tune.storage import trials_table
    from trainlab.tune.trial import trial_seed

    study = Study(name, {"x": Float(0.0, 1.0)}, sampler=Random(), storage=url)
    now = time.time()
    rows = [
        dict(study_id=study._id, number=i, state="complete", params=json.dumps({"x": i / n}), value=i / n,
             seed=trial_seed(0, i), created_at=now, started_at=now, finished_at=now)
        for i in range(n)
    ]  # fmt: skip
    with study._storage.engine.begin() as conn:
        conn.execute(sa.insert(trials_table), rows)


def fill_optuna(url: str, name: str, n: int):
    import datetime

    import optuna
    from optuna.storages._rdb import models

    study = optuna.create_study(storage=url, study_name=name, sampler=optuna.samplers.RandomSampler(seed=0))
    storage = study._storage._backend  # the RDBStorage under Optuna's cache
    dist = json.dumps(
        {"name": "FloatDistribution", "attributes": {"log": False, "step": None, "low": 0.0, "high": 1.0}}
    )
    now = datetime.datetime.now()
    with storage.engine.begin() as conn:
        conn.execute(
            models.TrialModel.__table__.insert(),
            [
                dict(
                    trial_id=i + 1,
                    number=i,
                    study_id=study._study_id,
                    state=optuna.trial.TrialState.COMPLETE,
                    datetime_start=now,
                    datetime_complete=now,
                )
                for i in range(n)
            ],
        )
        conn.execute(
            models.TrialParamModel.__table__.insert(),
            [dict(trial_id=i + 1, param_name="x", param_value=i / n, distribution_json=dist) for i in range(n)],
        )
        conn.execute(
            models.TrialValueModel.__table__.insert(),
            [
                dict(trial_id=i + 1, objective=0, value=i / n, value_type=models.TrialValueModel.TrialValueType.FINITE)
                for i in range(n)
            ],
        )


def time_trainlab(url: str, name: str, repeats: int) -> float:
    from trainlab.tune import Study

    study = Study.load(name, storage=url)

    def one():
        trial = study.ask()
        study.tell(trial, trial.params["x"])

    return _median(one, repeats)


def time_optuna(url: str, name: str, repeats: int) -> float:
    import optuna

    study = optuna.load_study(study_name=name, storage=url, sampler=optuna.samplers.RandomSampler(seed=0))
    dists = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}

    def one():
        trial = study.ask(dists)
        study.tell(trial, trial.params["x"])

    return _median(one, repeats)


def _median(fn, repeats: int) -> float:
    fn()  # the cold read of every trial, and any first-call cost
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--no-optuna", action="store_true", help="time trainlab only")
    args = ap.parse_args()
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:
        args.no_optuna = True
        print("optuna is not installed (pip install 'trainlab[dev]'): timing trainlab only")
    results: dict[str, dict[int, float]] = {"trainlab": {}, "optuna-rdb": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            url = f"sqlite:///{Path(tmp) / f'trainlab-{n}.db'}"
            fill_trainlab(url, "bench", n)
            results["trainlab"][n] = time_trainlab(url, "bench", args.repeats)
            if not args.no_optuna:
                url = f"sqlite:///{Path(tmp) / f'optuna-{n}.db'}"
                fill_optuna(url, "bench", n)
                results["optuna-rdb"][n] = time_optuna(url, "bench", args.repeats)
            print(f"  N = {n}: done", flush=True)
    print(
        f"\nask + tell, median of {args.repeats} (ms); 'vs N={args.sizes[0]}' = growth; 'trainlab/optuna' at the same N"
    )
    print(f"{'N':>8s} {'trainlab':>10s} {'vs first':>9s} {'optuna RDB':>11s} {'vs first':>9s} {'trainlab/optuna':>16s}")
    first = args.sizes[0]
    for n in args.sizes:
        t = results["trainlab"][n]
        line = f"{n:8d} {t * 1e3:10.2f} {t / results['trainlab'][first]:9.2f}"
        if n in results["optuna-rdb"]:
            o = results["optuna-rdb"][n]
            line += f" {o * 1e3:11.2f} {o / results['optuna-rdb'][first]:9.2f} {t / o:16.2f}"
        print(line)


if __name__ == "__main__":
    main()
