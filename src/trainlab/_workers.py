"""Worker processes that never outlive the process that started them.

``compare --jobs N`` and ``tune --jobs N`` run their runs in a pool of spawn-started
processes, each holding torch and a data set (hundreds of MB). If the driver is killed
(``kill -9``, an out-of-memory kill, a closed terminal) nothing tells the idle workers, and
they would wait on their task queue forever. Each worker therefore watches its parent: a
daemon thread checks every half second that ``os.getppid()`` is still the driver's pid (a
dead parent's children are adopted by another process) and ends the worker when it is not.
Its run stays ``running`` with a dead owner; the next ``compare`` or ``trainlab runs --reap``
marks it interrupted, and its checkpoint (written atomically) resumes it.

Ctrl-C in a terminal reaches every process of the group: a worker in the middle of a task gets
the ``KeyboardInterrupt`` (a run saves its checkpoint and ends ``interrupted``); an idle one
ignores it and exits when the driver shuts the pool down (no traceback of a queue read).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PARENT_CHECK_SECONDS = 0.5


_busy = False  # in a worker: whether it is running a task now


class _Pool(ProcessPoolExecutor):
    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_run_task, fn, *args, **kwargs)


def _run_task(fn, *args, **kwargs):
    global _busy
    _busy = True
    try:
        return fn(*args, **kwargs)
    finally:
        _busy = False


def _on_interrupt(signum, frame) -> None:
    if _busy:
        raise KeyboardInterrupt
    # idle: nothing to stop; the driver ends this worker when it shuts the pool down


def process_pool(jobs: int) -> ProcessPoolExecutor:
    """A pool of ``jobs`` spawn-started workers that exit when this process dies.

    spawn, not fork: forking a process that holds torch threads and database connections
    can deadlock the child.
    """
    return _Pool(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    )


def exit_with_parent(parent_pid: int) -> None:
    """Start a daemon thread that ends this process as soon as ``parent_pid`` is no longer its
    parent, and let Ctrl-C interrupt only the task it is running (if any)."""
    signal.signal(signal.SIGINT, _on_interrupt)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)  # no cleanup to wait for: every file write is atomic, every store write a transaction

    threading.Thread(target=watch, name="trainlab-parent-watch", daemon=True).start()
