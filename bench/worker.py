"""The Celery app of `bench/dispatch.py`'s workers: the project's own, counting SQL queries.

    celery -A bench.worker worker ...

Each pool process counts the queries it runs and writes its running total to
`$BENCH_QUERY_DIR/<pid>` after every task and, while one runs, at most every `WRITE_EVERY`
seconds (a dispatch task lingers after its last message, so its end comes late); the benchmark
adds the files up.
"""

import os
import time
from pathlib import Path

from celery.signals import task_postrun, worker_process_init

from smshub.celery import app

__all__ = ["app"]

# A queue of its own: a worker of a test run or of `make run` on the same broker never takes
# the benchmark's tasks, nor the benchmark theirs.
app.conf.task_default_queue = "bench-dispatch"

WRITE_EVERY = 0.1
_queries = 0
_written = 0.0


def _count(execute, sql, params, many, context):
    global _queries
    _queries += 1
    if time.monotonic() - _written > WRITE_EVERY:
        _report()
    return execute(sql, params, many, context)


@worker_process_init.connect
def _install(**kwargs) -> None:
    from django.db import connection

    connection.execute_wrappers.append(_count)


@task_postrun.connect
def _report(**kwargs) -> None:
    global _written
    _written = time.monotonic()
    folder = os.environ.get("BENCH_QUERY_DIR")
    if folder:
        (Path(folder) / str(os.getpid())).write_text(str(_queries))
