"""The embedded broker: kombu's filesystem transport, made safe for concurrent processes.

kombu's own transport creates a message file and then writes it, so a consumer listing the
folder in between reads an empty file: the worker dies on it and the message is lost (kombu
#1551). Its routing tables are truncated before they are locked and rewritten, with the same
effect on a process reading them. This transport keeps kombu's folders, message file names
(`<time>_<uuid>.<queue>.msg`) and options (`data_folder_in`, `data_folder_out`,
`control_folder`, `processed_folder`, `store_processed`, plus `unreadable_folder` and
`recovery_interval`) and changes how files are written and taken:

- A message is written under a temporary name no consumer lists (`.<uuid>.tmp`), then renamed
  into place: a consumer sees the whole message or nothing.
- A consumer claims a message by locking it (`flock`) and renaming it to a name of its own
  (`<name>.<pid>-<random>.claimed`), in the same folder: one consumer gets it. The claim is
  deleted (or moved to `processed_folder`) when the message is acknowledged, and the message
  is published again when it is rejected or the channel closes unacknowledged. The lock lives
  as long as the consumer: the claims of a consumer that died (killed worker) are unlocked, and
  the next consumer of that queue puts them back. Nothing is lost to a killed worker; what it
  was running may run twice (at least once, as with any broker and late acks).
- A file that cannot be read as a message is moved to `unreadable_folder` with an error
  logged: never dropped, never fatal.
- Routing tables (`control_folder`, used for routing and for broadcasts to workers) are
  rewritten under a lock on a separate file, to a temporary file renamed over the old one.

Registered with kombu as the URL scheme `smshubfs://` (see the broker block of settings).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.exceptions import ConnectionError as BrokerConnectionError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property

logger = logging.getLogger(__name__)

SCHEME = "smshubfs"
CLAIMED = ".claimed"
TEMPORARY = ".tmp"
# How often a consumer looks for claims of dead consumers (and leftovers of dead publishers);
# the transport option `recovery_interval` changes it.
RECOVERY_INTERVAL = 5.0
# A publisher's temporary file this old belongs to a publisher that died while writing it.
STALE_TEMPORARY_SECONDS = 3600.0

exchange_queue_t = filesystem.exchange_queue_t


@dataclass
class Claim:
    """A message file this channel took: renamed to `path`, locked through `fd`."""

    path: str
    name: str
    fd: int


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_atomically(folder: str, name: str, data: bytes) -> None:
    """Write `data` to `folder/name` so that nobody ever sees the file partly written."""
    temporary = os.path.join(folder, f".{uuid.uuid4().hex}{TEMPORARY}")
    try:
        with open(temporary, "xb") as f:
            f.write(data)
        os.rename(temporary, os.path.join(folder, name))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class Channel(filesystem.Channel):
    """kombu's filesystem channel with atomic writes, locked claims and safe routing tables."""

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._claims: dict[str, Claim] = {}  # delivery tag -> claim, until acked or rejected
        self._no_ack_queues: set[str] = set()
        # Per queue: names from the last listing, newest first (pop() takes the oldest), so
        # that the folder is listed once per batch of messages rather than once per message.
        self._pending: dict[str, list[str]] = {}
        self._next_recovery: dict[str, float] = {}
        _channels.add(self)

    @cached_property
    def recovery_interval(self) -> float:
        return float(self.transport_options.get("recovery_interval", RECOVERY_INTERVAL))

    @cached_property
    def unreadable_folder(self) -> str:
        default = os.path.join(self.data_folder_in, "unreadable")
        return self.transport_options.get("unreadable_folder", default)

    # --- publishing --------------------------------------------------------------------------

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        # Wall-clock nanoseconds, zero-padded: names sort in publishing order across processes.
        name = f"{time.time_ns():020d}_{uuid.uuid4()}.{queue}.msg"
        data = str_to_bytes(dumps(payload))
        folder = self.data_folder_out
        try:
            try:
                _write_atomically(folder, name, data)
            except FileNotFoundError:  # the folder was removed under a running hub
                os.makedirs(folder, exist_ok=True)
                _write_atomically(folder, name, data)
        except OSError as exc:
            raise ChannelError(f"Cannot add a message to {folder!r}: {exc}") from exc

    # --- consuming ---------------------------------------------------------------------------

    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        if no_ack:
            self._no_ack_queues.add(queue)
        else:
            self._no_ack_queues.discard(queue)
        return super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)

    def basic_cancel(self, consumer_tag):
        queue = self._tag_to_queue.get(consumer_tag)
        super().basic_cancel(consumer_tag)
        self._no_ack_queues.discard(queue)

    def basic_get(self, queue, no_ack=False, **kwargs):
        try:
            message = self.Message(self._get(queue, no_ack=no_ack), channel=self)
        except Empty:
            return None
        if not no_ack:
            self.qos.append(message, message.delivery_tag)
        return message

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        self._release(delivery_tag)

    def basic_reject(self, delivery_tag, requeue=False):
        super().basic_reject(delivery_tag, requeue=requeue)  # requeue: _restore publishes again
        self._release(delivery_tag)

    def _restore(self, message):
        super()._restore(message)
        self._release(message.delivery_tag)

    def close(self):
        super().close()
        # Left unacknowledged without a restore: unlocked, the next consumer puts them back.
        for claim in self._claims.values():
            with contextlib.suppress(OSError):
                os.close(claim.fd)
        self._claims.clear()

    def _get(self, queue: str, no_ack: bool | None = None) -> Any:
        """The oldest message of `queue` no other consumer took; Empty when there is none."""
        if no_ack is None:
            no_ack = queue in self._no_ack_queues
        pending = self._pending.setdefault(queue, [])
        listed = False
        while True:
            if not pending:
                if listed:
                    raise Empty()
                pending[:] = self._listing(queue)
                listed = True
                continue
            payload = self._take(pending.pop(), no_ack)
            if payload is not None:
                return payload

    def _listing(self, queue: str) -> list[str]:
        folder = self.data_folder_in
        try:
            names = os.listdir(folder)
        except FileNotFoundError:  # removed under a running hub: start again empty
            os.makedirs(folder, exist_ok=True)
            return []
        except OSError as exc:
            # A connection error to Celery, which then reconnects (with backoff) and carries on.
            raise BrokerConnectionError(f"cannot list the broker folder {folder!r}: {exc}") from exc
        wanted = f"{queue}.msg"
        now = time.monotonic()
        if now >= self._next_recovery.get(queue, 0.0):
            self._next_recovery[queue] = now + self.recovery_interval
            names.extend(self._recover(names, wanted))
        return sorted((n for n in names if n.partition(".")[2] == wanted), reverse=True)

    def _take(self, name: str, no_ack: bool) -> Any:
        """Claim and read one message file; None when another consumer has it, or it is bad."""
        path = os.path.join(self.data_folder_in, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # taken (and finished) by another consumer meanwhile
            return None
        claimed = f"{path}.{os.getpid()}-{uuid.uuid4().hex[:12]}{CLAIMED}"
        try:
            # The lock first, then the rename: a claim is never seen unlocked while its
            # consumer lives. Names are unique, so the inode renamed is the one locked.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(path, claimed)
        except OSError:  # locked or already renamed: another consumer is taking it
            os.close(fd)
            return None
        claim = Claim(claimed, name, fd)
        try:
            payload = loads(bytes_to_str(_read_all(fd)))
            tag = payload["properties"]["delivery_tag"]
        except Exception as exc:
            self._set_aside(claim, exc)
            return None
        if no_ack:
            self._finish(claim)
        else:
            previous = self._claims.pop(tag, None)
            self._claims[tag] = claim
            if previous is not None:  # the same message twice (requeued, then recovered)
                self._finish(previous)
        return payload

    def _release(self, delivery_tag: str) -> None:
        claim = self._claims.pop(delivery_tag, None)
        if claim is not None:
            self._finish(claim)

    def _finish(self, claim: Claim) -> None:
        """The message is done with: delete its file (or keep it in `processed_folder`)."""
        try:
            if self.store_processed:
                os.makedirs(self.processed_folder, exist_ok=True)
                shutil.move(claim.path, os.path.join(self.processed_folder, claim.name))
            else:
                os.unlink(claim.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.error("broker: could not remove the finished message %s: %s", claim.path, exc)
            with contextlib.suppress(OSError):
                os.unlink(claim.path)  # else it would be delivered again once unlocked
        finally:
            os.close(claim.fd)

    def _set_aside(self, claim: Claim, exc: Exception) -> None:
        destination = os.path.join(self.unreadable_folder, claim.name)
        try:
            os.makedirs(self.unreadable_folder, exist_ok=True)
            shutil.move(claim.path, destination)
        except OSError:
            # Out of the queue, and no longer a claim that recovery would put back.
            destination = f"{os.path.join(self.data_folder_in, claim.name)}.unreadable"
            with contextlib.suppress(OSError):
                os.rename(claim.path, destination)
        finally:
            os.close(claim.fd)
        logger.error(
            "broker: the message file %s cannot be read (%s: %s); moved to %s, the worker goes "
            "on. Look at it: it was never processed.",
            claim.name,
            type(exc).__name__,
            exc,
            destination,
        )

    def _recover(self, names: list[str], wanted: str) -> list[str]:
        """Put back the claims of dead consumers of this queue; returns the names put back.

        Also removes temporary files that dead publishers left (never published: their
        publish call failed)."""
        folder = self.data_folder_in
        recovered, owners = [], set()
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(CLAIMED):
                original, _, owner = name[: -len(CLAIMED)].rpartition(".")
                if original.partition(".")[2] == wanted and self._put_back(path, original):
                    recovered.append(original)
                    owners.add(owner.partition("-")[0])
            elif name.startswith(".") and name.endswith(TEMPORARY):
                with contextlib.suppress(OSError):
                    if time.time() - os.stat(path).st_mtime > STALE_TEMPORARY_SECONDS:
                        os.unlink(path)
                        logger.warning("broker: removed %s, left by a dead publisher", name)
        if recovered:
            logger.warning(
                "broker: %d message(s) of queue %s were taken by a consumer that died before "
                "finishing them (process %s): they are delivered again",
                len(recovered),
                wanted.removesuffix(".msg"),
                ", ".join(sorted(owners)),
            )
        return recovered

    def _put_back(self, path: str, original: str) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while its consumer lives
            os.rename(path, os.path.join(self.data_folder_in, original))
        except OSError:
            return False
        finally:
            os.close(fd)
        return True

    # --- routing tables ----------------------------------------------------------------------

    def get_table(self, exchange):
        file = self._exchange_file(exchange)
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        try:
            return [exchange_queue_t(*q) for q in loads(bytes_to_str(data))]
        except Exception as exc:
            local = self.state.exchanges.get(exchange, {}).get("table", [])
            logger.error(
                "broker: the routing table %s cannot be read (%s); using the %d binding(s) this "
                "process made. Stop the hub and delete the file to have it rebuilt.",
                file,
                exc,
                len(local),
            )
            return [exchange_queue_t(*q) for q in local]

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        binding = exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._tables_locked():
            table = self._table_for_update(exchange)
            if binding not in table:
                table.insert(0, binding)
                self._write_table(exchange, table)

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        binding = exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._tables_locked():
            table = self._table_for_update(exchange)
            if binding in table:
                table.remove(binding)
                self._write_table(exchange, table)

    @contextlib.contextmanager
    def _tables_locked(self) -> Iterator[None]:
        """Writers of routing tables take turns; readers never wait (files are replaced)."""
        folder = self.control_folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise ChannelError(f"Cannot lock the routing tables in {folder}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _table_for_update(self, exchange: str) -> list:
        file = self._exchange_file(exchange)
        try:
            return [exchange_queue_t(*q) for q in loads(bytes_to_str(file.read_bytes()))]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        except Exception as exc:
            logger.error("broker: the routing table %s cannot be read (%s): rebuilt", file, exc)
            return []

    def _write_table(self, exchange: str, table: list) -> None:
        file: Path = self._exchange_file(exchange)
        try:
            _write_atomically(str(file.parent), file.name, str_to_bytes(dumps(table)))
        except OSError as exc:
            raise ChannelError(f"Cannot write {file}") from exc


_channels: weakref.WeakSet[Channel] = weakref.WeakSet()


def _forget_claims_after_fork() -> None:
    """A forked child (a Celery pool process) must not hold its parent's claims: an inherited
    descriptor would keep a claim locked after the parent died, and its message stuck."""
    for channel in list(_channels):
        for claim in channel._claims.values():
            with contextlib.suppress(OSError):
                os.close(claim.fd)
        channel._claims.clear()


os.register_at_fork(after_in_child=_forget_claims_after_fork)


class Transport(filesystem.Transport):
    """The filesystem transport with `Channel` above (the driver type stays `filesystem`)."""

    Channel = Channel


TRANSPORT_ALIASES.setdefault(SCHEME, f"{__name__}:Transport")
