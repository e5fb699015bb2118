"""Sending to contacts: the numbers of the lists and segments chosen, as recipients for
`campaigns.services.bulk` (which leaves out a number met twice, across lists, segments and
numbers typed beside them, and opted-out ones)."""

from collections.abc import Iterable, Iterator

from campaigns.models import Account

from . import segments as segment_rules
from .models import Contact, ContactList, Segment

CHUNK = 2000


def recipients(
    account: Account, lists: Iterable[ContactList] = (), segments: Iterable[Segment] = ()
) -> Iterator[tuple[int, str, None]]:
    """`(0, number, None)` for each contact of `lists` and `segments` (of `account`: the caller
    chose them among its own), streamed from the database. Line 0: a contact has no line; its
    merge field values are read with the text (`personal`)."""
    for contact_list in lists:
        numbers = Contact.objects.filter(account=account, lists=contact_list)
        yield from _numbers(numbers)
    for segment in segments:
        yield from _numbers(segment_rules.contacts(account, segment.rules))


def count(
    account: Account, lists: Iterable[ContactList] = (), segments: Iterable[Segment] = ()
) -> int:
    """How many numbers `recipients` yields: one COUNT per list and segment (a contact in two
    of them is read, and counted, twice). Read once before a send, it sizes its progress bar:
    a moment against the minutes of a send to a million contacts."""
    total = 0
    for contact_list in lists:
        total += Contact.objects.filter(account=account, lists=contact_list).count()
    for segment in segments:
        total += segment_rules.contacts(account, segment.rules).count()
    return total


def _numbers(queryset) -> Iterator[tuple[int, str, None]]:
    for number in queryset.order_by("pk").values_list("number", flat=True).iterator(CHUNK):
        yield 0, number, None
