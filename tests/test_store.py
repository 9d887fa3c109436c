import subprocess
import sys

import numpy as np
import pytest

from trainlab.errors import ConfigError
from trainlab.store import Store

WRITER = """
import sys
from trainlab.store import Store
store = Store(sys.argv[1])
run_id = store.create_run(sys.argv[2], {"writer": sys.argv[2]}, seed=0)
for batch in range(40):
    store.log_metrics(run_id, [(batch * 50 + i, "loss", float(i)) for i in range(50)])
store.finish_run(run_id, "completed", final={"rows": 2000})
print(run_id)
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    db = tmp_path / "shared.db"
    Store(db)  # create the schema once so both writers race on rows, not on DDL
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), f"w{i}"], stdout=subprocess.PIPE, text=True) for i in range(2)]
    ids = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    store = Store(db)
    for run_id in ids:
        steps, values = store.metrics(run_id)["loss"]
        assert len(steps) == 2000 and list(steps) == list(range(2000))
        assert store.get_run(run_id).status == "completed"


def test_metrics_round_trip_and_truncate(store):
    run_id = store.create_run("r", {"a": 1}, seed=3, group="g")
    store.log_metrics(run_id, [(0, "loss", 2.0), (1, "loss", float("nan")), (2, "loss", 1.0), (2, "acc", 0.5)])
    steps, values = store.metrics(run_id)["loss"]
    assert list(steps) == [0, 1, 2] and np.isnan(values[1]) and values[2] == 1.0
    store.truncate_metrics(run_id, after_step=1)
    assert list(store.metrics(run_id)["loss"][0]) == [0, 1] and "acc" not in store.metrics(run_id)
    assert store.list_runs(group="g")[0].id == run_id and store.list_runs(group="other") == []
    assert store.get_run(run_id[:6]).id == run_id  # a unique prefix is enough


def test_bad_store_url_and_missing_run(store):
    with pytest.raises(ConfigError, match="cannot open run store"):
        Store("nosuchdialect://x")
    with pytest.raises(ConfigError, match="no run 'zzz'"):
        store.get_run("zzz")
    with pytest.raises(ValueError, match="status must be one of"):
        store.set_status(store.create_run("r", {}), "exploded")
