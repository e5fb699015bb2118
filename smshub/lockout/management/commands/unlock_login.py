"""`manage.py unlock_login [NAME ...] [--address ADDRESS ...] [--all]`: end login lock-outs.

Without arguments it lists the lock-outs in force. A name or address that is not locked has its
failed attempts forgotten all the same; an address refused by the API for invalid keys may use
it again.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from smshub.lockout import apikeys, locks
from smshub.lockout.addresses import normalize
from smshub.lockout.models import LoginLock

Scope = LoginLock.Scope


def address_as_counted(text: str) -> str:
    """An address as the lock-out counts it (IPv6 per /64), or CommandError."""
    counted = normalize(text)
    if counted is None:
        raise CommandError(f"{text!r} is not an IP address")
    return counted


class Command(BaseCommand):
    help = "Unlock user names and addresses locked out of logging in (no arguments: list them)."

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="*", metavar="NAME", help="user names to unlock")
        parser.add_argument(
            "--address", action="append", default=[], help="an address to unlock (repeatable)"
        )
        parser.add_argument("--all", action="store_true", help="unlock everything locked now")

    def handle(self, *args, usernames, address, all, **options):
        now = timezone.now()
        active = LoginLock.objects.filter(locked_until__gt=now)
        if not (usernames or address or all):
            for lock in active.order_by("scope", "value"):
                self.stdout.write(
                    f"{lock.get_scope_display()}\t{lock.value}\tuntil "
                    f"{lock.locked_until.isoformat(timespec='seconds')}\t"
                    f"{lock.failures} failed attempts, the last from {lock.address or '-'}"
                )
            if not active.exists():
                self.stdout.write("Nothing is locked.")
            return
        wanted = [(Scope.USERNAME, locks.normalize_username(name)) for name in usernames]
        wanted += [(Scope.ADDRESS, address_as_counted(text)) for text in address]
        by = "manage.py unlock_login"
        if all:
            count = locks.unlock(active, by=by)
            self.stdout.write(f"Unlocked {count}.")
        for scope, value in wanted:
            was_locked = locks.unlock(LoginLock.objects.filter(scope=scope, value=value), by=by)
            locks.forget(scope, value)
            if scope == Scope.ADDRESS:
                apikeys.forget(value)
            label = Scope(scope).label
            state = (
                "unlocked" if was_locked else "was not locked; its failed attempts are forgotten"
            )
            self.stdout.write(f"{label} {value}: {state}.")
