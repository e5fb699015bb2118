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

from providers.models import ProviderAccount

from .. import phone, timerange
from ..models import Account, Campaign, Category, Message, MessageEvent
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
        label="Number",
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any"), *Message.Status.choices]
    )
    campaign = forms.TypedChoiceField(
        label="Campaign", required=False, coerce=int, empty_value=None
    )
    category = forms.ModelChoiceField(
        label="Category", queryset=Category.objects.none(), required=False, empty_label="Any"
    )
    provider = forms.ModelChoiceField(
        label="Provider", queryset=ProviderAccount.objects.none(), required=False, empty_label="Any"
    )
    date_from = forms.DateField(
        label="From",
        required=False,
        validators=[_a_day_in_range],
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        label="To",
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
        self.fields["campaign"].choices = [("", "Any"), *campaigns]
        self.fields["category"].queryset = Category.objects.filter(account=account)
        self.fields["provider"].queryset = ProviderAccount.objects.filter(
            pk__in=account.route_entries.values("provider_account")
        ).order_by("name")
        self.fields["number"].help_text = "A whole number: " + phone.help_text(account.region)
        self.fields["date_to"].help_text = f"Days in {account.timezone}, both included."

    def clean_number(self) -> str:
        value = self.cleaned_data["number"].strip()
        if not value:
            return ""
        try:
            return phone.normalize(value, self.account.region)
        except ValidationError as exc:
            raise ValidationError(f"{exc.messages[0]} Search a whole number.") from None

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "Must be on or after the “From” day.")
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
        cursor_error = "That page link is not valid: showing the newest messages."
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
    return render(
        request,
        template,
        {
            "form": form,
            "page": page,
            "filtered": any(form.data.get(name) for name in form.fields),
            "cursor_error": cursor_error,
        },
    )


def _message(request: HttpRequest, pk: int) -> Message:
    return get_for_account(
        Message.objects.select_related("provider_account", "category", "campaign"), request, pk=pk
    )


RAW_LABELS = {
    MessageEvent.Source.WEBHOOK: "Delivery report as received",
    MessageEvent.Source.PROVIDER: "Provider's answer",
    MessageEvent.Source.DISPATCH: "Provider's answer",
}


def timeline(message: Message) -> list[dict]:
    """Every event of the message and every reply to it, oldest first, raw data as JSON text."""
    entries = [
        {
            "kind": "event",
            "at": event.at,
            "event": event,
            "raw_label": RAW_LABELS.get(event.source, "Data"),
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
            "raw_label": "Reply as received",
            "raw": None
            if reply.raw in (None, "", {}, [])
            else json.dumps(reply.raw, indent=2, ensure_ascii=False, sort_keys=True),
        }
        for reply in message.replies.all()
    ]
    return sorted(entries, key=lambda entry: entry["at"])


@role_required(READ)
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message(request, pk)
    template = "campaigns/message_detail.html"
    if request.htmx:
        template += "#live"
    return render(request, template, {"message": message, "timeline": timeline(message)})


@role_required(READ)
def message_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status badge alone; it polls itself until the status is final."""
    return render(request, "campaigns/_status_badge.html", {"message": _message(request, pk)})
