"""Re-encrypt every stored secret with the first key of SMSHUB_ENCRYPTION_KEYS.

Rotation: put a new key first in SMSHUB_ENCRYPTION_KEYS (keeping the old one after it) and
restart; run this command; once `--check` finds nothing left under an old key, remove the old key.
Rows are taken in batches by primary key, each batch locked and rewritten in its own short
transaction, so the hub keeps running meanwhile.
"""

import logging
from collections.abc import Iterator

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.db.models.functions import Cast

from smshub import crypto

logger = logging.getLogger(__name__)

ENCRYPTED = (crypto.EncryptedJSONField, crypto.EncryptedTextField)


def encrypted_fields() -> Iterator[tuple[type[models.Model], list[str]]]:
    """Every model with encrypted fields, and those fields' names."""
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, ENCRYPTED)]
        if names:
            yield model, names


def reencrypt(model: type[models.Model], fields: list[str], batch_size: int) -> int:
    """Rewrite `fields` of every row of `model` under the first key; returns the rows done."""
    done, last = 0, None
    manager = model._base_manager
    while True:
        pending = manager.order_by("pk")
        if last is not None:
            pending = pending.filter(pk__gt=last)
        pks = list(pending.values_list("pk", flat=True)[:batch_size])
        if not pks:
            return done
        with transaction.atomic():
            rows = list(manager.select_for_update().filter(pk__in=pks).only("pk", *fields))
            manager.bulk_update(rows, fields)  # saving encrypts with the first key
        done += len(rows)
        last = pks[-1]


def stale_count(model: type[models.Model], fields: list[str]) -> int:
    """Stored values that the first key alone cannot decrypt."""
    current = Fernet(crypto.configured_keys()[0])
    stale = 0
    for name in fields:
        raw = model._base_manager.annotate(
            _raw=Cast(name, output_field=models.TextField())
        ).values_list("_raw", flat=True)
        for token in raw.iterator(chunk_size=1000):
            if token is None:
                continue
            try:
                current.decrypt(token.encode())
            except InvalidToken:
                stale += 1
    return stale


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key of SMSHUB_ENCRYPTION_KEYS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--generate-key",
            action="store_true",
            help="print a new key for SMSHUB_ENCRYPTION_KEYS and change nothing",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="change nothing; count the secrets not yet under the first key (exit 1 if any)",
        )
        parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction")

    def handle(self, *args, generate_key: bool, check: bool, batch_size: int, **options) -> None:
        if generate_key:
            self.stdout.write(Fernet.generate_key().decode())
            return
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        crypto.check_keys()
        total = 0
        for model, fields in encrypted_fields():
            label = f"{model._meta.label} ({', '.join(fields)})"
            if check:
                stale = stale_count(model, fields)
                total += stale
                self.stdout.write(f"{label}: {stale} not under the first key")
            else:
                done = reencrypt(model, fields, batch_size)
                total += done
                logger.info("re-encrypted %s rows of %s", done, label)
                self.stdout.write(f"{label}: {done} re-encrypted with the first key")
        if check and total:
            raise CommandError(
                f"{total} stored secrets are not under the first key: run "
                "`manage.py rotate_encryption_key` before removing an old key."
            )
        if not check:
            self.stdout.write(self.style.SUCCESS("Done: every stored secret uses the first key."))
