"""The embedded broker (`smshub.broker`) under load from several OS processes, on real files.

Publishers and consumers run at once in their own processes: every message is consumed exactly
once, no process fails, no file is left behind. A consumer killed while holding messages loses
none of them. Routing tables written by many processes at once keep every binding. Celery's own
worker, fed by several publishing processes, runs every task once.

kombu's own filesystem transport fails these (a consumer reads a message half-written, the
worker dies, the message is gone: kombu #1551). To see it, run them against it:
`SMSHUB_TEST_BROKER_SCHEME=filesystem pytest tests/production/test_broker.py`.
"""

import contextlib
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery
from kombu import Connection, Exchange, Queue

import smshub.broker  # noqa: F401  registers smshubfs://

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEME = os.environ.get("SMSHUB_TEST_BROKER_SCHEME", "smshubfs")
EXCHANGE = Exchange("stress", type="direct")
QUEUE = Queue("stress", EXCHANGE, routing_key="stress")
SPAWN = multiprocessing.get_context("spawn")  # no fork of a process running test threads


def options(folder: str | Path) -> dict:
    folder = Path(folder)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "processed_folder": str(folder / "processed"),
        "unreadable_folder": str(folder / "unreadable"),
        "polling_interval": 0.01,
        "recovery_interval": 0.5,
    }


def connection(folder: str | Path) -> Connection:
    return Connection(f"{SCHEME}://", transport_options=options(folder))


def wait_for_go(folder: str) -> None:
    """Processes start at once: each waits for the go file once it has imported everything."""
    while not os.path.exists(os.path.join(folder, "go")):
        time.sleep(0.005)


# --- what the processes run (module-level: spawned processes import them) --------------------


def publish(folder: str, index: int, count: int, pause_every: int = 0) -> None:
    """Publish `count` messages; with `pause_every`, pause 10 ms after that many, so that the
    consumers keep up and take each message as soon as it appears (where a half-written one
    would be caught)."""
    wait_for_go(folder)
    with connection(folder) as conn:
        producer = conn.Producer(serializer="json")
        for i in range(count):
            producer.publish(
                {"id": f"{index}-{i}"}, exchange=EXCHANGE, routing_key="stress", declare=[QUEUE]
            )
            if pause_every and i % pause_every == 0:
                time.sleep(0.01)


def consume(
    folder: str, index: int, prefetch: int | None = None, ack: bool = True, fork: bool = False
) -> None:
    """Write the id of each message received to a file of its own; stop at the stop file.

    With `fork`, once it holds `prefetch` messages it forks a child that outlives it, as a
    Celery worker forks a new pool process (its pid in the file `child`)."""
    wait_for_go(folder)
    stop = os.path.join(folder, "stop")
    received = 0
    with (
        connection(folder) as conn,
        open(os.path.join(folder, f"received-{index}"), "a", buffering=1) as out,
    ):

        def on_message(body, message):
            nonlocal received
            received += 1
            if fork and received == prefetch:
                if (child := os.fork()) == 0:
                    time.sleep(120)
                    os._exit(0)
                Path(folder, "child").write_text(str(child))
            out.write(f"{body['id']}\n")
            if ack:
                message.ack()

        with conn.Consumer(QUEUE, callbacks=[on_message], accept=["json"], prefetch_count=prefetch):
            while not os.path.exists(stop):
                with contextlib.suppress(TimeoutError):
                    conn.drain_events(timeout=0.2)


def bind(folder: str, index: int, exchanges: int) -> None:
    """Bind a queue of this process to each of `exchanges` fanout exchanges."""
    wait_for_go(folder)
    with connection(folder) as conn:
        channel = conn.default_channel
        for e in range(exchanges):
            fanout = Exchange(f"fan{e}", type="fanout")
            Queue(f"p{index}-fan{e}", fanout)(channel).declare()


# --- the parent's side -----------------------------------------------------------------------


def start(target: Callable, *args, **kwargs) -> multiprocessing.Process:
    process = SPAWN.Process(target=target, args=args, kwargs=kwargs, daemon=True)
    process.start()
    return process


def received(folder: Path) -> list[str]:
    return [line for f in folder.glob("received-*") for line in f.read_text().splitlines()]


def drain(folder: Path, expected: int, timeout: float) -> list[str]:
    """The ids received, once `expected` arrived (or nothing more arrives for 10 s)."""
    deadline = time.monotonic() + timeout
    count, changed = -1, time.monotonic()
    while time.monotonic() < deadline:
        ids = received(folder)
        if len(ids) >= expected:
            break
        if len(ids) != count:
            count, changed = len(ids), time.monotonic()
        elif time.monotonic() - changed > 10:
            break
        time.sleep(0.1)
    return received(folder)


def stop(folder: Path, processes: list[multiprocessing.Process]) -> list[int | None]:
    (folder / "stop").touch()
    for process in processes:
        process.join(timeout=15)
        if process.is_alive():
            process.kill()
            process.join()
    return [process.exitcode for process in processes]


def leftovers(folder: Path) -> list[str]:
    """Files still in the queue folder, and any set aside as unreadable."""
    return sorted(
        [p.name for p in (folder / "queue").iterdir() if p.is_file()]
        + [f"unreadable/{p.name}" for p in (folder / "unreadable").glob("*")]
    )


def report(name: str, expected: set[str], ids: list[str], exitcodes, rest, seconds) -> dict:
    counts = Counter(ids)
    figures = {
        "published": len(expected),
        "received": len(ids),
        "lost": len(expected - counts.keys()),
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
        "unknown": len(counts.keys() - expected),
        "failed processes": sum(1 for code in exitcodes if code != 0),
        "files left": len(rest),
        "seconds": round(seconds, 1),
    }
    print(f"{name} over {SCHEME}://: {figures}")
    return figures


@pytest.fixture
def folder(tmp_path):
    for sub in ("queue", "control", "processed", "unreadable"):
        (tmp_path / sub).mkdir()
    return tmp_path


def test_publishers_and_consumers_at_once_lose_and_duplicate_nothing(folder):
    publishers, consumers, per_publisher = 4, 4, 2000
    started = time.monotonic()
    processes = [start(publish, str(folder), p, per_publisher, 10) for p in range(publishers)]
    processes += [start(consume, str(folder), c) for c in range(consumers)]
    (folder / "go").touch()
    expected = {f"{p}-{i}" for p in range(publishers) for i in range(per_publisher)}

    ids = drain(folder, len(expected), timeout=60)
    exitcodes = stop(folder, processes)
    rest = leftovers(folder)

    figures = report("stress", expected, ids, exitcodes, rest, time.monotonic() - started)
    assert figures["lost"] == 0
    assert figures["duplicated"] == 0
    assert figures["unknown"] == 0
    assert exitcodes == [0] * len(processes)
    assert rest == []


@pytest.mark.parametrize("fork", [False, True], ids=["alone", "with-a-forked-child-alive"])
def test_messages_held_by_a_killed_consumer_go_to_the_others(folder, fork):
    """A consumer takes 100 messages without acknowledging them and is killed (SIGKILL): the
    other consumers get those 100 too, with the rest, even while a child it forked lives on."""
    publishers, per_publisher, held = 2, 400, 100
    started = time.monotonic()
    hoarder = start(consume, str(folder), "hoarder", prefetch=held, ack=False, fork=fork)
    producers = [start(publish, str(folder), p, per_publisher) for p in range(publishers)]
    (folder / "go").touch()
    hoarded = folder / "received-hoarder"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        not hoarded.exists() or len(hoarded.read_text().splitlines()) < held
    ):
        time.sleep(0.05)
    os.kill(hoarder.pid, signal.SIGKILL)
    hoarder.join()
    taken = set(hoarded.read_text().splitlines())
    assert len(taken) == held
    hoarded.unlink()
    consumers = [start(consume, str(folder), c) for c in range(2)]
    expected = {f"{p}-{i}" for p in range(publishers) for i in range(per_publisher)}

    try:
        ids = drain(folder, len(expected), timeout=60)
    finally:
        if fork:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int((folder / "child").read_text()), signal.SIGKILL)
    exitcodes = stop(folder, producers + consumers)
    rest = leftovers(folder)

    figures = report("killed consumer", expected, ids, exitcodes, rest, time.monotonic() - started)
    assert taken <= set(ids), f"{len(taken - set(ids))} messages of the killed consumer lost"
    assert figures["lost"] == 0
    assert figures["duplicated"] == 0
    assert exitcodes == [0] * len(exitcodes)
    assert rest == []


def test_routing_tables_written_by_many_processes_at_once_keep_every_binding(folder):
    binders, exchanges = 8, 30
    processes = [start(bind, str(folder), b, exchanges) for b in range(binders)]
    (folder / "go").touch()
    exitcodes = stop(folder, processes)

    with connection(folder) as conn:
        channel = conn.default_channel
        missing = {}
        for e in range(exchanges):
            queues = {entry.queue for entry in channel.get_table(f"fan{e}")}
            wanted = {f"p{b}-fan{e}" for b in range(binders)}
            if queues != wanted:
                missing[f"fan{e}"] = sorted(wanted - queues)
        # A broadcast reaches every queue bound to the exchange.
        conn.Producer(serializer="json").publish({"hello": 1}, exchange=Exchange("fan0", "fanout"))
        reached = sum(channel._size(f"p{b}-fan0") for b in range(binders))
    print(f"routing tables over {SCHEME}://: exit codes {exitcodes}, missing {missing}")
    assert exitcodes == [0] * binders
    assert missing == {}
    assert reached == binders


def test_an_unreadable_message_file_is_set_aside_loudly_and_the_consumer_goes_on(folder, caplog):
    queue = folder / "queue"
    (queue / "1_empty.stress.msg").write_bytes(b"")
    (queue / "2_garbage.stress.msg").write_bytes(b"\xff{not json")
    with connection(folder) as conn:
        conn.Producer(serializer="json").publish(
            {"id": "good"}, exchange=EXCHANGE, routing_key="stress", declare=[QUEUE]
        )
        with caplog.at_level(logging.ERROR, logger="smshub.broker"):
            message = QUEUE(conn.default_channel).get(accept=["json"])
            assert message is not None and message.payload == {"id": "good"}
            message.ack()
            assert QUEUE(conn.default_channel).get(accept=["json"]) is None
    assert sorted(p.name for p in (folder / "unreadable").iterdir()) == [
        "1_empty.stress.msg",
        "2_garbage.stress.msg",
    ]
    assert (folder / "unreadable" / "2_garbage.stress.msg").read_bytes() == b"\xff{not json"
    assert [p.name for p in queue.iterdir()] == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all("cannot be read" in e for e in errors), errors


def test_a_broker_folder_that_cannot_be_listed_is_a_connection_error(folder):
    """Celery reconnects after a connection error (and dies of any other error)."""
    with connection(folder) as conn:
        QUEUE(conn.default_channel).declare()
        (folder / "queue").rmdir()
        (folder / "queue").write_text("not a folder")
        with pytest.raises(conn.connection_errors, match="cannot list the broker folder"):
            QUEUE(conn.default_channel).get()


# --- through Celery: a real worker, tasks published by several processes --------------------

celery_app = Celery("broker-test", set_as_current=False)


def configure_celery(folder: str) -> None:
    celery_app.conf.update(
        broker_url=f"{SCHEME}://",
        broker_transport_options=options(folder),
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=4,
        worker_hijack_root_logger=False,
    )


if os.environ.get("SMSHUB_BROKER_TEST_DIR"):  # the worker processes this test starts
    configure_celery(os.environ["SMSHUB_BROKER_TEST_DIR"])


@celery_app.task(name="broker_test.record")
def record(task_id: str) -> None:
    fd = os.open(os.environ["SMSHUB_BROKER_TEST_RESULTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{task_id}\n".encode())  # one write with O_APPEND: lines never mix
    finally:
        os.close(fd)


def send_tasks(folder: str, index: int, count: int) -> None:
    configure_celery(folder)
    wait_for_go(folder)
    for i in range(count):
        record.delay(f"{index}-{i}")


def test_tasks_published_by_several_processes_run_once_on_celery_workers(folder, monkeypatch):
    publishers, per_publisher, workers = 3, 200, 2
    results = folder / "received-tasks"
    # Celery prefers CELERY_BROKER_URL from the environment to the app's own setting: the suite
    # may run with another broker (CI's Redis leg), whose workers must not take these tasks.
    monkeypatch.setenv("CELERY_BROKER_URL", f"{SCHEME}://")
    env = {
        **os.environ,
        "SMSHUB_BROKER_TEST_DIR": str(folder),
        "SMSHUB_BROKER_TEST_RESULTS": str(results),
    }
    logs = [folder / f"worker-{w}.log" for w in range(workers)]
    worker_processes = []
    for w, log in enumerate(logs):
        with open(log, "w") as out:
            worker_processes.append(
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "celery", "-A"),
                        "tests.production.test_broker:celery_app",
                        *("worker", "--pool=prefork", "--concurrency=2", "--loglevel=INFO"),
                        *(f"--hostname=broker-test-{w}@%h", "--without-heartbeat"),
                        *("--without-gossip", "--without-mingle"),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        deadline = time.monotonic() + 60
        while not all("ready." in log.read_text() for log in logs):
            dead = [p for p in worker_processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                pytest.fail("a worker did not start:\n" + "\n".join(p.read_text() for p in logs))
            time.sleep(0.2)
        started = time.monotonic()
        senders = [start(send_tasks, str(folder), p, per_publisher) for p in range(publishers)]
        (folder / "go").touch()
        expected = {f"{p}-{i}" for p in range(publishers) for i in range(per_publisher)}
        ids = drain(folder, len(expected), timeout=60)
        seconds = time.monotonic() - started
        exitcodes = stop(folder, senders)
    finally:
        for process in worker_processes:
            process.terminate()  # a warm shutdown: the worker stops its pool itself
        for process in worker_processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # anything of it left behind
    worker_logs = "\n".join(log.read_text() for log in logs)
    rest = leftovers(folder)

    figures = report("celery", expected, ids, exitcodes, rest, seconds)
    assert figures["lost"] == 0
    assert figures["duplicated"] == 0
    assert exitcodes == [0] * publishers
    assert [p.returncode for p in worker_processes] == [0] * workers, worker_logs[-3000:]
    assert "Unrecoverable error" not in worker_logs
    assert rest == []
