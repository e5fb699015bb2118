"""The inbox: replies grouped by number into conversations, and answering one inline.

A conversation is everything between the account and one number: the messages sent to it and
the replies from it, in time order. The list of conversations is read from the account's replies,
newest first, by keyset (`?before=<reply id>`), so it stays cheap however many replies there are.
Replies whose number the provider did not give (an empty `from_number`) make one conversation,
"unknown number", at `inbox/unknown/`: read-only, since there is no number to answer.
"""

from django import forms
from django.contrib import messages as flash
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from ..models import UNKNOWN_NUMBER, Account, Message, OptOut, Reply, SenderName
from ..services.compose import enqueue_message
from .shared import READ, SEND, can_send, for_account, role_required

THREADS_PER_PAGE = 30
SCAN = 500  # replies read at a time while gathering a page of conversations
MAX_SCAN = 10_000  # replies read at most for one page
THREAD_LENGTH = 50  # the latest messages and replies shown in a conversation
MAX_TEXT_LENGTH = 1530  # ten GSM-7 segments, as on the compose page


class ReplyForm(forms.Form):
    text = forms.CharField(
        label="Your answer",
        max_length=MAX_TEXT_LENGTH,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write the answer to send."},
    )

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError("Write the answer to send.", code="required")
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
    counts = dict(
        Reply.objects.filter(account=account, from_number__in=latest)
        .values_list("from_number")
        .annotate(n=Count("id"))
        .order_by()
    )
    threads = [
        {
            "number": number,
            "conversation": number or UNKNOWN_NUMBER,
            "latest": reply,
            "replies": counts.get(number, 0),
        }
        for number, reply in latest.items()
    ]
    return {"threads": threads, "older": older}


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
    return {
        "number": number,
        "conversation": number or UNKNOWN_NUMBER,
        "entries": thread_entries(account, number),
        "opted_out": bool(number)
        and OptOut.objects.filter(account=account, number=number).exists(),
        "form": form or ReplyForm(),
        "can_send": can_send(request.membership),
    }


@role_required(READ)
def inbox(request: HttpRequest) -> HttpResponse:
    account = request.membership.account
    before, cursor = None, request.GET.get("before", "")
    if cursor.isdigit():
        before = for_account(Reply.objects, request).filter(pk=int(cursor)).first()
    page = conversations(account, before)
    context = {
        "page": page,
        "paged": before is not None,
        "cursor_error": bool(cursor) and before is None,
    }
    if page["threads"] and before is None:
        context.update(_thread_context(request, page["threads"][0]["number"]))
    return render(request, "campaigns/inbox.html", context)


@role_required(READ)
def thread(request: HttpRequest, number: str) -> HttpResponse:
    number = _number(request, number)
    context = _thread_context(request, number)
    if request.htmx:
        part = "entries" if request.GET.get("part") == "entries" else "thread"
        return render(request, f"campaigns/inbox.html#{part}", context)
    context["page"] = conversations(request.membership.account)
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
        notice = f"Answer to {number} queued."
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
    return render(request, "campaigns/inbox.html", context)
