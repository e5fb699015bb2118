"""The Celery app of `bench/dispatch.py`'s workers: the project's own, counting SQL queries.

    celery -A bench.worker worker ...

Each pool process counts the queries it runs and, after every task, writes its running total to
`$BENCH_QUERY_DIR/<pid>`; the benchmark adds the files up.
"""

import os
from pathlib import Path

from celery.signals import task_postrun, worker_process_init

from smshub.celery import app

__all__ = ["app"]

# A queue of its own: a worker of a test run or of `make run` on the same broker never takes
# the benchmark's tasks, nor the benchmark theirs.
app.conf.task_default_queue = "bench-dispatch"

_queries = 0


def _count(execute, sql, params, many, context):
    global _queries
    _queries += 1
    return execute(sql, params, many, context)


@worker_process_init.connect
def _install(**kwargs) -> None:
    from django.db import connection

    connection.execute_wrappers.append(_count)


@task_postrun.connect
def _report(**kwargs) -> None:
    folder = os.environ.get("BENCH_QUERY_DIR")
    if folder:
        (Path(folder) / str(os.getpid())).write_text(str(_queries))
