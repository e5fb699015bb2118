"""The benchmarks' processes: their CPU time, read from /proc (Linux), for the CPU-per-message
figures, and the web server's processes as production starts them."""

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def production_server() -> dict:
    """Workers and threads per worker as smshub/web.py starts them here (`WEB_CONCURRENCY`,
    one per CPU plus one by default; `WEB_THREADS`, 4 by default, granian's blocking threads)."""
    from smshub.web import options

    config = options()
    return {"workers": config["workers"], "threads": config["blocking_threads"]}


def processes() -> dict[int, tuple[int, str, float]]:
    """Every process: its parent, name and CPU seconds (user + system, with those of its
    children that exited and were reaped: the web server replaces its workers now and then, on
    `WEB_MAX_RSS` or SIGHUP)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        found[int(entry.name)] = (int(fields[1]), name, ticks / CLOCK_TICKS)
    return found


def tree_cpu(roots: list[int], table: dict[int, tuple[int, str, float]] | None = None) -> float:
    """CPU seconds of these processes and all their descendants."""
    table = processes() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid not in seen and pid in table:
            seen.add(pid)
            total += table[pid][2]
            todo += children.get(pid, [])
    return total
