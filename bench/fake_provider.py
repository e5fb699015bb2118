"""A fast fake SMS provider for `bench/peer.py`: plain asyncio, HTTP/1.1 keep-alive, several
processes on one port (SO_REUSEPORT), answering every send `latency_ms` later and logging when
each one arrived.

It speaks two protocols on the same port:

- Kannel's HTTP SMSC send-url: `GET /send?to=…&text=…&from=…` → 200 `{"id": "…", …}`;
- the hub's `simulator` provider (providers/simulator/adapter.py): `POST /simulator/messages`
  with `Authorization: Bearer <api key>` and a JSON body → 201 `{"id": "…", "status":
  "accepted"}` (401 with another key); `GET /simulator/health` → 200.

The arrival log lives in shared memory (`ArrivalLog`): each process writes the monotonic time of
every send it receives into its own slice, so the benchmark reads first and last arrivals without
a round trip, and the latency can be changed between cases without a restart.

`measure_capacity` is the bare client that checks the fake is never what limits a benchmark.
"""

import asyncio
import json
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.sharedctypes import RawArray, RawValue
from urllib.parse import urlsplit

# What the fake logs, by path: Kannel's sends and the hub's.
KANNEL, HUB = 0, 1
KINDS = 2
BODY = b'{"id": "%s", "status": "accepted"}'
RESPONSE = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
CAPACITY_PATH = b"/send?to=%2B33612345678&text=capacity&from=bench"


class ArrivalLog:
    """Arrival times (time.monotonic(), the same clock in every process on Linux) of the sends
    each fake process received, in shared memory: process `p` writes only its own slice and
    counters, so no lock is needed. `capacity` times are kept per process; more are counted."""

    def __init__(self, processes: int, capacity: int) -> None:
        self.processes, self.capacity = processes, capacity
        self.times = RawArray("d", processes * capacity)
        self.counts = RawArray("q", processes)
        self.kinds = RawArray("q", processes * KINDS)
        self.latency_ms = RawValue("i", 0)

    def record(self, process: int, kind: int, moment: float) -> None:
        count = self.counts[process]
        if count < self.capacity:
            self.times[process * self.capacity + count] = moment
        self.counts[process] = count + 1
        self.kinds[process * KINDS + kind] += 1

    def reset(self) -> None:
        """Forget every arrival; only while nothing is being sent."""
        for p in range(self.processes):
            self.counts[p] = 0
            for kind in range(KINDS):
                self.kinds[p * KINDS + kind] = 0

    def total(self, kind: int | None = None) -> int:
        if kind is None:
            return sum(self.counts)
        return sum(self.kinds[p * KINDS + kind] for p in range(self.processes))

    def span(self) -> tuple[float, float]:
        """The first and last arrival logged since the last reset."""
        firsts, lasts = [], []
        for p in range(self.processes):
            kept = min(self.counts[p], self.capacity)
            if kept:
                firsts.append(self.times[p * self.capacity])
                lasts.append(self.times[p * self.capacity + kept - 1])
        if not firsts:
            raise ValueError("no arrival logged")
        return min(firsts), max(lasts)


class FakeProtocol(asyncio.Protocol):
    """One client connection: parses requests as they come and answers each after the latency,
    in order (clients here never pipeline, but a pipelined one would still be answered right)."""

    def __init__(self, server: "FakeServer") -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end >= 0 else None])
            if len(self.buffer) < end + 4 + length:
                return
            request_line = bytes(self.buffer[: head.find(b"\r\n") if b"\r\n" in head else end])
            del self.buffer[: end + 4 + length]
            self.answer(request_line, head)

    def answer(self, request_line: bytes, head: bytes) -> None:
        method, _, rest = request_line.partition(b" ")
        target, _, version = rest.partition(b" ")
        keep_alive = b"connection: close" not in head and (
            version != b"HTTP/1.0" or b"connection: keep-alive" in head
        )
        server = self.server
        if method == b"GET" and target.startswith(b"/send?"):
            status, body = b"200 OK", server.accept(KANNEL)
        elif method == b"POST" and target == b"/simulator/messages":
            if server.authorization in head:
                status, body = b"201 Created", server.accept(HUB)
            else:
                status, body = b"401 Unauthorized", b'{"error": "wrong API key"}'
        elif target == b"/simulator/health":
            status, body = b"200 OK", b'{"ok": true}'
        else:
            status, body = b"404 Not Found", b'{"error": "not found"}'
        close = b"" if keep_alive else b"Connection: close\r\n"
        response = RESPONSE % (status, len(body), close, body)
        latency = server.log.latency_ms.value
        if latency:
            asyncio.get_running_loop().call_later(latency / 1000, self.send, response, keep_alive)
        else:
            self.send(response, keep_alive)

    def send(self, response: bytes, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(response)
        if not keep_alive:
            self.transport.close()


class FakeServer:
    """One fake process: serves until SIGTERM."""

    def __init__(self, log: ArrivalLog, index: int, api_key: str) -> None:
        self.log, self.index, self.next_id = log, index, 0
        self.authorization = f"authorization: bearer {api_key}".lower().encode()

    def accept(self, kind: int) -> bytes:
        self.log.record(self.index, kind, time.monotonic())
        self.next_id += 1
        return BODY % f"{self.index}-{self.next_id}".encode()

    async def serve(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = await loop.create_server(lambda: FakeProtocol(self), sock=sock, backlog=4096)
        async with server:
            await stop.wait()


def listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def _serve(log: ArrivalLog, index: int, port: int, api_key: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark stops it, after its clients
    asyncio.run(FakeServer(log, index, api_key).serve(listening_socket(port)))


class FakeProvider:
    """`processes` fake processes on one free loopback port, forked from the caller (start it
    before any thread or database connection)."""

    def __init__(self, processes: int, capacity: int, api_key: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = ArrivalLog(processes, capacity)
        context = multiprocessing.get_context("fork")
        self.processes = [
            context.Process(target=_serve, args=(self.log, i, self.port, api_key), daemon=True)
            for i in range(processes)
        ]
        for process in self.processes:
            process.start()
        deadline = time.monotonic() + 30
        while not self._answers():
            if time.monotonic() > deadline or not all(p.is_alive() for p in self.processes):
                self.stop()
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
                conn.sendall(b"GET /simulator/health HTTP/1.1\r\nHost: fake\r\n\r\n")
                return conn.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def set_latency(self, latency_ms: int) -> None:
        self.log.latency_ms.value = latency_ms

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def stop(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()


class _CapacityClient(asyncio.Protocol):
    """One keep-alive connection sending Kannel-style sends one after the other until told."""

    def __init__(self, request: bytes, state: dict) -> None:
        self.request, self.state, self.buffer = request, state, bytearray()

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            self.state["done"] += 1
            if time.monotonic() < self.state["until"]:
                self.transport.write(self.request)
            else:
                self.transport.close()


async def _hammer(port: int, connections: int, seconds: float) -> int:
    loop = asyncio.get_running_loop()
    request = b"GET %s HTTP/1.1\r\nHost: fake\r\n\r\n" % CAPACITY_PATH
    state = {"done": 0, "until": time.monotonic() + seconds}
    transports = []
    for _ in range(connections):
        transport, _ = await loop.create_connection(
            lambda: _CapacityClient(request, state), "127.0.0.1", port
        )
        transports.append(transport)
    await asyncio.sleep(seconds + 0.5)
    for transport in transports:
        transport.close()
    return state["done"]


def _client(port: int, connections: int, seconds: float, results) -> None:
    results.put(asyncio.run(_hammer(port, connections, seconds)))


def measure_capacity(
    port: int, connections: int, seconds: float = 2.0, processes: int = 2
) -> float:
    """Requests per second the fake answers to `processes` bare client processes holding
    `connections` keep-alive connections in all (the clients share the machine's cores with the
    fake, so this is a lower bound of its capacity)."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    clients = [
        context.Process(
            target=_client, args=(port, connections // processes, seconds, results), daemon=True
        )
        for _ in range(processes)
    ]
    for client in clients:
        client.start()
    done = sum(results.get(timeout=seconds + 60) for _ in clients)
    for client in clients:
        client.join(timeout=10)
    return done / seconds


def main() -> None:
    """Run the fake on its own and print its capacity (a quick check of this machine)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    fake = FakeProvider(args.processes, capacity=1, api_key="bench")
    try:
        fake.set_latency(args.latency_ms)
        rate = measure_capacity(fake.port, args.connections)
        print(
            json.dumps(
                {
                    "fake_processes": args.processes,
                    "latency_ms": args.latency_ms,
                    "connections": args.connections,
                    "requests_per_s": round(rate),
                    "cpus": os.cpu_count(),
                    "url": urlsplit(fake.url).netloc,
                }
            )
        )
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
