"""Compose and send one SMS."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from providers import gsm

from ..forms import ComposeForm
from ..models import Message
from ..services.compose import enqueue_message
from .shared import membership_required

RECENT = 10


@login_required
@membership_required
def compose(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    account = membership.account
    if request.method == "POST":
        if not membership.can_send:
            raise PermissionDenied("Viewers cannot send messages.")
        form = ComposeForm(request.POST, account=account)
        if form.is_valid():
            message = enqueue_message(
                account,
                recipient=form.cleaned_data["recipient"],
                text=form.cleaned_data["text"],
                sender=form.cleaned_data["sender"],
                category=form.cleaned_data["category"],
                send_at=form.cleaned_data["send_at"],
                window_end=form.cleaned_data["window_end"],
                created_by=request.user,
            )
            if message.status == message.Status.SCHEDULED:
                when = timezone.localtime(message.scheduled_at).strftime("%Y-%m-%d %H:%M")
                messages.success(request, f"Message to {message.recipient} scheduled for {when}.")
            else:
                messages.success(request, f"Message to {message.recipient} queued.")
            return redirect("campaigns:compose")
    else:
        form = ComposeForm(account=account)
    recent = Message.objects.filter(account=account).order_by("-id")[:RECENT]
    return render(
        request,
        "campaigns/compose.html",
        {
            "form": form,
            "analysis": gsm.analyze(form.data.get("text", "")),
            "recent": recent,
            "can_send": membership.can_send,
        },
    )


@login_required
@require_POST
def text_counter(request: HttpRequest) -> HttpResponse:
    """The live counter under the text box: characters, encoding, segments."""
    return render(
        request,
        "campaigns/compose.html#counter",
        {"analysis": gsm.analyze(request.POST.get("text", ""))},
    )
