"""Compose: one SMS to one number, or a campaign to a pasted list or a CSV column.

Every send goes through a preview (recipients, duplicates, opted-out numbers, rejected rows with
their line numbers, segments, estimated cost) and then a confirmation of exactly that preview.
An uploaded CSV file is kept under the upload folder between the two steps, under a random name
known only to the uploader's session, and is read as a stream both times. While a request reads
or imports it, the page polls a progress fragment fed from the cache after each batch.
"""

import hashlib
import logging
import re
import secrets

from django.contrib import messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from providers import gsm

from .. import uploads
from ..contacts import audience, merge
from ..contacts.models import Template
from ..forms import ComposeForm
from ..models import Account, Message
from ..services import bulk, personal
from ..services.compose import enqueue_message
from .shared import READ, can_send, role_required

logger = logging.getLogger(__name__)

RECENT = 10
DONE_KEY = "compose_done"
PROGRESS_SECONDS = 3600
CONFIRM_SECONDS = 24 * 3600  # how long a confirmation is remembered (the session aside)
CLAIMED = "claimed"  # a confirmation taken, whose result is not known yet
TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# What a send's progress counts (see `_extent`), in words.
UNITS = {
    "lines": gettext_lazy("lines"),
    "numbers": gettext_lazy("numbers"),
    "contacts": gettext_lazy("contacts"),
    "lines and contacts": gettext_lazy("lines and contacts"),
    "numbers and contacts": gettext_lazy("numbers and contacts"),
}


# --- uploads kept between preview and confirmation --------------------------------------------


class Upload(uploads.Upload):
    """A CSV file uploaded in this session, for this account."""

    info_class = bulk.CsvInfo

    def recipients(self, column: int, has_header: bool, with_values: bool = False):
        """The chosen column as (line, value) pairs (with the row's cells by merge field key
        when `with_values`), read from disk as they are consumed."""
        with open(self.path, "rb") as stream:
            yield from bulk.csv_recipients(
                stream,
                column=column,
                has_header=has_header,
                delimiter=self.info.delimiter,
                with_values=with_values,
            )


UPLOADS = uploads.Uploads("compose", "compose_uploads", "", Upload)


def save_upload(request: HttpRequest, file, account: Account) -> Upload:
    """Keep the uploaded file and inspect its first lines (`uploads.Uploads.save`).

    Raises CsvError for a file that is too large or not CSV.
    """

    def inspect(stream) -> bulk.CsvInfo:
        info = bulk.inspect_csv(stream, account.region)
        # Shown in the column picker: keep the session small.
        info.headers = [cell[:100] for cell in info.headers[:100]]
        info.sample = [cell[:100] for cell in info.sample[:100]]
        return info

    return UPLOADS.save(
        request,
        account,
        file.chunks(),
        filename=file.name,
        size=file.size,
        inspect=inspect,
        error=bulk.CsvError,
    )


# --- progress of a long read or import --------------------------------------------------------


def _progress_key(request: HttpRequest, compose_id: str) -> str:
    return f"compose-progress:{request.user.pk}:{compose_id}"


class Reached:
    """How far a send has read its recipients: the CSV line reached, or the numbers typed
    read, then the contacts of its lists and segments read (`_recipients` moves it)."""

    done = 0


def _extent(form: ComposeForm, upload: Upload | None) -> tuple[int | None, str]:
    """Where a send's progress ends and what it counts: the CSV file's lines or the numbers
    typed, then the contacts of the lists and segments chosen, counted once per request (a
    COUNT each: a moment, against the minutes a send to a million contacts takes)."""
    if getattr(form, "extent", None) is None:
        cleaned = form.cleaned_data
        if upload is not None:
            total, unit = upload.info.lines, "lines"
        else:
            total = sum(1 for _ in bulk.pasted_recipients(cleaned["recipients"]))
            unit = "numbers"
        if cleaned["lists"] or cleaned["segments"]:
            unit = f"{unit} and contacts" if total else "contacts"
            total += audience.count(form.account, cleaned["lists"], cleaned["segments"])
        form.extent = (total or None, unit)
    return form.extent


def _progress(
    request: HttpRequest,
    compose_id: str,
    phase: str,
    extent: tuple[int | None, str],
    reached: Reached,
):
    """A callback for bulk's scans that records how far they got (`reached`, out of the
    `extent`'s total), or None without a form id."""
    if not TOKEN.match(compose_id or ""):
        return None
    key = _progress_key(request, compose_id)
    total, unit = extent

    def report(_line: int) -> None:
        state = {"phase": phase, "done": reached.done, "total": total, "unit": unit}
        cache.set(key, state, PROGRESS_SECONDS)

    report(0)
    return report


@role_required(READ)
@require_GET
def compose_progress(request: HttpRequest, compose_id: str) -> HttpResponse:
    """How far the current check or import of this form has got (polled while it runs)."""
    state = cache.get(_progress_key(request, compose_id)) if TOKEN.match(compose_id) else None
    if state and state.get("total"):
        state["done"] = min(state["done"], state["total"])
    if state:
        state["unit_text"] = UNITS.get(state.get("unit"), state.get("unit"))
    return render(request, "campaigns/compose.html#progress", {"progress": state})


# --- the page ---------------------------------------------------------------------------------


@role_required(READ)
def compose(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    account = membership.account
    if request.method == "POST":
        if not can_send(membership):
            raise PermissionDenied(_("Only operators and account admins can send messages."))
        return _post(request, account)
    form = ComposeForm(account=account, initial={"compose_id": secrets.token_urlsafe(12)})
    return _render(request, form)


def _render(request: HttpRequest, form: ComposeForm, **context) -> HttpResponse:
    template = "campaigns/compose.html"
    if request.htmx and request.method == "POST":
        template += "#compose-card"
    account = request.membership.account
    text = form["text"].value() or ""
    return render(
        request,
        template,
        {
            "form": form,
            "analysis": gsm.analyze(text),
            "highlight": highlight(text),
            "recent": Message.objects.filter(account=account).order_by("-id")[:RECENT],
            "can_send": can_send(request.membership),
            **context,
        },
    )


def _post(request: HttpRequest, account: Account) -> HttpResponse:
    data = request.POST.copy()
    action = data.get("action", "preview")
    compose_id = data.get("compose_id", "")
    if not TOKEN.match(compose_id):
        compose_id = data["compose_id"] = secrets.token_urlsafe(12)
    if action == "confirm" and (
        compose_id in request.session.get(DONE_KEY, {})
        or cache.get(_confirm_key(request, account, compose_id)) is not None
    ):
        # The same confirmation twice (a double click, a resubmitted page): sent once.
        return _sent_already(request, account, compose_id)

    upload, upload_error = None, ""
    if action == "remove_upload":
        UPLOADS.discard(request, data.get("upload", ""))
        data["upload"] = ""
    elif request.FILES.get("csv_file"):
        try:
            upload = save_upload(request, request.FILES["csv_file"], account)
        except bulk.CsvError as error:
            upload_error = str(error)
            data["upload"] = ""
        else:
            UPLOADS.discard(request, data.get("upload", ""))
            data["upload"] = upload.token
            data["column"] = str(upload.info.column)
            data["has_header"] = "on" if upload.info.has_header else ""
    elif data.get("upload"):
        upload = UPLOADS.get(request, data["upload"], account)
        if upload is None:
            upload_error = _("This file is no longer on the server: choose it again.")
            data["upload"] = ""

    upload_info = upload.info if upload else None
    if action == "remove_upload":
        # Back to the form as it was, without the file and without complaints yet.
        initial = {key: data.get(key) for key in data if key not in ("upload", "previewed")}
        return _render(request, ComposeForm(account=account, initial=initial))
    form = ComposeForm(data, account=account, upload_info=upload_info, upload_error=upload_error)
    if not form.is_valid():
        return _render(request, form, upload=upload)

    cleaned = form.cleaned_data
    fingerprint = form.fingerprint()
    if action == "confirm" and data.get("previewed") == fingerprint and upload is not None:
        # A CSV import: its preview is the one the user just saw; do not read it a third time.
        return _confirm(request, account, form, upload, compose_id)

    preview = _preview(request, account, form, upload, compose_id)
    if form.errors:
        # The preview's rejected rows explain an error such as "no number to send to".
        return _render(request, form, upload=upload, rejected=preview)
    if action == "confirm":
        if data.get("previewed") == fingerprint:
            if preview.single_recipient and not cleaned["name"]:
                return _confirm(
                    request, account, form, None, compose_id, recipient=preview.single_recipient
                )
            return _confirm(request, account, form, None, compose_id)
        notice = _("Something changed since the preview: check it again, then confirm.")
    else:
        notice = ""
    form.data["previewed"] = fingerprint
    return _render(
        request,
        form,
        upload=upload,
        preview=preview,
        notice=notice,
        when_text=when_text(form, account),
    )


def when_text(form: ComposeForm, account: Account) -> str:
    """The schedule in words, in the account's time zone."""
    cleaned = form.cleaned_data
    send_at, window_end = cleaned.get("send_at"), cleaned.get("window_end")

    tz = account.timezone
    if window_end is not None:
        if send_at is None:
            return _("From now until %(end)s (%(tz)s); what is not sent by then expires.") % {
                "end": local(window_end),
                "tz": tz,
            }
        return _("From %(start)s until %(end)s (%(tz)s); what is not sent by then expires.") % {
            "start": local(send_at),
            "end": local(window_end),
            "tz": tz,
        }
    if send_at is not None:
        return _("At %(time)s (%(tz)s).") % {"time": local(send_at), "tz": tz}
    return _("Now.")


def local(moment) -> str:
    """A time in the current time zone, as the current language writes one in a sentence."""
    # Translators: a date and time in a sentence, in Django's date format syntax.
    return formats.date_format(timezone.localtime(moment), pgettext("in a sentence", "Y-m-d H:i"))


def _recipients(form: ComposeForm, upload: Upload | None, reached: Reached):
    """Numbers typed or uploaded, then the contacts of the lists and segments chosen; `reached`
    follows how far they have been read."""
    cleaned = form.cleaned_data
    if upload is not None:
        personal = merge.has_fields(cleaned["text"])
        for item in upload.recipients(cleaned["column"], cleaned["has_header"], personal):
            reached.done = item[0]
            yield item
    else:
        for item in bulk.pasted_recipients(cleaned["recipients"]):
            reached.done += 1
            yield item
    for item in audience.recipients(form.account, cleaned["lists"], cleaned["segments"]):
        reached.done += 1
        yield item


def _preview(
    request: HttpRequest,
    account: Account,
    form: ComposeForm,
    upload: Upload | None,
    compose_id: str,
) -> bulk.Preview | None:
    """The preview; what makes it unsendable is added to the form's errors (None when the file
    cannot be read)."""
    reached = Reached()
    try:
        preview = bulk.preview(
            account,
            text=form.cleaned_data["text"],
            recipients=_recipients(form, upload, reached),
            progress=_progress(request, compose_id, "check", _extent(form, upload), reached),
        )
    except bulk.CsvError as error:
        form.add_error("csv_file", str(error))
        return None
    field = "column" if upload else "recipients"
    if not preview.recipients:
        left_out = _left_out(
            ("invalid", preview.rejected_count),
            ("duplicates", preview.duplicates),
            ("opted_out", preview.opted_out),
        )
        if left_out:
            form.add_error(
                field, _("No number to send to (%(left_out)s).") % {"left_out": left_out}
            )
        else:
            form.add_error(field, _("No number to send to."))
    elif preview.recipients > 1 and not form.cleaned_data["name"]:
        form.add_error(
            "name",
            _("Name the campaign: it goes to %(n)s numbers.") % {"n": intcomma(preview.recipients)},
        )
    return preview


def _left_out(*counts: tuple[str, int]) -> str:
    """What was left out of a send, in words, in the order given ("" for nothing): each count
    is ("invalid" | "duplicates" | "opted_out", how many)."""
    words = {
        "invalid": lambda n: ngettext("%(n)s invalid", "%(n)s invalid", n),
        "duplicates": lambda n: ngettext("%(n)s duplicate", "%(n)s duplicates", n),
        "opted_out": lambda n: ngettext("%(n)s opted out", "%(n)s opted out", n),
    }
    parts = [words[kind](n) % {"n": intcomma(n)} for kind, n in counts if n]
    return ", ".join(parts)


def _confirm_key(request: HttpRequest, account: Account, compose_id: str) -> str:
    """Where a confirmation is claimed: per account and session (a double click comes from one
    session; the form's id alone is chosen by the browser), the session key itself hashed."""
    if not request.session.session_key:
        request.session.save()
    session = hashlib.sha256(request.session.session_key.encode()).hexdigest()[:24]
    return f"smshub:compose-confirm:{account.pk}:{session}:{compose_id}"


def _confirm(
    request: HttpRequest,
    account: Account,
    form: ComposeForm,
    upload: Upload | None,
    compose_id: str,
    recipient: str | None = None,
) -> HttpResponse:
    """Send what was confirmed (to `recipient` alone, or as a campaign), once per form.

    The session remembers confirmations too, but it is saved only when a request ends: two
    confirmations sent at once (a double click) would both pass it. So the confirmation is
    claimed in the cache first, where one request only can take it; it then holds where the
    result is, and is released if sending fails, so that the form can be confirmed again.
    """
    key = _confirm_key(request, account, compose_id)
    if not cache.add(key, CLAIMED, CONFIRM_SECONDS):
        return _sent_already(request, account, compose_id)
    try:
        if recipient is not None:
            return _send_one(request, account, form, recipient, compose_id)
        return _create_campaign(request, account, form, upload, compose_id)
    except BaseException:
        cache.delete(key)
        raise


def _sent_already(request: HttpRequest, account: Account, compose_id: str) -> HttpResponse:
    """The answer to a confirmation given before: what it became (once known)."""
    url = request.session.get(DONE_KEY, {}).get(compose_id) or cache.get(
        _confirm_key(request, account, compose_id)
    )
    if url and url != CLAIMED:
        messages.info(request, _("This was sent already (once): here is what it became."))
        return _redirect(request, url)
    messages.info(
        request,
        _(
            "This is being sent already (once): it shows under Campaigns or in the recent "
            "messages once it is in."
        ),
    )
    return _redirect(request, reverse("campaigns:compose"))


def _send_one(
    request: HttpRequest, account: Account, form: ComposeForm, recipient: str, compose_id: str
) -> HttpResponse:
    cleaned = form.cleaned_data
    # A text with merge fields is written out for this recipient (its contact's values).
    text = personal.Personaliser(account, cleaned["text"]).write([(recipient, None)])[0].text
    message = enqueue_message(
        account,
        recipient=recipient,
        text=text,
        sender=cleaned["sender"],
        category=cleaned["category"],
        send_at=cleaned["send_at"],
        window_end=cleaned["window_end"],
        created_by=request.user,
    )
    if message.status == Message.Status.SCHEDULED:
        messages.success(
            request,
            _("Message to %(number)s scheduled for %(time)s.")
            % {"number": message.recipient, "time": local(message.scheduled_at)},
        )
    else:
        messages.success(
            request, _("Message to %(number)s queued.") % {"number": message.recipient}
        )
    return _done(request, compose_id, reverse("campaigns:compose"))


def _create_campaign(
    request: HttpRequest,
    account: Account,
    form: ComposeForm,
    upload: Upload | None,
    compose_id: str,
) -> HttpResponse:
    cleaned = form.cleaned_data
    reached = Reached()
    try:
        result = bulk.create_campaign(
            account,
            name=cleaned["name"],
            text=cleaned["text"],
            recipients=_recipients(form, upload, reached),
            sender=cleaned["sender"],
            category=cleaned["category"],
            send_at=cleaned["send_at"],
            window_end=cleaned["window_end"],
            created_by=request.user,
            progress=_progress(request, compose_id, "import", _extent(form, upload), reached),
        )
    except bulk.CsvError as error:
        # Nothing was created: the form can be confirmed again once the file is right.
        cache.delete(_confirm_key(request, account, compose_id))
        form.add_error("csv_file", str(error))
        return _render(request, form, upload=upload)
    if upload is not None:
        UPLOADS.discard(request, upload.token)
    campaign = result.campaign
    left_out = _left_out(
        ("duplicates", result.duplicates),
        ("opted_out", result.opted_out),
        ("invalid", result.rejected_count),
    )
    values = {"name": campaign.name, "n": intcomma(result.queued), "left_out": left_out}
    if campaign.status == campaign.Status.SCHEDULED:
        if left_out:
            summary = ngettext(
                "Campaign “%(name)s”: %(n)s message scheduled; left out: %(left_out)s.",
                "Campaign “%(name)s”: %(n)s messages scheduled; left out: %(left_out)s.",
                result.queued,
            )
        else:
            summary = ngettext(
                "Campaign “%(name)s”: %(n)s message scheduled.",
                "Campaign “%(name)s”: %(n)s messages scheduled.",
                result.queued,
            )
    elif left_out:
        summary = ngettext(
            "Campaign “%(name)s”: %(n)s message queued; left out: %(left_out)s.",
            "Campaign “%(name)s”: %(n)s messages queued; left out: %(left_out)s.",
            result.queued,
        )
    else:
        summary = ngettext(
            "Campaign “%(name)s”: %(n)s message queued.",
            "Campaign “%(name)s”: %(n)s messages queued.",
            result.queued,
        )
    messages.success(request, summary % values)
    return _done(request, compose_id, reverse("campaigns:campaign_detail", args=[campaign.pk]))


def _done(request: HttpRequest, compose_id: str, url: str) -> HttpResponse:
    done = request.session.get(DONE_KEY, {})
    done[compose_id] = url
    request.session[DONE_KEY] = dict(list(done.items())[-10:])
    cache.set(_confirm_key(request, request.membership.account, compose_id), url, CONFIRM_SECONDS)
    return _redirect(request, url)


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


# --- the live counter -------------------------------------------------------------------------


def highlight(text: str) -> list[tuple[str, bool]]:
    """The text in runs, each marked True when its characters force UCS-2."""
    runs: list[tuple[str, bool]] = []
    for char in text:
        forcing = char not in gsm.GSM7_CHARACTERS
        if runs and runs[-1][1] == forcing:
            runs[-1] = (runs[-1][0] + char, forcing)
        else:
            runs.append((char, forcing))
    return runs


@role_required(READ)
@require_POST
def text_counter(request: HttpRequest) -> HttpResponse:
    """The live counter under the text box: characters, encoding, segments, and the text with
    the characters that force UCS-2 highlighted."""
    text = request.POST.get("text", "")
    return render(
        request,
        "campaigns/compose.html#counter",
        {"analysis": gsm.analyze(text), "highlight": highlight(text)},
    )


@role_required(READ)
@require_GET
def compose_template(request: HttpRequest) -> HttpResponse:
    """The text box filled with the template chosen (this account's; none: left as it was)."""
    account = request.membership.account
    chosen = request.GET.get("template", "")
    template = (
        Template.objects.filter(account=account, pk=int(chosen)).first()
        if chosen.isdigit() and len(chosen) < 19
        else None
    )
    text = template.text if template is not None else request.GET.get("text", "")
    form = ComposeForm(account=account, initial={"text": text})
    return render(
        request,
        "campaigns/compose.html#text-field",
        {"form": form, "analysis": gsm.analyze(text), "highlight": highlight(text)},
    )
