"""Counts on the contacts pages, kept out of a page's own time once an account is large.

An account with at most SMALL contacts gets its counts with each page: any count then reads at
most that many rows. A larger one gets the page at once (one page of rows reads the same few
rows however many there are) and its counts just after, exact: the page asks for them with htmx
from its own address plus `?count=...`, or, without JavaScript, the user follows the
“count them” link to the page with its counts. Counting a million contacts takes a moment
(every row is read); a page of fifty should not wait for it.
"""

from django.http import HttpRequest

from campaigns.models import Account

from ..models import Contact

SMALL = 10_000
PARAM = "count"


def with_page(account: Account) -> bool:
    """Whether the account's counts come with its pages: it has at most SMALL contacts
    (found by reading at most SMALL + 1 entries of an index)."""
    return not Contact.objects.filter(account=account).order_by()[SMALL:].exists()


def asked(request: HttpRequest) -> str:
    """What the address asks to count (`exact`, `all`, an id), or ""."""
    value = request.GET.get(PARAM, "")
    return value if value.isascii() and value.isalnum() and len(value) <= 18 else ""


def asked_id(request: HttpRequest) -> int | None:
    """The id the address asks to count (a segment's, a list's), if any."""
    value = asked(request)
    return int(value) if value.isdigit() else None
