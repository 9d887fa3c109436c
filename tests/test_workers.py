"""Worker pools (``compare``/``tune`` with ``--jobs``): Ctrl-C reaches every process of the
terminal's group; it interrupts a worker's running task and leaves an idle worker alone."""

from __future__ import annotations

import os
import signal
import time

from trainlab._workers import process_pool


def _pid(hold: float = 0.0) -> int:
    time.sleep(hold)
    return os.getpid()


def _wait_for_ctrl_c(seconds: float) -> str:
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        return "interrupted"
    return "slept"


def test_ctrl_c_interrupts_the_running_task_and_not_an_idle_worker(capfd):
    with process_pool(2) as pool:
        # two tasks at once start both workers (a pool starts a worker only when none is idle)
        pids = {f.result(timeout=60) for f in [pool.submit(_pid, 2.0), pool.submit(_pid, 2.0)]}
        assert len(pids) == 2
        busy = pool.submit(_wait_for_ctrl_c, 30.0)
        time.sleep(1.0)  # the task is running in one worker, the other waits for work
        for pid in pids:  # what a terminal's Ctrl-C does: SIGINT to every process of the group
            os.kill(pid, signal.SIGINT)
        assert busy.result(timeout=20) == "interrupted"
        assert {pool.submit(_pid).result(timeout=20) for _ in range(8)} <= pids  # no worker died
    assert "Traceback" not in capfd.readouterr().err  # the idle worker printed nothing
