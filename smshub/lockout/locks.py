"""Login lock-outs: too many failed logins for one user name, or from one address, lock it.

- Each login attempt (a user name and a password sent to /login/ or /admin/login/) is counted
  for its user name and its address before the password is checked, so that attempts made at
  the same moment count too. A success takes its attempt back from the address and clears the
  user name's count.
- `SMSHUB_LOGIN_USER_FAILURES` attempts within `SMSHUB_LOGIN_WINDOW` seconds lock the user
  name, `SMSHUB_LOGIN_ADDRESS_FAILURES` lock the address, for `SMSHUB_LOGIN_LOCK` seconds. While
  locked no password is checked, the right one included; the counts start again from zero
  when the lock ends. User names are counted whether or not a user has them, so the answer
  tells nobody which exist.
"""

import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import ngettext

from . import counters
from .addresses import client_address
from .models import LoginLock

logger = logging.getLogger(__name__)

Scope = LoginLock.Scope


def normalize_username(username: str) -> str:
    """User names are counted and locked in lower case: `Admin` is tried as often as `admin`."""
    return username.strip().casefold()[:150]


def _counter(scope: str, value: str) -> str:
    if scope == Scope.USERNAME:  # a hash: user names may hold anything, cache keys may not
        return "login-user:" + hashlib.sha256(value.encode()).hexdigest()[:32]
    return "login-address:" + value


@dataclass(frozen=True)
class Attempt:
    username: str
    address: str
    username_count: int
    address_count: int


class Locked(Exception):
    """Logging in is refused: `lock` holds the user name or the address."""

    def __init__(self, lock: LoginLock) -> None:
        super().__init__(str(lock))
        self.lock = lock

    @property
    def message(self) -> str:
        return message(self.lock)


def message(lock: LoginLock, now: datetime | None = None) -> str:
    """What the login page says: the same for a user name whether or not a user has it."""
    seconds = (lock.locked_until - (now or timezone.now())).total_seconds()
    minutes = max(1, math.ceil(seconds / 60))
    if lock.scope == Scope.USERNAME:
        text = ngettext(
            "Too many failed attempts for this user name: try again in %(minutes)s minute, "
            "or ask an administrator to unlock it.",
            "Too many failed attempts for this user name: try again in %(minutes)s minutes, "
            "or ask an administrator to unlock it.",
            minutes,
        )
    else:
        text = ngettext(
            "Too many failed attempts from this address: try again in %(minutes)s minute, "
            "or ask an administrator to unlock it.",
            "Too many failed attempts from this address: try again in %(minutes)s minutes, "
            "or ask an administrator to unlock it.",
            minutes,
        )
    return text % {"minutes": minutes}


def active_lock(username: str, address: str, now: datetime | None = None) -> LoginLock | None:
    """The lock-out holding this (normalized) user name or this address, the address's first."""
    held = LoginLock.objects.filter(
        Q(scope=Scope.USERNAME, value=username) | Q(scope=Scope.ADDRESS, value=address),
        locked_until__gt=now or timezone.now(),
    )
    return min(held, key=lambda lock: lock.scope != Scope.ADDRESS, default=None)


def begin(request: HttpRequest, username: str) -> Attempt:
    """Count a login attempt before its password is checked; raises `Locked` instead when the
    user name or the address is locked, or when this attempt is one too many."""
    name, address = normalize_username(username), client_address(request)
    if lock := active_lock(name, address):
        raise Locked(lock)
    window = settings.SMSHUB_LOGIN_WINDOW
    attempt = Attempt(
        name,
        address,
        counters.hit(_counter(Scope.USERNAME, name), window),
        counters.hit(_counter(Scope.ADDRESS, address), window),
    )
    # Only attempts made at the same moment as the one that reached a limit get here.
    if lock := _lock_if_reached(attempt, over=True):
        raise Locked(lock)
    return attempt


def failed(attempt: Attempt) -> LoginLock | None:
    """The password was wrong (or nobody has that user name): the lock-out this failure set off,
    if it did."""
    return _lock_if_reached(attempt)


def succeeded(attempt: Attempt) -> None:
    """The password was right: the user name starts again from zero, and the attempt does not
    count against the address (an office behind one address logs in all day)."""
    window = settings.SMSHUB_LOGIN_WINDOW
    counters.reset(_counter(Scope.USERNAME, attempt.username), window)
    counters.give_back(_counter(Scope.ADDRESS, attempt.address), window)


def _lock_if_reached(attempt: Attempt, over: bool = False) -> LoginLock | None:
    """Lock the address and/or the user name whose count reached its limit (went past it, with
    `over`); returns the lock to show, the address's first."""
    past = 1 if over else 0
    locks = []
    if attempt.address_count >= settings.SMSHUB_LOGIN_ADDRESS_FAILURES + past:
        locks.append(_lock(Scope.ADDRESS, attempt.address, attempt.address_count, attempt.address))
    if attempt.username_count >= settings.SMSHUB_LOGIN_USER_FAILURES + past:
        locks.append(
            _lock(Scope.USERNAME, attempt.username, attempt.username_count, attempt.address)
        )
    return locks[0] if locks else None


def _lock(scope: str, value: str, count: int, address: str) -> LoginLock:
    now = timezone.now()
    until = now + timedelta(seconds=settings.SMSHUB_LOGIN_LOCK)
    fields = {"failures": count, "address": address, "locked_at": now, "locked_until": until}
    try:
        with transaction.atomic():
            lock, _ = LoginLock.objects.update_or_create(scope=scope, value=value, defaults=fields)
    except IntegrityError:  # locked at the same moment by another attempt
        lock = LoginLock.objects.get(scope=scope, value=value)
    counters.reset(_counter(scope, value), settings.SMSHUB_LOGIN_WINDOW)
    logger.warning(
        "login: %s %r locked until %s after %d failed attempts (the last from %s)",
        lock.get_scope_display(),
        value,
        until.isoformat(timespec="seconds"),
        lock.failures,
        address,
    )
    _forget_old(now)
    return lock


def _forget_old(now: datetime) -> None:
    """Lock-outs are kept as long as the webhook log (`SMSHUB_LOG_RETENTION_DAYS`; 0: always)."""
    days = settings.SMSHUB_LOG_RETENTION_DAYS
    if days:
        LoginLock.objects.filter(locked_until__lt=now - timedelta(days=days)).delete()


def unlock(locks: QuerySet[LoginLock], by: str) -> int:
    """End these lock-outs now (kept as a record) and forget their counts; returns how many were
    still active."""
    now = timezone.now()
    for lock in locks:
        counters.reset(_counter(lock.scope, lock.value), settings.SMSHUB_LOGIN_WINDOW)
    active = list(locks.filter(locked_until__gt=now))
    LoginLock.objects.filter(pk__in=[lock.pk for lock in active]).update(locked_until=now)
    for lock in active:
        logger.warning("login: %s %r unlocked by %s", lock.get_scope_display(), lock.value, by)
    return len(active)


def forget(scope: str, value: str) -> None:
    """Forget the failed attempts counted for a user name or address that is not locked."""
    if scope == Scope.USERNAME:
        value = normalize_username(value)
    counters.reset(_counter(scope, value), settings.SMSHUB_LOGIN_WINDOW)
