"""Following messages: detail with its timeline, and the live status badge."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from ..models import Message
from .shared import for_user


def _message(request: HttpRequest, pk: int) -> Message:
    return get_object_or_404(
        for_user(Message.objects.select_related("provider_account", "category"), request.user),
        pk=pk,
    )


@login_required
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message(request, pk)
    template = "campaigns/message_detail.html"
    if request.htmx:
        template += "#live"
    return render(request, template, {"message": message, "events": message.events.all()})


@login_required
def message_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status badge alone; it polls itself until the status is final."""
    return render(request, "campaigns/_status_badge.html", {"message": _message(request, pk)})
