"""`make run`'s supervisor: runs the processes of a Procfile and keeps them running.

Each line a process prints comes out as honcho prints it (time, name, `|`). Unlike honcho, one
process ending does not end the others: the supervisor says loudly which one died and how (exit
code or signal), stops what is left of it (its process group), and starts it again after a
pause that doubles while it keeps dying soon after starting (1 s, 2 s, 4 s, 8 s). After
`MAX_QUICK_CRASHES` such deaths in a row it gives up on that process, loudly, and says so again
every minute, while the others keep running: a crashing simulator need not take the web UI
down, and the message says what to do. Ctrl-C, SIGTERM or SIGHUP stops them all: SIGTERM to
each (Celery finishes its running tasks), then SIGKILL to whatever is left after `--grace`
seconds, or at once on a second Ctrl-C. Each process runs in its own process group, which is
emptied when it ends: nothing is left behind.

    python -m smshub.devstack [PROCFILE] [--grace SECONDS] [--restart-delay SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

# A process that dies within this many seconds of starting counts as crashing on start.
STABLE_AFTER = 10.0
MAX_QUICK_CRASHES = 5
MAX_RESTART_DELAY = 30.0
REMINDER_EVERY = 60.0
# Seconds the rest of a dead process's group gets between SIGTERM and SIGKILL.
LEFTOVER_GRACE = 3.0

PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
COLOURS = ["36", "33", "32", "35", "34", "96", "93", "92"]


@dataclass
class Child:
    name: str
    command: str
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_crashes: int = 0
    start_at: float | None = 0.0  # monotonic time of the next start; None: not to be started
    gave_up: str = ""
    colour: str = ""
    reader: threading.Thread | None = None

    @property
    def execs(self) -> bool:
        """Whether the shell replaces itself with the command (which then gets our signals):
        a plain command, without shell operators outside quotes or a leading assignment."""
        lexer = shlex.shlex(self.command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            words = list(lexer)
        except ValueError:  # unbalanced quotes: the shell will say
            return False
        operators = [w for w in words if w and set(w) <= set(lexer.punctuation_chars)]
        return bool(words) and "=" not in words[0] and not operators


def parse_procfile(text: str) -> list[Child]:
    children: dict[str, Child] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PROCFILE_LINE.match(line)
        if match is None:
            raise ValueError(f"line {number}: expected `name: command`, not {line!r}")
        name, command = match.groups()
        if name in children:
            raise ValueError(f"line {number}: a second process named {name!r}")
        children[name] = Child(name, command.strip())
    if not children:
        raise ValueError("no process in it")
    return list(children.values())


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(code: int) -> str:
    if code < 0:
        return f"it was killed by signal {signal_name(-code)}"
    if 128 < code < 128 + signal.NSIG:  # a shell reports a command killed by signal N so
        return f"it exited with code {code} (128 + {signal_name(code - 128)}: killed)"
    return f"it exited with code {code}"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds} s"


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class Supervisor:
    def __init__(
        self,
        children: list[Child],
        out: TextIO = sys.stdout,
        grace: float = 15.0,
        restart_delay: float = 1.0,
    ) -> None:
        self.children = children
        self.out = out
        self.grace = grace
        self.restart_delay = restart_delay
        self.width = max(len("system"), *(len(c.name) for c in children))
        self.colour = out.isatty() and not os.environ.get("NO_COLOR")
        for i, child in enumerate(children):
            child.colour = COLOURS[i % len(COLOURS)]
        self.lock = threading.Lock()
        self.signals: list[int] = []
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    # --- output ------------------------------------------------------------------------------

    def say(self, name: str, text: str, colour: str = "", loud: bool = False) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        prefix = f"{stamp} {name:<{self.width}} |"
        if self.colour:
            prefix = f"\033[{colour or '0'}m{prefix}\033[0m"
            if loud:
                text = f"\033[1;31m{text}\033[0m"
        with self.lock:
            for line in text.splitlines() or [""]:
                self.out.write(f"{prefix} {line}\n")
            self.out.flush()

    def shout(self, text: str) -> None:
        self.say("system", text, loud=True)

    def relay(self, child: Child, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.say(child.name, raw.decode("utf-8", "replace").rstrip("\r\n"), child.colour)
        stream.close()

    # --- running -----------------------------------------------------------------------------

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda signum, frame: self.signals.append(signum))
        next_reminder = time.monotonic() + REMINDER_EVERY
        while not self.signals:
            now = time.monotonic()
            for child in self.children:
                if child.process is not None and child.process.poll() is not None:
                    self.on_death(child)
                elif child.process is None and child.start_at is not None and now >= child.start_at:
                    self.start(child)
            given_up = [c for c in self.children if c.gave_up]
            if len(given_up) == len(self.children):
                self.shout("!!! Every process was given up on: stopping.")
                return 1
            if given_up and now >= next_reminder:
                for child in given_up:
                    self.shout(f"!!! {child.name} is NOT running: {child.gave_up}")
                next_reminder = now + REMINDER_EVERY
            time.sleep(0.1)
        signum = self.signals[0]
        self.stop_all(signal.Signals(signum).name)
        return 128 + signum

    def start(self, child: Child) -> None:
        command = f"exec {child.command}" if child.execs else child.command
        try:
            process = subprocess.Popen(  # noqa: S603 (the commands are the project's Procfile)
                ["/bin/sh", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, out of the terminal's Ctrl-C
                env=self.env,
            )
        except OSError as exc:
            self.shout(f"!!! {child.name} could not be started: {exc}")
            child.start_at, child.gave_up = None, f"it could not be started: {exc}"
            return
        child.process, child.started_at, child.start_at = process, time.monotonic(), None
        child.reader = threading.Thread(
            target=self.relay, args=(child, process.stdout), daemon=True
        )
        child.reader.start()
        again = f", restart {child.restarts}" if child.restarts else ""
        self.say("system", f"{child.name} started (pid {process.pid}{again})")

    def on_death(self, child: Child) -> None:
        process = child.process
        assert process is not None
        how = describe_exit(process.returncode)
        uptime = time.monotonic() - child.started_at
        self.clear_group(process.pid)
        child.process = None
        if uptime >= STABLE_AFTER:
            child.quick_crashes = 0
        child.quick_crashes += 1
        died = f"!!! {child.name} DIED: {how} (pid {process.pid}, after {duration(uptime)})."
        if child.quick_crashes >= MAX_QUICK_CRASHES:
            child.start_at = None
            child.gave_up = (
                f"gave up at {datetime.now():%H:%M:%S} after it died {child.quick_crashes} times "
                f"in a row within {STABLE_AFTER:g} s of starting (last time {how}). The others "
                f"keep running without it. See its output above, fix the cause, then stop "
                f"(Ctrl-C) and start again."
            )
            self.shout(f"{died}\n!!! GAVE UP on {child.name}: {child.gave_up}")
            return
        delay = min(self.restart_delay * 2 ** (child.quick_crashes - 1), MAX_RESTART_DELAY)
        child.restarts += 1
        child.start_at = time.monotonic() + delay
        self.shout(f"{died} Restarting it in {delay:g} s (restart {child.restarts}).")

    def clear_group(self, pgid: int, grace: float = LEFTOVER_GRACE) -> None:
        """End what is left in a process group (children of a process that died, say)."""
        if not group_alive(pgid):
            return
        signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while group_alive(pgid) and time.monotonic() < deadline and len(self.signals) < 2:
            time.sleep(0.05)
        signal_group(pgid, signal.SIGKILL)

    def stop_all(self, reason: str) -> None:
        running = [c for c in self.children if c.process is not None]
        names = ", ".join(c.name for c in running) or "nothing"
        self.say(
            "system",
            f"{reason} received: stopping {names} (up to {self.grace:g} s; Ctrl-C again to kill "
            f"them at once)",
        )
        for child in running:
            assert child.process is not None
            if child.execs:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
            else:
                signal_group(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while any(c.process.poll() is None for c in running if c.process):
            if time.monotonic() >= deadline or len(self.signals) > 1:
                break
            time.sleep(0.1)
        for child in running:
            assert child.process is not None
            if child.process.poll() is None:
                self.say("system", f"{child.name} did not stop: killing it (SIGKILL)")
                signal_group(child.process.pid, signal.SIGKILL)
                child.process.wait()
            self.clear_group(child.process.pid, grace=1.0)
            self.say("system", f"{child.name} stopped ({describe_exit(child.process.returncode)})")
        for child in running:
            if child.reader is not None:
                child.reader.join(timeout=1)  # the last lines it printed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smshub.devstack",
        description="Run the processes of a Procfile; restart any that dies (see the module).",
    )
    parser.add_argument("procfile", nargs="?", default="Procfile.dev")
    parser.add_argument(
        "--grace", type=float, default=15.0, help="seconds to stop before SIGKILL (%(default)s)"
    )
    parser.add_argument(
        "--restart-delay",
        type=float,
        default=1.0,
        help="first pause before a restart, doubled on each quick crash (%(default)s s)",
    )
    args = parser.parse_args(argv)
    try:
        children = parse_procfile(Path(args.procfile).read_text())
    except (OSError, ValueError) as exc:
        parser.error(f"{args.procfile}: {exc}")
    supervisor = Supervisor(children, grace=args.grace, restart_delay=args.restart_delay)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
