"""The same rules as the compose form, for what the API is sent.

Numbers are E.164 (`campaigns.phone`), senders are the account's approved sender names,
categories the account's own (by tag), text at most `MAX_TEXT_LENGTH` characters and not blank,
and times are checked like the form's (`window_end` ahead, and after `send_at`; both within
`campaigns.timerange`). Every problem found is reported at once, field by field.
"""

import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns import phone, timerange
from campaigns.contacts import merge
from campaigns.contacts.models import ContactList, Segment, Template
from campaigns.models import Account, Category, SenderName

from .errors import invalid
from .schemas import MessageIn

Errors = dict[str, list[str]]
# Invalid numbers of one list named one by one; the rest are counted.
MAX_NUMBER_ERRORS = 100


@dataclass
class Outgoing:
    """A send request that passed every check: numbers in E.164, objects of the account."""

    numbers: list[str]
    text: str
    sender: str
    category: Category | None
    send_at: datetime | None
    window_end: datetime | None
    campaign: str | None
    many: bool  # a list of numbers, lists or segments were given: a campaign
    lists: list[ContactList] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    values: dict = field(default_factory=dict)


def number(value: str, field: str, errors: Errors, region: str | None = None) -> str:
    """`value` as E.164; a national number is read in `region` (the account's country)."""
    try:
        return phone.normalize(value, region)
    except ValidationError as error:
        errors.setdefault(field, []).extend(error.messages)
        return ""


def text(value: str, field: str, errors: Errors) -> str:
    if not value.strip():
        errors.setdefault(field, []).append("Write the message to send.")
    return value


def sender(account: Account, value: str, errors: Errors, field: str = "sender") -> str:
    if (
        value
        and not SenderName.objects.filter(
            account=account, name=value, status=SenderName.Status.APPROVED
        ).exists()
    ):
        errors.setdefault(field, []).append(
            f"“{value}” is not an approved sender name of this account. Leave it empty for "
            "the provider's default, or ask an admin to approve it."
        )
    return value


def category(account: Account, tag: str | None, errors: Errors) -> Category | None:
    if tag is None:
        return None
    found = Category.objects.filter(account=account, tag=tag).first()
    if found is None:
        errors.setdefault("category", []).append(f"This account has no category tagged “{tag}”.")
    return found


def moment(account: Account, value: datetime | None, field: str, errors: Errors):
    """An aware UTC datetime: without an offset, `value` is in the account's time zone.

    A local time that the clocks skip (spring forward) or pass twice (fall back) is refused:
    it names no single moment, and the sender must say which one with an offset.
    """
    if value is None:
        return None
    try:
        if timezone.is_naive(value):
            tz = zoneinfo.ZoneInfo(account.timezone)
            problem = _local_time_problem(value, tz)
            if problem:
                errors.setdefault(field, []).append(problem)
                return None
            value = value.replace(tzinfo=tz)
        return value.astimezone(UTC)
    except (OverflowError, ValueError):  # near year 1 or 9999: `schedule`, `since` keep them out
        errors.setdefault(field, []).append("This time is out of range.")
        return None


def since(account: Account, value: datetime | None, errors: Errors) -> datetime | None:
    """A `since` filter as an aware UTC time, clamped to `timerange.EARLIEST` … `LATEST`."""
    if value is None:
        return None
    return moment(account, timerange.clamp(value), "since", errors)


def schedule(account: Account, value: datetime | None, field: str, errors: Errors):
    """A time to send (or a window's end) as an aware UTC time, at most a year ahead. A time
    before 2000 is past, as good as none (`send_at`: now; `window_end`: refused as passed)."""
    if value is None:
        return None
    if timerange.long_past(value):
        if field == "window_end":
            errors.setdefault(field, []).append("This time has already passed.")
        return None
    if timerange.too_far(value, timezone.now()):  # before placing it: 9999 cannot be
        errors.setdefault(field, []).append(timerange.TOO_FAR)
        return None
    return moment(account, value, field, errors)


def _local_time_problem(value: datetime, tz: zoneinfo.ZoneInfo) -> str:
    """Why the naive local time `value` names no single moment in `tz` ("" when it does)."""
    first, second = value.replace(tzinfo=tz, fold=0), value.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return ""
    shown = f"{value:%Y-%m-%d %H:%M}"
    # Through UTC and back, a time that does not exist comes back as another wall time.
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != value:
        return (
            f"{shown} does not exist in {tz.key}: the clocks go forward then. Choose another "
            "time, or give this one with its UTC offset."
        )
    return (
        f"{shown} happens twice in {tz.key}: the clocks go back then. Give it with its UTC "
        f"offset: {first.isoformat()} for the first, {second.isoformat()} for the second."
    )


def window(send_at: datetime | None, window_end: datetime | None, errors: Errors) -> None:
    if window_end is None:
        return
    if window_end <= timezone.now():
        errors.setdefault("window_end", []).append("This time has already passed.")
    elif send_at is not None and window_end <= send_at:
        errors.setdefault("window_end", []).append("Must be after the time to send.")


def _owned(model, account: Account, ids: list[int], name: str, errors: Errors) -> list:
    """The account's objects with these ids, in the order given; an id of none of them is
    named (another account's object is as unknown as a missing one)."""
    if not ids:  # most sends name none: no query to build
        return []
    found = {obj.pk: obj for obj in model.objects.filter(account=account, pk__in=ids)}
    for index, pk in enumerate(ids):
        if pk not in found:
            errors.setdefault(f"{name}.{index}", []).append(
                f"This account has no {name[:-1]} {pk}."
            )
    return [found[pk] for pk in dict.fromkeys(ids) if pk in found]


def message_text(account: Account, payload: MessageIn, errors: Errors) -> str:
    """The text given, or the template's."""
    if payload.template is None:
        if payload.text is None:
            errors.setdefault("text", []).append("Give the text to send, or a template's name.")
            return ""
        return text(payload.text, "text", errors)
    if payload.text is not None:
        errors.setdefault("template", []).append("Give a text or a template, not both.")
        return ""
    found = Template.objects.filter(account=account, name=payload.template).first()
    if found is None:
        errors.setdefault("template", []).append(
            f"This account has no template named “{payload.template}”."
        )
        return ""
    return found.text


def outgoing(account: Account, payload: MessageIn) -> Outgoing:
    """Check a send request against the account; raises a 422 ApiError naming each problem."""
    errors: Errors = {}
    for key in payload.values:
        if not merge.FIELD.fullmatch(f"{{{key}}}"):
            errors.setdefault(f"values.{key[:40]}", []).append(
                "Not a merge field name: lowercase letters, digits and _, starting with a "
                "letter (first_name)."
            )
    lists = _owned(ContactList, account, payload.lists, "lists", errors)
    segments = _owned(Segment, account, payload.segments, "segments", errors)
    if payload.to is None and not payload.lists and not payload.segments:
        errors.setdefault("to", []).append("Give a number, a list of numbers, lists or segments.")
    many = isinstance(payload.to, list) or bool(payload.lists or payload.segments)
    given = (
        payload.to if isinstance(payload.to, list) else [] if payload.to is None else [payload.to]
    )
    numbers, bad = [], 0
    for index, value in enumerate(given):
        found: Errors = {}
        place = f"to.{index}" if isinstance(payload.to, list) else "to"
        numbers.append(number(value, place, found, account.region))
        bad += bool(found)
        if bad <= MAX_NUMBER_ERRORS:
            errors.update(found)
    if bad > MAX_NUMBER_ERRORS:
        more = bad - MAX_NUMBER_ERRORS
        errors["to"] = [f"…and {more} more invalid number{'s' if more > 1 else ''}."]
    send_at = schedule(account, payload.send_at, "send_at", errors)
    window_end = schedule(account, payload.window_end, "window_end", errors)
    window(send_at, window_end, errors)
    if payload.campaign is not None and not payload.campaign.strip():
        errors.setdefault("campaign", []).append("Give the campaign a name, or leave it out.")
    result = Outgoing(
        numbers=numbers,
        text=message_text(account, payload, errors),
        sender=sender(account, payload.sender, errors),
        category=category(account, payload.category, errors),
        send_at=send_at,
        window_end=window_end,
        campaign=payload.campaign.strip() if payload.campaign else None,
        many=many,
        lists=lists,
        segments=segments,
        values=payload.values,
    )
    if errors:
        raise invalid(errors)
    return result
