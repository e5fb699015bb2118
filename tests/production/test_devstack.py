"""`make run`'s supervisor (`python -m smshub.devstack`), run for real on a small Procfile.

A process that dies is announced loudly (which one, and how) and started again, the others
untouched; one that keeps crashing is given up on while the others run on; Ctrl-C stops them
all, their children included.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PY = sys.executable
STEADY = (
    f"""steady: {PY} -c "import os, time; print('steady up', os.getpid()); time.sleep(600)"\n"""
)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its parent to collect it does not)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Stack:
    """The supervisor in its own process, its output in a file."""

    def __init__(self, tmp_path: Path, procfile: str, *options: str) -> None:
        (tmp_path / "Procfile").write_text(procfile)
        self.log = tmp_path / "devstack.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [PY, "-m", "smshub.devstack", str(tmp_path / "Procfile"), *options],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 20) -> list[re.Match]:
        deadline = time.monotonic() + timeout
        while True:
            found = list(re.finditer(pattern, self.output, re.MULTILINE))
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} ({count}) never came:\n{self.output}")
            time.sleep(0.05)

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def stacks():
    started: list[Stack] = []
    yield started
    for stack in started:
        if stack.process.poll() is None:
            stack.kill()


def test_a_killed_process_is_restarted_loudly_and_ctrl_c_leaves_nothing_behind(tmp_path, stacks):
    procfile = STEADY + (
        # exec'd by the shell; it has a child of its own
        f"victim: {PY} -c \"import os, subprocess; c = subprocess.Popen(['sleep', '600']); "
        f"print('victim up', os.getpid(), 'child', c.pid, flush=True); c.wait()\"\n"
        # a shell line: the shell stays, with its child
        'family: sleep 600 & echo "family child $!"; wait\n'
    )
    stack = Stack(tmp_path, procfile, "--restart-delay", "0.2", "--grace", "10")
    stacks.append(stack)
    (steady,) = stack.wait_for(r"steady +\| steady up (\d+)")
    (victim,) = stack.wait_for(r"victim +\| victim up (\d+) child (\d+)")
    (family,) = stack.wait_for(r"family started \(pid (\d+)\)")
    (family_child,) = stack.wait_for(r"family +\| family child (\d+)")
    victim_pid, victim_child = int(victim[1]), int(victim[2])

    os.kill(victim_pid, signal.SIGKILL)

    (died,) = stack.wait_for(r"^.*victim DIED.*$")
    assert "!!!" in died[0]
    assert f"it was killed by signal SIGKILL (pid {victim_pid}" in died[0]
    assert "Restarting it in 0.2 s (restart 1)" in died[0]
    stack.wait_for(r"victim started \(pid \d+, restart 1\)")
    again = stack.wait_for(r"victim +\| victim up (\d+) child (\d+)", count=2)[1]
    assert int(again[1]) != victim_pid
    assert not alive(victim_child), "the dead process's child was left running"
    assert alive(int(steady[1]))
    assert "steady DIED" not in stack.output and "family DIED" not in stack.output

    assert stack.stop(signal.SIGINT) == 128 + signal.SIGINT
    output = stack.output
    assert "SIGINT received: stopping steady, victim, family" in output
    for name in ("steady", "victim", "family"):
        assert f"{name} stopped" in output
    pids = [int(steady[1]), int(again[1]), int(again[2]), int(family[1]), int(family_child[1])]
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in pids if alive(pid)] == [], output


def test_a_process_that_keeps_crashing_is_given_up_on_while_the_others_run(tmp_path, stacks):
    procfile = STEADY + f"""crasher: {PY} -c "import sys; print('no config'); sys.exit(3)"\n"""
    stack = Stack(tmp_path, procfile, "--restart-delay", "0.05", "--grace", "10")
    stacks.append(stack)
    (steady,) = stack.wait_for(r"steady +\| steady up (\d+)")

    (gave_up,) = stack.wait_for(r"^.*GAVE UP on crasher.*$")

    assert "died 5 times in a row" in gave_up[0]
    assert "it exited with code 3" in gave_up[0]
    assert "The others keep running without it" in gave_up[0]
    assert len(re.findall(r"crasher +\| no config", stack.output)) == 5
    time.sleep(0.5)
    assert len(re.findall(r"crasher started", stack.output)) == 5  # no more restarts
    assert alive(int(steady[1]))
    assert "steady DIED" not in stack.output

    assert stack.stop(signal.SIGTERM) == 128 + signal.SIGTERM
    assert "SIGTERM received: stopping steady" in stack.output
    assert not alive(int(steady[1]))


def test_a_broken_procfile_is_refused_with_the_reason(tmp_path):
    (tmp_path / "Procfile").write_text("web: python -m http.server\nthis is not a process\n")
    result = subprocess.run(
        [PY, "-m", "smshub.devstack", str(tmp_path / "Procfile")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "line 2: expected `name: command`" in result.stderr
