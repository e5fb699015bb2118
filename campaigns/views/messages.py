"""Following messages: the filtered list, the detail with its timeline, and the live badge.

The list pages by keyset (`?after=<id>`: older than that message, newest first; `?before=<id>`:
newer), never by OFFSET, and never counts the whole table: each page reads its 50 rows from one
of the account's indexes, (account, -id), (account, status, -id), (account, recipient, -id) or,
with a date filter, (account, created_at, id).
"""

import json
import zoneinfo
from datetime import date, datetime, time, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext, pgettext_lazy
from django.views.decorators.http import require_GET

from providers.models import ProviderAccount

from .. import phone, statuses, timerange
from ..models import Account, Campaign, Category, Message, MessageEvent
from ..services import monitoring
from .shared import READ, get_for_account, role_required

PAGE_SIZE = 50
CAMPAIGN_CHOICES = 200  # the latest campaigns offered in the filter


def _a_day_in_range(value: date) -> None:
    """Days far out cannot be placed in a time zone (year 1, 9999): a clear error instead."""
    problem = timerange.day_problem(value)
    if problem:
        raise ValidationError(problem, code="out_of_range")


class MessageFilterForm(forms.Form):
    """The list's filters. Everything optional; choices are the current account's own."""

    number = forms.CharField(
        label=gettext_lazy("Number"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("Any")), *Message.Status.choices],
    )
    campaign = forms.TypedChoiceField(
        label=gettext_lazy("Campaign"), required=False, coerce=int, empty_value=None
    )
    category = forms.ModelChoiceField(
        label=gettext_lazy("Category"),
        queryset=Category.objects.none(),
        required=False,
        empty_label=gettext_lazy("Any"),
    )
    provider = forms.ModelChoiceField(
        label=gettext_lazy("Provider"),
        queryset=ProviderAccount.objects.none(),
        required=False,
        empty_label=gettext_lazy("Any"),
    )
    date_from = forms.DateField(
        label=pgettext_lazy("date range", "From"),
        required=False,
        validators=[_a_day_in_range],
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        label=pgettext_lazy("date range", "To"),
        required=False,
        validators=[_a_day_in_range],
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, account: Account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        campaigns = list(
            Campaign.objects.filter(account=account)
            .order_by("-id")
            .values_list("id", "name")[:CAMPAIGN_CHOICES]
        )
        chosen = self.data.get("campaign", "")
        if chosen.isdigit() and all(pk != int(chosen) for pk, _ in campaigns):
            # A campaign older than those offered stays selectable when it is the account's own.
            campaigns += Campaign.objects.filter(account=account, pk=int(chosen)).values_list(
                "id", "name"
            )
        self.fields["campaign"].choices = [("", _("Any")), *campaigns]
        self.fields["category"].queryset = Category.objects.filter(account=account)
        self.fields["provider"].queryset = ProviderAccount.objects.filter(
            pk__in=account.route_entries.values("provider_account")
        ).order_by("name")
        self.fields["number"].help_text = _("A whole number: %(help)s") % {
            "help": phone.help_text(account.region)
        }
        self.fields["date_to"].help_text = _("Days in %(timezone)s, both included.") % {
            "timezone": account.timezone
        }

    def clean_number(self) -> str:
        value = self.cleaned_data["number"].strip()
        if not value:
            return ""
        try:
            return phone.normalize(value, self.account.region)
        except ValidationError as exc:
            raise ValidationError(
                _("%(problem)s Search a whole number.") % {"problem": exc.messages[0]}
            ) from None

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("Must be on or after the “From” day."))
        return cleaned

    def filter(self, queryset: QuerySet[Message]) -> QuerySet[Message]:
        data = self.cleaned_data
        if data["number"]:
            queryset = queryset.filter(recipient=data["number"])
        if data["status"]:
            queryset = queryset.filter(status=data["status"])
        if data["campaign"]:
            queryset = queryset.filter(campaign_id=data["campaign"])
        if data["category"]:
            queryset = queryset.filter(category=data["category"])
        if data["provider"]:
            queryset = queryset.filter(provider_account=data["provider"])
        tz = zoneinfo.ZoneInfo(self.account.timezone)
        if data["date_from"]:
            queryset = queryset.filter(
                created_at__gte=datetime.combine(data["date_from"], time.min, tzinfo=tz)
            )
        if data["date_to"]:
            end = data["date_to"] + timedelta(days=1)
            queryset = queryset.filter(created_at__lt=datetime.combine(end, time.min, tzinfo=tz))
        return queryset


def _cursor(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


def page_of(
    queryset: QuerySet[Message], after: int | None, before: int | None, by_date: bool = False
) -> dict:
    """One page, newest first, and whether there are newer and older ones.

    Newest is the highest id; with a date filter, the latest `created_at` (then id), so that
    the account's index on (account, created_at, id) serves the range in order: walking the id
    index instead would first skip every message newer than the range.
    """
    order = ["created_at", "id"] if by_date else ["id"]
    cursor = after if after is not None else before
    if cursor is not None:
        key = {"id": cursor, "created_at": None}
        if by_date:
            # None when not this account's or not matching the filters: then by id alone.
            key = queryset.filter(pk=cursor).values(*order).first() or key
        queryset = queryset.filter(_beyond(key, by_date, older=after is not None))
    if before is not None:
        rows = list(queryset.order_by(*order)[: PAGE_SIZE + 1])
        has_newer = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE][::-1]
        has_older = True
    else:
        rows = list(queryset.order_by(*(f"-{name}" for name in order))[: PAGE_SIZE + 1])
        has_older = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        has_newer = after is not None
    return {
        "rows": rows,
        "newer": rows[0].pk if rows and has_newer else None,
        "older": rows[-1].pk if rows and has_older else None,
        "paged": cursor is not None,
    }


def _beyond(key: dict, by_date: bool, older: bool) -> Q:
    """The rows after the cursor `key` in the page order (older), or before it (newer)."""
    if not by_date or key["created_at"] is None:
        return Q(id__lt=key["id"]) if older else Q(id__gt=key["id"])
    at, pk = key["created_at"], key["id"]
    if older:
        return Q(created_at__lte=at) & (Q(created_at__lt=at) | Q(id__lt=pk))
    return Q(created_at__gte=at) & (Q(created_at__gt=at) | Q(id__gt=pk))


@role_required(READ)
def message_list(request: HttpRequest) -> HttpResponse:
    account = request.membership.account
    form = MessageFilterForm(request.GET, account=account)
    after, before = _cursor(request, "after"), _cursor(request, "before")
    cursor_error = ""
    if (request.GET.get("after") and after is None) or (
        request.GET.get("before") and before is None
    ):
        cursor_error = _("That page link is not valid: showing the newest messages.")
    page = {"rows": [], "newer": None, "older": None, "paged": False}
    if form.is_valid():
        queryset = form.filter(
            Message.objects.filter(account=account).select_related(
                "provider_account", "category", "campaign"
            )
        )
        dated = bool(form.cleaned_data["date_from"] or form.cleaned_data["date_to"])
        page = page_of(queryset, after, before, by_date=dated)
    template = "campaigns/messages.html"
    if request.htmx and not request.htmx.boosted:
        template += "#browser"
    now = timezone.now()
    return render(
        request,
        template,
        {
            "form": form,
            "page": page,
            "filtered": any(form.data.get(name) for name in form.fields),
            "cursor_error": cursor_error,
            **_live_context(_watched(page["rows"], now), int(now.timestamp()), now),
        },
    )


def _message(request: HttpRequest, pk: int) -> Message:
    return get_for_account(
        Message.objects.select_related("provider_account", "category", "campaign"), request, pk=pk
    )


RAW_LABELS = {
    MessageEvent.Source.WEBHOOK: gettext_lazy("Delivery report as received"),
    MessageEvent.Source.PROVIDER: gettext_lazy("Provider's answer"),
    MessageEvent.Source.DISPATCH: gettext_lazy("Provider's answer"),
}


def timeline(message: Message) -> list[dict]:
    """Every event of the message and every reply to it, oldest first, raw data as JSON text;
    an event's statuses by their label ("new" before the first)."""
    labels = {"": pgettext("message status", "new"), **dict(Message.Status.choices)}
    entries = [
        {
            "kind": "event",
            "at": event.at,
            "event": event,
            "from_label": labels.get(event.from_status, event.from_status),
            "to_label": labels.get(event.to_status, event.to_status),
            "raw_label": RAW_LABELS.get(event.source, _("Data")),
            "raw": None
            if event.payload in (None, "", {}, [])
            else json.dumps(event.payload, indent=2, ensure_ascii=False, sort_keys=True),
        }
        for event in message.events.all()
    ]
    entries += [
        {
            "kind": "reply",
            "at": reply.received_at,
            "reply": reply,
            "raw_label": _("Reply as received"),
            "raw": None
            if reply.raw in (None, "", {}, [])
            else json.dumps(reply.raw, indent=2, ensure_ascii=False, sort_keys=True),
        }
        for reply in message.replies.all()
    ]
    return sorted(entries, key=lambda entry: entry["at"])


# --- live status ------------------------------------------------------------------------------
# Pages poll small fragments while something is in flight: every second while a message is
# waiting or being sent, every 3 s after 10 quiet seconds, every 5 s while only delivery reports
# are awaited (for a while), never once every status shown is final. A poll that finds nothing
# changed since what the page shows is answered 204 (no content): htmx then swaps nothing.
REPORTS_WATCHED = timedelta(minutes=10)  # a sent message's badge listens for its report so long
MOVING = frozenset(statuses.ON_ITS_WAY - {Message.Status.SCHEDULED})


def base_poll(message_statuses: list[tuple[str, datetime]], now: datetime) -> int | None:
    """How often to look again at messages in these (status, last change) states."""
    if any(status in MOVING for status, _ in message_statuses):
        return 1
    if any(
        status == Message.Status.SCHEDULED
        or (status not in statuses.FINAL and updated > now - REPORTS_WATCHED)
        for status, updated in message_statuses
    ):
        return 5
    return None


def _watched(rows: list[Message], now: datetime) -> list[Message]:
    """The messages whose badge may still change soon."""
    return [
        m
        for m in rows
        if m.status in statuses.ON_ITS_WAY
        or (m.status not in statuses.FINAL and m.updated_at > now - REPORTS_WATCHED)
    ]


def _live_context(watched: list[Message], since: int, now: datetime) -> dict:
    base = base_poll([(m.status, m.updated_at) for m in watched], now)
    return {
        "watch": ",".join(f"{m.pk}.{m.status}" for m in watched),
        "poll": monitoring.backoff(base, now.timestamp() - since),
        "since": since,
    }


def _shown_statuses(value: str) -> dict[int, str]:
    """`12.sent,13.queued` as the page sent it: {id: status}; anything else is left out."""
    shown = {}
    for item in value.split(",")[:PAGE_SIZE]:
        pk, _, status = item.partition(".")
        if pk.isdigit() and len(pk) < 19 and status in statuses.Status.values:
            shown[int(pk)] = status
    return shown


@role_required(READ)
@require_GET
def message_live(request: HttpRequest) -> HttpResponse:
    """The messages list's poll: the badges whose status changed since the page showed them
    (`s=id.status,...`), swapped in place out of band, and the poller itself; 204 when none did.
    One query on primary keys, whatever the account's size."""
    now = timezone.now()
    shown = _shown_statuses(request.GET.get("s", ""))
    since = monitoring.stamp(request.GET.get("t", "")) or int(now.timestamp())
    interval = monitoring.stamp(request.GET.get("p", ""))
    rows = list(
        Message.objects.filter(account=request.membership.account, pk__in=list(shown))
        .only("id", "status", "updated_at")
        .order_by("id")
    )
    changed = [m for m in rows if shown.get(m.pk) != m.status]
    if changed:
        since = int(now.timestamp())
    context = _live_context(_watched(rows, now), since, now)
    if not changed and context["poll"] == interval:
        return HttpResponse(status=204)
    context["changed"] = changed
    return render(request, "campaigns/messages.html#poller", context)


@role_required(READ)
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A message and its timeline; polled by htmx, its live part, or 204 when its version (the
    time of its last change) is still the one the page shows."""
    message = _message(request, pk)
    now = timezone.now()
    version = str(int(message.updated_at.timestamp() * 1_000_000))
    since = monitoring.stamp(request.GET.get("t", ""))
    base = base_poll([(message.status, message.updated_at)], now)
    if base is None and not message.is_final:
        base = 30  # a report may still come, hours later: look now and then
    if request.htmx and since is not None and request.GET.get("v") == version:
        poll = monitoring.backoff(base, now.timestamp() - since)
        if poll == monitoring.stamp(request.GET.get("p", "")):
            return HttpResponse(status=204)
    else:
        since = int(now.timestamp())
    template = "campaigns/message_detail.html"
    if request.htmx:
        template += "#live"
    context = {
        "message": message,
        "timeline": timeline(message),
        "version": version,
        "since": since,
        "poll": monitoring.backoff(base, now.timestamp() - since),
    }
    return render(request, template, context)


@role_required(READ)
def message_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status badge alone; it polls itself until the status is final, answered 204 while
    the status is still the one it shows (`v`)."""
    message = _message(request, pk)
    if request.htmx and request.GET.get("v") == message.status:
        return HttpResponse(status=204)
    return render(request, "campaigns/_status_badge.html", {"message": message})
