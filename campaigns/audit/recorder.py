"""Catching changes: `pre_save` reads the stored row, `post_save` and `post_delete` write the
difference as an `AuditEntry`, inside the same transaction as the change.

Who made it comes from a context variable: `AuditMiddleware` sets it for each request (admin,
staff UI or API, told apart by the path), `acting_as(user)` sets it for code outside requests;
otherwise the change is the system's (a worker, a reply keyword, a command).

Saves, deletes (queryset deletes too: Django sends a signal per row) and `update()` below are
recorded; a bare `QuerySet.update()` or `bulk_create()` sends no signal, so code that changes
audited rows in bulk calls `update()` here instead, and passes bulk-created rows (read back with
their pk) to `record_created()`.
"""

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import cache
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist
from django.db import models, transaction
from django.db.models import prefetch_related_objects
from django.db.models.signals import post_delete, post_save, pre_save
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from .models import SECRET_CHANGED, AuditEntry

logger = logging.getLogger(__name__)

Via = AuditEntry.Via
_SKIP = object()  # the save touches no audited field: nothing to record


@dataclass(frozen=True)
class Actor:
    user: Any  # a user, or a request whose user is read when a change is recorded
    via: str

    def resolve(self) -> tuple[Any, str]:
        """(user or None, the name to record)."""
        request = self.user if isinstance(self.user, HttpRequest) else None
        user = getattr(request, "user", None) if request is not None else self.user
        if user is not None and getattr(user, "is_authenticated", False):
            return user, user.get_username()
        # The JSON API (django-ninja) authenticates with an API key, put on `request.auth`.
        api_key = getattr(request, "auth", None)
        if api_key is not None:
            return None, f"API key {api_key}"[:150]
        return None, "anonymous" if self.via != Via.SYSTEM else ""


_actor: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)


@contextmanager
def acting_as(user: Any, via: str = Via.WEB) -> Iterator[None]:
    """Changes made inside are recorded as `user`'s (a service called outside a request)."""
    token = _actor.set(Actor(user, via))
    try:
        yield
    finally:
        _actor.reset(token)


@cache
def _admin_prefix() -> str:
    try:
        return reverse("admin:index")
    except NoReverseMatch:
        return "\0"  # no admin: no path starts with it


def request_via(request: HttpRequest) -> str:
    if request.path.startswith(_admin_prefix()):
        return Via.ADMIN
    if request.path.startswith("/api/"):
        return Via.API
    return Via.WEB


@contextmanager
def acting_for_request(request: HttpRequest) -> Iterator[None]:
    token = _actor.set(Actor(request, request_via(request)))
    try:
        yield
    finally:
        _actor.reset(token)


# --- what is audited -------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    exclude: frozenset[str]  # fields never recorded (timestamps, bookkeeping)
    secrets: frozenset[str]  # fields recorded only as "changed"
    account_id: Callable[[models.Model], int | None]
    # For a dict field: whether one of its keys holds a secret.
    secret_key: Callable[[models.Model, str], bool] = lambda instance, key: True


SPECS: dict[type[models.Model], Spec] = {}


def _specs() -> dict[type[models.Model], Spec]:
    from campaigns.models import Account, OptOut, RouteEntry, SenderName
    from providers.models import ProviderAccount

    by_account = lambda instance: instance.account_id  # noqa: E731
    return {
        ProviderAccount: Spec(
            exclude=frozenset(
                {
                    "id",
                    "inbound_cursor",
                    "created_at",
                    "updated_at",
                    "webhook_token_digest",
                    # Health bookkeeping (`note_answers`), not a change anyone made.
                    "last_success_at",
                    "last_error_at",
                    "last_error_code",
                    "last_error",
                }
            ),
            secrets=frozenset({"webhook_token"}),
            account_id=lambda instance: None,
            secret_key=lambda instance, key: instance.is_secret_credential(key),
        ),
        Account: Spec(
            exclude=frozenset({"id", "created_at"}),
            secrets=frozenset({"forward_secret"}),
            account_id=lambda instance: instance.pk,
        ),
        RouteEntry: Spec(frozenset({"id"}), frozenset(), by_account),
        SenderName: Spec(frozenset({"id", "created_at"}), frozenset(), by_account),
        OptOut: Spec(frozenset({"id", "created_at"}), frozenset(), by_account),
    }


def connect() -> None:
    SPECS.update(_specs())
    for model in SPECS:
        uid = f"audit:{model._meta.label}"
        pre_save.connect(_before_save, sender=model, dispatch_uid=uid)
        post_save.connect(_after_save, sender=model, dispatch_uid=uid)
        post_delete.connect(_after_delete, sender=model, dispatch_uid=uid)


def _fields(model: type[models.Model]) -> list[models.Field]:
    exclude = SPECS[model].exclude
    return [f for f in model._meta.concrete_fields if f.name not in exclude]


def _plain(value: Any) -> Any:
    """A value as JSON can hold it, readable in the admin."""
    if value is None or isinstance(value, bool | int | float | str | dict | list):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)  # Decimal, UUID, ...


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The audited fields' values; a foreign key as the related object's name and id."""
    values = {}
    for field in _fields(type(instance)):
        if field.is_relation:
            related_id = getattr(instance, field.attname)
            if related_id is None:
                values[field.name] = None
                continue
            try:
                values[field.name] = f"{getattr(instance, field.name)} (#{related_id})"
            except ObjectDoesNotExist:  # deleted in the same cascade
                values[field.name] = f"#{related_id}"
        else:
            values[field.name] = _plain(getattr(instance, field.attname))
    return values


def diff(instance: models.Model, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """{field: [from, to]} for what differs; secrets as "changed"; a dict key by key."""
    spec = SPECS[type(instance)]
    changes: dict[str, Any] = {}
    for name in after.keys() | before.keys():
        old, new = before.get(name), after.get(name)
        if old == new or (old in (None, "") and new in (None, "")):
            continue
        if name in spec.secrets:
            changes[name] = SECRET_CHANGED
        elif isinstance(old, dict | None) and isinstance(new, dict | None) and (old or new):
            old, new = old or {}, new or {}
            for key in old.keys() | new.keys():
                if old.get(key) != new.get(key):
                    secret = spec.secret_key(instance, key)
                    changes[f"{name}.{key}"] = (
                        SECRET_CHANGED if secret else [old.get(key), new.get(key)]
                    )
        else:
            changes[name] = [old, new]
    return dict(sorted(changes.items()))


def record(instance: models.Model, action: str, changes: dict[str, Any]) -> AuditEntry:
    entry = _entry(instance, action, changes, _actor.get())
    entry.save(force_insert=True)
    logger.info(
        "audit: %s %s #%s %s by %s via %s",
        instance._meta.label,
        action,
        instance.pk,
        sorted(changes),
        entry.actor_name or "system",
        entry.via,
    )
    return entry


def _entry(
    instance: models.Model, action: str, changes: dict[str, Any], actor: Actor | None
) -> AuditEntry:
    """The entry (not saved) for `action` on `instance` by `actor`."""
    user, name, via = None, "", Via.SYSTEM
    if actor is not None:
        user, name = actor.resolve()
        via = actor.via
    return AuditEntry(
        actor=user,
        actor_name=name,
        via=via,
        action=action,
        content_type=ContentType.objects.get_for_model(type(instance)),
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        account_id=SPECS[type(instance)].account_id(instance),
        changes=changes,
    )


# --- signal receivers ------------------------------------------------------------------------


def _before_save(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    instance._audit_before = None
    if raw or instance._state.adding or instance.pk is None:
        return
    names = {f.name for f in _fields(sender)} | {f.attname for f in _fields(sender)}
    if update_fields is not None and not names & set(update_fields):
        instance._audit_before = _SKIP
        return
    relations = [f.name for f in _fields(sender) if f.is_relation]
    query = sender._base_manager.filter(pk=instance.pk)
    if relations:
        query = query.select_related(*relations)
    stored = query.first()
    if stored is not None:
        instance._audit_before = snapshot(stored)


def _after_save(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    before = instance.__dict__.pop("_audit_before", None)
    if before is _SKIP:
        return
    after = snapshot(instance)
    if created or before is None:
        record(instance, AuditEntry.Action.CREATED, diff(instance, {}, after))
        return
    changes = diff(instance, before, after)
    if changes:
        record(instance, AuditEntry.Action.CHANGED, changes)


def _after_delete(sender, instance, **kwargs) -> None:
    record(instance, AuditEntry.Action.DELETED, diff(instance, snapshot(instance), {}))


def record_created(instances: Iterable[models.Model]) -> int:
    """Record rows that `bulk_create()` made (it sends no signal); they need their pk.

    In bulk, as they were made: their related rows read once per relation (not once per row),
    the entries written together, and one log line per model rather than one per row."""
    by_model: dict[type[models.Model], list[models.Model]] = {}
    for instance in instances:
        by_model.setdefault(type(instance), []).append(instance)
    actor = _actor.get()
    for model, rows in by_model.items():
        relations = [field.name for field in _fields(model) if field.is_relation]
        prefetch_related_objects(rows, *relations)
        entries = [
            _entry(row, AuditEntry.Action.CREATED, diff(row, {}, snapshot(row)), actor)
            for row in rows
        ]
        AuditEntry.objects.bulk_create(entries, batch_size=1000)
        logger.info(
            "audit: %s created x%s (#%s to #%s) by %s via %s",
            model._meta.label,
            len(rows),
            min(row.pk for row in rows),
            max(row.pk for row in rows),
            entries[0].actor_name or "system",
            entries[0].via,
        )
    return sum(len(rows) for rows in by_model.values())


def update(queryset: models.QuerySet, **values: Any) -> int:
    """`queryset.update(**values)`, with an audit entry for each row that it changes."""
    model = queryset.model
    if model not in SPECS:
        return queryset.update(**values)
    with transaction.atomic():
        rows = list(queryset.select_for_update())
        updated = model._base_manager.filter(pk__in=[row.pk for row in rows]).update(**values)
        for row in rows:
            before = snapshot(row)
            for name, value in values.items():
                setattr(row, name, value)
            changes = diff(row, before, snapshot(row))
            if changes:
                record(row, AuditEntry.Action.CHANGED, changes)
    return updated
