"""The inbox: replies grouped by number into conversations, and answering one inline.

A conversation is everything between the account and one number: the messages sent to it and
the replies from it, in time order. The list of conversations is read from the account's replies,
newest first, by keyset (`?before=<reply id>`), so it stays cheap however many replies there are.
Replies whose number the provider did not give (an empty `from_number`) make one conversation,
"unknown number", at `inbox/unknown/`: read-only, since there is no number to answer.

A reply is unread until someone on the account sees its conversation (`Reply.read_at`; staff
share an account's inbox, so it is read for everyone). Showing a conversation marks what it
shows read: an idempotent update, skipped for a browser's prefetch.

`?q=` searches: a whole number (national or international, read with the account's country)
finds its conversation; a part of a number (3 digits or more) the numbers containing it; any
other text the conversations whose replies or messages contain it, among the latest
`SEARCH_DEPTH` replies and messages.
"""

import re
from datetime import datetime

from django import forms
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from providers import gsm

from .. import phone
from ..models import UNKNOWN_NUMBER, Account, Message, OptOut, Reply, SenderName
from ..services.compose import enqueue_message
from .compose import highlight
from .shared import READ, SEND, can_send, for_account, role_required

THREADS_PER_PAGE = 30
SCAN = 500  # replies read at a time while gathering a page of conversations
MAX_SCAN = 10_000  # replies read at most for one page
THREAD_LENGTH = 50  # the latest messages and replies shown in a conversation
MAX_TEXT_LENGTH = 1530  # ten GSM-7 segments, as on the compose page
MAX_QUERY_LENGTH = 100
SEARCH_DEPTH = 50_000  # the latest replies, and the latest messages, a text search reads
SNIPPET = 40  # characters shown either side of a match
PHONE_LIKE = re.compile(r"\+?[\d\s().\-/]+")


class ReplyForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Your answer"),
        max_length=MAX_TEXT_LENGTH,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": gettext_lazy("Write the answer to send.")},
    )

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError(_("Write the answer to send."), code="required")
        return text


def conversations(account: Account, before: Reply | None = None) -> dict:
    """A page of conversations, the one with the latest reply first: for each number its latest
    reply and how many replies it sent; `older` is the cursor of the next page (or None)."""
    replies = Reply.objects.filter(account=account).order_by("-received_at", "-id")
    if before is not None:
        replies = replies.filter(
            Q(received_at__lt=before.received_at)
            | Q(received_at=before.received_at, id__lt=before.id)
        )
    latest: dict[str, Reply] = {}
    seen: set[str] = set()
    offset, older = 0, None
    while older is None:
        chunk = list(replies[offset : offset + SCAN])
        offset += len(chunk)
        fresh = {reply.from_number for reply in chunk} - seen
        if before is not None and fresh:
            # A number with a reply at or after the cursor was on an earlier page.
            seen |= set(
                Reply.objects.filter(account=account, from_number__in=fresh)
                .filter(
                    Q(received_at__gt=before.received_at)
                    | Q(received_at=before.received_at, id__gte=before.id)
                )
                .values_list("from_number", flat=True)
            )
        for reply in chunk:
            if reply.from_number in seen:
                continue
            if len(latest) == THREADS_PER_PAGE:
                older = list(latest.values())[-1].pk
                break
            seen.add(reply.from_number)
            latest[reply.from_number] = reply
        if len(chunk) < SCAN:
            break
        if older is None and offset >= MAX_SCAN:
            # Few numbers with very many replies: stop here, the next page goes on from here.
            older = chunk[-1].pk
    counts = _counts(account, list(latest))
    threads = [
        {
            "number": number,
            "conversation": number or UNKNOWN_NUMBER,
            "latest": reply,
            "at": reply.received_at,
            "text": reply.text,
            "replies": counts.get(number, (0, 0))[0],
            "unread": counts.get(number, (0, 0))[1],
        }
        for number, reply in latest.items()
    ]
    return {"threads": threads, "older": older}


def _counts(account: Account, numbers: list[str]) -> dict[str, tuple[int, int]]:
    """For each number, how many replies it sent and how many of them are unread."""
    rows = (
        Reply.objects.filter(account=account, from_number__in=numbers)
        .values_list("from_number")
        .annotate(n=Count("id"), unread=Count("id", filter=Q(read_at__isnull=True)))
        .order_by()
    )
    return {number: (n, unread) for number, n, unread in rows}


def search(account: Account, query: str) -> dict:
    """The conversations matching `query`, latest match first (at most `THREADS_PER_PAGE`).

    `kind` says how the query was read: "number" (a whole number, `number` its E.164 form),
    "digits" (part of a number) or "text"; `limited` that the text search stopped at
    `SEARCH_DEPTH`; `more` that more conversations match than are shown."""
    query = query.strip()
    digits = re.sub(r"\D", "", query)
    found: dict[str, tuple[datetime, str, str]] = {}  # number: (when, text, "reply"|"message")
    result = {"kind": "text", "number": "", "limited": False, "more": False}

    def note(number: str, when: datetime, text: str, what: str) -> None:
        if number not in found or found[number][0] < when:
            found[number] = (when, text, what)

    replies = Reply.objects.filter(account=account)
    messages = Message.objects.filter(account=account)
    if PHONE_LIKE.fullmatch(query) and len(digits) >= 3:
        try:
            number = phone.normalize(query, account.region)
        except ValidationError:
            number = ""
        if number:
            result.update(kind="number", number=number)
            replies = replies.filter(from_number=number)
            messages = messages.filter(recipient=number)
        else:
            # Part of a number: national forms drop their leading 0 in E.164 (06… is +336…).
            result["kind"] = "digits"
            part = digits.lstrip("0") or digits
            replies = replies.filter(from_number__contains=part)
            messages = messages.filter(recipient__contains=part)
    else:
        replies = replies.filter(text__icontains=query)
        messages = messages.filter(text__icontains=query)
    if result["kind"] != "number":
        # No index serves a LIKE '%…%': read only the latest rows (by id, on (account, -id)).
        replies, deep = _latest(replies, account, Reply)
        messages, deeper = _latest(messages, account, Message)
        result["limited"] = deep or deeper
    scan = THREADS_PER_PAGE * 20
    for number, when, text in replies.order_by("-id").values_list(
        "from_number", "received_at", "text"
    )[:scan]:
        note(number, when, text, "reply")
    for number, when, text in messages.order_by("-id").values_list(
        "recipient", "created_at", "text"
    )[:scan]:
        note(number, when, text, "message")
    ordered = sorted(found.items(), key=lambda item: item[1][0], reverse=True)
    result["more"] = len(ordered) > THREADS_PER_PAGE
    ordered = ordered[:THREADS_PER_PAGE]
    counts = _counts(account, [number for number, _ in ordered])
    lookfor = "" if result["kind"] != "text" else query
    result["threads"] = [
        {
            "number": number,
            "conversation": number or UNKNOWN_NUMBER,
            "at": when,
            "text": text,
            "ours": what == "message",
            "snippet": snippet(text, lookfor),
            "replies": counts.get(number, (0, 0))[0],
            "unread": counts.get(number, (0, 0))[1],
        }
        for number, (when, text, what) in ordered
    ]
    result.update(older=None, depth=SEARCH_DEPTH)
    return result


def _latest(queryset, account: Account, model) -> tuple:
    """`queryset` limited to the account's latest `SEARCH_DEPTH` rows of `model` (found on the
    index (account, -id)), and whether older rows were left out."""
    beyond = list(
        model.objects.filter(account=account)
        .order_by("-id")
        .values_list("id", flat=True)[SEARCH_DEPTH : SEARCH_DEPTH + 1]
    )
    if not beyond:
        return queryset, False
    return queryset.filter(id__gt=beyond[0]), True


def snippet(text: str, query: str) -> tuple[str, str, str]:
    """The text around the first match of `query`: (before, match, after), shortened with "…"
    (no match, or no query: the start of the text)."""
    at = text.lower().find(query.lower()) if query else -1
    if at < 0:
        short = text if len(text) <= 2 * SNIPPET else text[: 2 * SNIPPET - 1] + "…"
        return short, "", ""
    before, match, after = text[:at], text[at : at + len(query)], text[at + len(query) :]
    if len(before) > SNIPPET:
        before = "…" + before[-(SNIPPET - 1) :]
    if len(after) > SNIPPET:
        after = after[: SNIPPET - 1] + "…"
    return before, match, after


def thread_entries(account: Account, number: str) -> list[dict]:
    """The latest messages to `number` and replies from it, oldest first ("": the replies from
    an unknown number, which answer no message)."""
    sent = Message.objects.filter(account=account, recipient=number).order_by("-id")
    sent = sent[:THREAD_LENGTH] if number else sent.none()
    received = (
        Reply.objects.filter(account=account, from_number=number)
        .select_related("message")
        .order_by("-received_at", "-id")[:THREAD_LENGTH]
    )
    entries = [{"kind": "message", "at": m.created_at, "message": m} for m in sent]
    entries += [{"kind": "reply", "at": r.received_at, "reply": r} for r in received]
    return sorted(entries, key=lambda entry: entry["at"])


def _number(request: HttpRequest, number: str) -> str:
    """The conversation's number ("" for `UNKNOWN_NUMBER`), or 404 when the account has none
    with it."""
    account = request.membership.account
    if number == UNKNOWN_NUMBER:
        if not Reply.objects.filter(account=account, from_number="").exists():
            raise Http404("No such conversation.")
        return ""
    if not (number.startswith("+") and number[1:].isdigit()):
        raise Http404("No such conversation.")
    exists = (
        Reply.objects.filter(account=account, from_number=number).exists()
        or Message.objects.filter(account=account, recipient=number).exists()
    )
    if not exists:
        raise Http404("No such conversation.")
    return number


def _thread_context(request: HttpRequest, number: str, form: ReplyForm | None = None) -> dict:
    account = request.membership.account
    entries = thread_entries(account, number)
    mark_read(request, account, number, entries)
    form = form or ReplyForm()
    text = form["text"].value() or ""
    return {
        "number": number,
        "conversation": number or UNKNOWN_NUMBER,
        "entries": entries,
        "opted_out": bool(number)
        and OptOut.objects.filter(account=account, number=number).exists(),
        "form": form,
        "can_send": can_send(request.membership),
        # The answer's live counter: compose's own (its partial, its endpoint, providers.gsm).
        "analysis": gsm.analyze(text),
        "highlight": highlight(text),
    }


def is_prefetch(request: HttpRequest) -> bool:
    """Whether the browser fetches the page ahead of a click (nobody has seen it yet)."""
    purpose = request.headers.get("Sec-Purpose") or request.headers.get("Purpose") or ""
    return "prefetch" in purpose.lower() or request.headers.get("X-Moz") == "prefetch"


def mark_read(request: HttpRequest, account: Account, number: str, entries: list[dict]) -> int:
    """Mark read the conversation's replies up to the latest one shown in `entries` (one arriving
    meanwhile stays unread). Idempotent; nothing for a prefetch. Returns how many were marked."""
    shown = [entry["reply"].pk for entry in entries if entry["kind"] == "reply"]
    if not shown or is_prefetch(request):
        return 0
    return Reply.objects.filter(
        account=account, from_number=number, read_at__isnull=True, pk__lte=max(shown)
    ).update(read_at=timezone.now())


def _search_example(account: Account) -> str:
    return phone.example(account.region) if account.region else "+33 6 12 34 56 78"


def _query(request: HttpRequest) -> tuple[str, str]:
    """The search typed (`?q=`) and what is wrong with it, if anything."""
    query = request.GET.get("q", "").replace("\x00", "").strip()
    if len(query) > MAX_QUERY_LENGTH:
        return "", _("Search with %(count)s characters at most.") % {"count": MAX_QUERY_LENGTH}
    return query, ""


@role_required(READ)
def inbox(request: HttpRequest) -> HttpResponse:
    account = request.membership.account
    query, query_error = _query(request)
    before, cursor = None, request.GET.get("before", "")
    if cursor.isdigit() and len(cursor) < 19:
        before = for_account(Reply.objects, request).filter(pk=int(cursor)).first()
    page = search(account, query) if query else conversations(account, before)
    context = {
        "page": page,
        "query": query,
        "query_error": query_error,
        "search_example": _search_example(account),
        "paged": before is not None and not query,
        "cursor_error": bool(cursor) and before is None and not query,
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "campaigns/inbox.html#results", context)
    if page["threads"] and before is None and not query:
        latest = page["threads"][0]
        context.update(_thread_context(request, latest["number"]))
        latest["unread"] = 0  # just shown beside the list
    return render(request, "campaigns/inbox.html", context)


@role_required(READ)
def thread(request: HttpRequest, number: str) -> HttpResponse:
    number = _number(request, number)
    context = _thread_context(request, number)
    if request.htmx and not request.htmx.history_restore_request:
        part = "entries" if request.GET.get("part") == "entries" else "thread"
        return render(request, f"campaigns/inbox.html#{part}", context)
    context["page"] = conversations(request.membership.account)
    context["search_example"] = _search_example(request.membership.account)
    return render(request, "campaigns/inbox.html", context)


def reply_sender(account: Account, number: str) -> str:
    """Answer from the sender name of the latest message to that number, if still approved."""
    last = (
        Message.objects.filter(account=account, recipient=number)
        .exclude(sender="")
        .order_by("-id")
        .values_list("sender", flat=True)
        .first()
    )
    approved = SenderName.objects.filter(
        account=account, name=last, status=SenderName.Status.APPROVED
    )
    return last if last and approved.exists() else ""


@role_required(SEND)
def reply(request: HttpRequest, number: str) -> HttpResponse:
    """POST: send an answer to the number of a conversation (as a new message)."""
    number = _number(request, number)
    if not number:
        raise Http404("A reply from an unknown number cannot be answered.")
    if request.method != "POST":
        return redirect("campaigns:thread", number)
    account = request.membership.account
    form = ReplyForm(request.POST)
    if form.is_valid():
        enqueue_message(
            account,
            recipient=number,
            text=form.cleaned_data["text"],
            sender=reply_sender(account, number),
            created_by=request.user,
        )
        notice = _("Answer to %(number)s queued.") % {"number": number}
        if not request.htmx:
            flash.success(request, notice)
            return redirect("campaigns:thread", number)
        context = _thread_context(request, number)
        context.update(notice=notice, focus_reply=True)
        return render(request, "campaigns/inbox.html#thread", context)
    context = _thread_context(request, number, form)
    context["focus_reply"] = True
    if request.htmx:
        return render(request, "campaigns/inbox.html#thread", context)
    context["page"] = conversations(account)
    context["search_example"] = _search_example(account)
    return render(request, "campaigns/inbox.html", context)
