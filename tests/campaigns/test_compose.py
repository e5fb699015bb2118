"""Compose: one number, a pasted list or a CSV upload; preview, then confirm."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns import uploads
from campaigns.models import Campaign, Membership, Message
from campaigns.services import bulk

from ..factories import (
    CategoryFactory,
    MembershipFactory,
    MessageFactory,
    OptOutFactory,
    SenderNameFactory,
)

pytestmark = pytest.mark.django_db

COMPOSE = reverse("campaigns:compose")
HTMX = {"HX-Request": "true"}


def next_january_15() -> date:
    """A winter day (Paris at UTC+1) less than a year ahead: times to send are at most that."""
    today = timezone.now().date()
    day = date(today.year, 1, 15)
    return day if day > today else date(today.year + 1, 1, 15)


JAN15 = next_january_15()


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.SMSHUB_UPLOAD_DIR = tmp_path / "uploads"
    return settings.SMSHUB_UPLOAD_DIR


def form(**data) -> dict:
    """A compose form as the browser posts it."""
    return {"when": "now", "compose_id": "test-compose-1", "text": "Hello", **data}


def preview(client, **data):
    response = client.post(COMPOSE, form(action="preview", **data))
    assert response.status_code == 200
    return response


def previewed(response) -> str:
    """The fingerprint the preview put in the form, to confirm exactly that preview."""
    match = re.search(r'name="previewed" value="([0-9a-f]+)"', response.content.decode())
    assert match, "the page shows no preview to confirm"
    return match.group(1)


def confirm(client, response, follow=True, **data):
    return client.post(
        COMPOSE, form(action="confirm", previewed=previewed(response), **data), follow=follow
    )


def upload(client, content: bytes, filename: str = "numbers.csv", **data):
    return client.post(
        COMPOSE,
        form(action="preview", csv_file=SimpleUploadedFile(filename, content, "text/csv"), **data),
    )


def token(response) -> str:
    match = re.search(r'name="upload" value="([^"]+)"', response.content.decode())
    assert match, "the page holds no upload"
    return match.group(1)


def test_login_is_required(client):
    response = client.get(COMPOSE)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_compose_page_offers_only_this_accounts_approved_senders(operator_client, account):
    SenderNameFactory(account=account, name="Clinic")
    SenderNameFactory(account=account, name="Pending1", status="pending")
    SenderNameFactory(name="Elsewhere")
    page = operator_client.get(COMPOSE).content.decode()
    assert "Clinic" in page
    assert "Pending1" not in page
    assert "Elsewhere" not in page


# --- one number --------------------------------------------------------------------------------


def test_one_number_is_previewed_then_sent_as_a_single_message(operator_client, account, operator):
    category = CategoryFactory(account=account)
    SenderNameFactory(account=account, name="Clinic")
    data = {
        "recipients": "+33 6 12 34 56 78",
        "text": "See you at 10:00 €",
        "sender": "Clinic",
        "category": category.pk,
    }
    shown = preview(operator_client, **data)
    page = shown.content.decode()
    assert "Check before sending" in page
    assert "+33612345678" in page
    assert "Confirm and send" in page
    assert not Message.objects.exists()  # a preview sends nothing

    response = confirm(operator_client, shown, **data)
    assert response.redirect_chain[-1][0] == COMPOSE
    message = Message.objects.get()
    assert message.campaign is None
    assert (message.account, message.recipient, message.sender) == (
        account,
        "+33612345678",
        "Clinic",
    )
    assert (message.category, message.created_by) == (category, operator)
    assert message.status == Message.Status.QUEUED
    assert (message.encoding, message.segments) == ("GSM-7", 1)
    page = response.content.decode()
    assert "Message to +33612345678 queued." in page
    assert f'id="status-{message.pk}"' in page


def test_a_confirmation_that_does_not_match_the_preview_shows_it_again(operator_client):
    shown = preview(operator_client, recipients="+33612345678")
    response = confirm(operator_client, shown, follow=False, recipients="+40722123456")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Something changed since the preview" in page
    assert "+40722123456" in page
    assert not Message.objects.exists()


def test_the_same_confirmation_twice_sends_once(operator_client):
    data = {"recipients": "+33612345678, +40722123456", "name": "Twice"}
    shown = preview(operator_client, **data)
    first = confirm(operator_client, shown, follow=False, **data)
    second = confirm(operator_client, shown, follow=False, **data)
    assert first.status_code == second.status_code == 302
    assert first.url == second.url
    page = operator_client.get(second.url).content.decode()
    assert "This was sent already (once)" in page
    assert Campaign.objects.count() == 1
    assert Message.objects.count() == 2


def test_two_confirmations_at_once_send_once(operator_client):
    """A double click sends the second confirmation before the first one's answer saved the
    session: the second request reads the session as it was before either confirmed."""
    data = {"recipients": "+33612345678, +40722123456", "name": "Double click"}
    shown = preview(operator_client, **data)
    before = dict(operator_client.session.items())
    first = confirm(operator_client, shown, follow=False, **data)
    session = operator_client.session
    session.clear()
    session.update(before)
    session.save()
    second = confirm(operator_client, shown, follow=False, **data)
    assert first.status_code == second.status_code == 302
    assert (
        second.url
        == first.url
        == reverse("campaigns:campaign_detail", args=[Campaign.objects.get().pk])
    )
    assert "This was sent already (once)" in operator_client.get(second.url).content.decode()
    assert Message.objects.count() == 2


def test_a_confirmation_arriving_while_the_first_is_still_sending_sends_nothing(
    operator_client, monkeypatch
):
    data = {"recipients": "+33612345678, +40722123456", "name": "Slow import"}
    shown = preview(operator_client, **data)
    # Another tab of the same browser: the same session, as saved before the first confirmation.
    other_tab = Client()
    other_tab.cookies[settings.SESSION_COOKIE_NAME] = operator_client.cookies[
        settings.SESSION_COOKIE_NAME
    ].value
    create_campaign = bulk.create_campaign
    answers = []

    def while_importing(*args, **kwargs):
        if not answers:
            answers.append(confirm(other_tab, shown, follow=False, **data))
        return create_campaign(*args, **kwargs)

    monkeypatch.setattr(bulk, "create_campaign", while_importing)
    first = confirm(operator_client, shown, follow=False, **data)
    [second] = answers
    assert first.status_code == second.status_code == 302
    assert first.url == reverse("campaigns:campaign_detail", args=[Campaign.objects.get().pk])
    assert second.url == COMPOSE
    assert "This is being sent already (once)" in other_tab.get(COMPOSE).content.decode()
    assert Message.objects.count() == 2


def test_a_confirmation_that_failed_can_be_confirmed_again(operator_client, upload_dir):
    response = upload(operator_client, CSV)
    data = {"upload": token(response), "column": "1", "has_header": "on", "name": "Retry"}
    shown = preview(operator_client, **data)
    [saved] = upload_dir.iterdir()
    saved.write_bytes(CSV + b'"' + b"x" * 200_000 + b'",+33699999999\n')  # unreadable
    failed = confirm(operator_client, shown, follow=False, **data)
    assert failed.status_code == 200
    assert "cannot be read as CSV" in failed.content.decode()
    assert not Campaign.objects.exists()
    saved.write_bytes(CSV)
    response = confirm(operator_client, shown, **data)
    assert "Campaign “Retry”: 2 messages queued" in response.content.decode()
    assert Campaign.objects.get().messages.count() == 2


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"recipients": "0612"}, "No number to send to (1 invalid)"),
        ({"recipients": "+33 6 12"}, "No number to send to (1 invalid)"),
        ({"recipients": ""}, "Enter at least one number, choose a list, or upload a CSV file."),
        ({"recipients": "+33612345678", "text": ""}, "Write the message to send, or choose"),
        ({"recipients": "+33612345678", "text": "   "}, "Write the message to send"),
        ({"recipients": "+33612345678", "sender": "NotMine"}, "Select a valid choice"),
        ({"recipients": "+33612345678", "text": "x" * 1531}, "at most 1530 characters"),
        ({"recipients": "+33612345678, +40722123456"}, "Name the campaign: it goes to 2"),
    ],
)
def test_bad_input_gets_an_error_next_to_the_field_and_sends_nothing(operator_client, data, error):
    response = preview(operator_client, **data)
    page = response.content.decode()
    assert error in page
    assert 'aria-invalid="true"' in page
    assert "error-summary" in page
    assert "Check before sending" not in page
    assert not Message.objects.exists()


def test_an_invalid_number_is_explained_with_its_line(operator_client):
    page = preview(operator_client, recipients="0612").content.decode()
    assert "Not a phone number. Start it with + and the country code." in page
    assert '<td class="line">1</td>' in page


def test_another_accounts_category_or_sender_cannot_be_used(operator_client):
    elsewhere = CategoryFactory()
    SenderNameFactory(name="Elsewhere")
    for data in ({"category": elsewhere.pk}, {"sender": "Elsewhere"}):
        response = preview(operator_client, recipients="+33612345678", **data)
        assert "Select a valid choice" in response.content.decode()
    assert not Message.objects.exists()


def test_a_viewer_sees_no_form_and_cannot_send(client, account):
    viewer = MembershipFactory(account=account, role=Membership.Role.VIEWER).user
    client.force_login(viewer)
    page = client.get(COMPOSE).content.decode()
    assert "your role is viewer" in page
    assert 'id="compose-form"' not in page
    shown = client.post(COMPOSE, form(action="preview", recipients="+33612345678"))
    assert shown.status_code == 403
    sent = client.post(COMPOSE, form(action="confirm", recipients="+33612345678", previewed="x"))
    assert sent.status_code == 403
    assert not Message.objects.exists() and not Campaign.objects.exists()


def test_a_user_in_no_account_is_told_so(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("lonely", password="x" * 12))
    response = client.get(COMPOSE)
    assert response.status_code == 403
    assert "not a member of any account" in response.content.decode()


# --- a pasted list -----------------------------------------------------------------------------

LIST = "+33612345678\n0612\n+33 6 12 34 56 78; +40722123456\n+447911123456, +33 6 12"


def test_a_pasted_list_is_previewed_with_what_is_left_out_then_sent_as_a_campaign(
    operator_client, account, operator
):
    OptOutFactory(account=account, number="+447911123456")
    data = {"recipients": LIST, "name": "Flu jabs", "text": "Bună ziua! " * 7}  # 77 characters
    shown = preview(operator_client, **data)
    page = shown.content.decode()
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>(?:<strong>)?([^<]+)", page))
    assert facts["Recipients"].strip() == "2"
    assert facts["Duplicates left out"] == "1"
    assert facts["Opted out, left out"] == "1"
    assert facts["Invalid, left out"].strip() == "2"
    assert facts["Each message"] == "2 SMS (UCS-2)"
    assert facts["In all"] == "4 SMS"
    assert "No price is set for this account, so no estimate: 4 SMS." in page
    rows = re.findall(r'<td class="line">(\d+)</td><td class="value">([^<]+)</td>', page)
    assert rows == [("2", "0612"), ("4", "+33 6 12")]
    assert "Confirm: send to 2" in page

    response = confirm(operator_client, shown, **data)
    campaign = Campaign.objects.get()
    assert response.redirect_chain[-1][0] == reverse(
        "campaigns:campaign_detail", args=[campaign.pk]
    )
    assert (campaign.account, campaign.name, campaign.created_by) == (account, "Flu jabs", operator)
    assert campaign.status == Campaign.Status.RUNNING
    assert sorted(campaign.messages.values_list("recipient", flat=True)) == [
        "+33612345678",
        "+40722123456",
    ]
    assert (
        "Campaign “Flu jabs”: 2 messages queued; left out: 1 duplicate, 1 opted out, 2 invalid."
        in response.content.decode()
    )


def test_the_preview_estimates_the_cost_when_the_account_has_a_price(operator_client, account):
    account.price_per_segment = Decimal("0.045")
    account.price_currency = "EUR"
    account.save()
    page = preview(
        operator_client, recipients="+33612345678, +40722123456", name="Priced"
    ).content.decode()
    assert "0.09 EUR" in page
    assert "at 0.0450 EUR per SMS" in page


def test_a_send_time_is_read_in_the_accounts_timezone(operator_client, account):
    assert account.timezone == "Europe/Paris"
    data = {
        "recipients": "+33612345678",
        "text": "Later",
        "when": "window",
        "send_at": f"{JAN15}T10:00",
        "window_end": f"{JAN15}T12:00",
    }
    shown = preview(operator_client, **data)
    assert f"From {JAN15} 10:00 until {JAN15} 12:00 (Europe/Paris)" in shown.content.decode()
    response = confirm(operator_client, shown, **data)
    message = Message.objects.get()
    assert message.status == Message.Status.SCHEDULED
    assert message.scheduled_at.isoformat() == f"{JAN15}T09:00:00+00:00"  # Paris is UTC+1
    assert message.window_end.isoformat() == f"{JAN15}T11:00:00+00:00"
    assert f"scheduled for {JAN15} 10:00" in response.content.decode()


def test_a_campaign_at_a_time_is_scheduled(operator_client):
    data = {"recipients": "+33612345678\n+40722123456", "name": "Later", "when": "at"}
    data["send_at"] = f"{JAN15}T10:00"
    data["window_end"] = f"{JAN15}T09:00"  # ignored: no window when sending at a time
    shown = preview(operator_client, **data)
    assert f"At {JAN15} 10:00 (Europe/Paris)." in shown.content.decode()
    confirm(operator_client, shown, **data)
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert set(campaign.messages.values_list("status", "window_end")) == {
        (Message.Status.SCHEDULED, None)
    }


def test_send_now_ignores_times_left_in_the_form(operator_client):
    data = {"recipients": "+33612345678", "when": "now", "send_at": f"{JAN15}T10:00"}
    confirm(operator_client, preview(operator_client, **data), **data)
    message = Message.objects.get()
    assert (message.status, message.scheduled_at) == (Message.Status.QUEUED, None)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            {"when": "window", "send_at": f"{JAN15}T10:00", "window_end": f"{JAN15}T09:00"},
            "Must be after",
        ),
        ({"when": "window", "window_end": "2020-01-01T09:00"}, "already passed"),
        ({"when": "window"}, "Choose the latest time to send."),
        ({"when": "at"}, "Choose when to send."),
        ({"when": "at", "send_at": "2020-01-01T09:00"}, "This time has passed"),
        ({"when": "at", "send_at": "tomorrow"}, "Enter a valid date/time"),
        ({"when": "at", "send_at": "9999-12-31T23:59"}, "Too far ahead"),
        ({"when": "window", "window_end": "9999-12-31T23:59"}, "Too far ahead"),
        (
            {"when": "window", "send_at": "9999-12-31T23:58", "window_end": "9999-12-31T23:59"},
            "Too far ahead",
        ),
        (
            {
                "when": "at",
                "send_at": (timezone.now() + timedelta(days=370)).strftime("%Y-%m-%dT%H:%M"),
            },
            "within a year",
        ),
        ({"when": "later"}, "Select a valid choice"),
    ],
)
def test_bad_schedules_are_form_errors(operator_client, data, error):
    response = preview(operator_client, recipients="+33612345678", **data)
    assert error in response.content.decode()
    assert "Check before sending" not in response.content.decode()


@pytest.mark.parametrize("when", ["at", "window"])
def test_a_far_time_west_of_utc_is_a_form_error_not_a_500(operator_client, account, when):
    """9999-12-31 23:59 in New York is in year 10000 in UTC: a time Python cannot hold."""
    account.timezone = "America/New_York"
    account.save()
    data = {"when": when, "send_at": "9999-12-31T23:58", "window_end": "9999-12-31T23:59"}
    shown = preview(operator_client, recipients="+33612345678", **data)
    response = operator_client.post(COMPOSE, form(action="confirm", previewed="x" * 32, **data))
    for page in (shown, response):
        assert page.status_code == 200
        assert "Too far ahead: choose a time within a year from now." in page.content.decode()
    assert not Message.objects.exists()


# --- a CSV upload ------------------------------------------------------------------------------

CSV = (
    b"Name;Mobile;Home\n"
    b"Ana;+40 722 123 456;+33 1 23 45 67 89\n"
    b"Bob;0612;\n"
    b"Cem;+40722123456;\n"
    b"Dan;+33612345678;\n"
    b"Eve;;\n"
)


def test_a_csv_upload_offers_a_column_picker_and_reports_bad_rows_with_their_lines(
    operator_client, account, upload_dir
):
    response = upload(operator_client, CSV, filename="Patients.csv")
    page = response.content.decode()
    assert "Patients.csv" in page
    assert '<option value="1" selected>B: Mobile (e.g. +40 722 123 456)</option>' in page
    assert "Name the campaign: an upload sends to a list." in page
    [saved] = upload_dir.iterdir()
    assert saved.read_bytes() == CSV

    data = {"upload": token(response), "column": "1", "has_header": "on", "name": "Patients"}
    shown = preview(operator_client, **data)
    page = shown.content.decode()
    rows = re.findall(r'<td class="line">(\d+)</td><td class="value">([^<]+)</td>', page)
    assert rows == [("3", "0612"), ("6", "(empty)")]
    assert re.search(r"<dt>Recipients</dt><dd><strong>2</strong>", page)
    assert re.search(r"<dt>Duplicates left out</dt><dd>1</dd>", page)

    response = confirm(operator_client, shown, **data)
    campaign = Campaign.objects.get()
    assert sorted(campaign.messages.values_list("recipient", flat=True)) == [
        "+33612345678",
        "+40722123456",
    ]
    assert "left out: 1 duplicate, 2 invalid" in response.content.decode()
    assert not list(upload_dir.iterdir())  # the file is gone once imported
    progress = operator_client.get(
        reverse("campaigns:compose_progress", args=["test-compose-1"]), headers=HTMX
    ).content.decode()
    assert "Writing the messages" in progress
    assert "6 of 6 lines" in progress


def test_another_column_can_be_chosen(operator_client):
    response = upload(operator_client, CSV)
    data = {"upload": token(response), "column": "2", "has_header": "on", "name": "Home"}
    page = preview(operator_client, **data).content.decode()
    assert re.search(r"<dt>Recipients</dt><dd><strong>1</strong>", page)
    assert "+33123456789" in page
    assert page.count("No number on this line.") == 4


def test_a_csv_and_a_list_together_are_refused(operator_client):
    response = upload(operator_client, CSV, recipients="+33612345678")
    assert "Give the numbers here or in a CSV file, not both" in response.content.decode()


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"PK\x03\x04 a workbook", "This is a spreadsheet workbook, not CSV"),
        (b"", "The file is empty."),
        (b"\x00\x00\x00", "This is not a text file"),
    ],
)
def test_a_file_that_is_not_csv_is_refused_next_to_the_field(
    operator_client, content, error, upload_dir
):
    response = upload(operator_client, content)
    page = response.content.decode()
    assert error in page
    assert 'id="id_csv_file_error"' in page
    assert not upload_dir.exists() or not list(upload_dir.iterdir())


def test_a_file_too_large_is_refused(operator_client, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_BYTES", 50)
    page = upload(operator_client, CSV).content.decode()
    assert "at most 50\xa0bytes can be uploaded" in page


def test_an_upload_of_another_session_cannot_be_used(operator_client, client, account):
    response = upload(operator_client, CSV)
    other = MembershipFactory(account=account).user
    client.force_login(other)
    data = {"upload": token(response), "column": "1", "has_header": "on", "name": "Theirs"}
    page = preview(client, **data).content.decode()
    assert "This file is no longer on the server: choose it again." in page
    assert "Check before sending" not in page


def test_an_upload_can_be_removed(operator_client, upload_dir):
    response = upload(operator_client, CSV, name="Gone")
    page = operator_client.post(
        COMPOSE, form(action="remove_upload", upload=token(response), name="Gone")
    ).content.decode()
    assert not list(upload_dir.iterdir())
    assert 'name="upload" value=' not in page
    assert 'value="Gone"' in page  # what was typed stays
    assert "error-summary" not in page


def test_progress_of_a_check_is_kept_for_the_page_that_asked(operator_client, client, account):
    upload(operator_client, CSV, name="Progress")
    url = reverse("campaigns:compose_progress", args=["test-compose-1"])
    page = operator_client.get(url, headers=HTMX).content.decode()
    assert "Checking the numbers" in page
    assert 'max="6" value="6"' in page
    assert "6 of 6 lines" in page
    other = MembershipFactory(account=account).user
    client.force_login(other)
    assert "Checking" not in client.get(url, headers=HTMX).content.decode()
    cache.clear()


# --- htmx ----------------------------------------------------------------------------------------


def test_with_htmx_the_form_answers_with_its_card_and_confirms_with_a_redirect(operator_client):
    data = {"recipients": "+33612345678"}
    shown = operator_client.post(COMPOSE, form(action="preview", **data), headers=HTMX)
    page = shown.content.decode()
    assert "<html" not in page
    assert page.lstrip().startswith('<section class="card" id="compose-card"')
    assert "Check before sending" in page
    done = operator_client.post(
        COMPOSE, form(action="confirm", previewed=previewed(shown), **data), headers=HTMX
    )
    assert done.headers["HX-Redirect"] == COMPOSE
    assert Message.objects.count() == 1


def test_live_counter_reports_encoding_segments_and_highlights_ucs2(operator_client):
    url = reverse("campaigns:text_counter")
    gsm = operator_client.post(url, {"text": "a" * 161}, headers=HTMX).content.decode()
    assert "161 characters" in gsm
    assert "GSM-7" in gsm
    assert "2 SMS" in gsm
    assert "<mark>" not in gsm
    unicode = operator_client.post(url, {"text": "Bună ziua ✓"}, headers=HTMX).content.decode()
    assert "UCS-2" in unicode
    assert "because of: <mark>ă</mark> <mark>✓</mark>" in unicode
    assert (
        '<p class="highlighted" aria-hidden="true">Bun<mark>ă</mark> ziua <mark>✓</mark></p>'
        in (unicode)
    )


# --- messages pages reached from compose --------------------------------------------------------


def test_message_pages_of_another_account_are_404(client, account, other_account_user):
    message = MessageFactory(account=account)
    client.force_login(other_account_user)
    for name in ("campaigns:message_detail", "campaigns:message_status"):
        assert client.get(reverse(name, args=[message.pk])).status_code == 404


def test_status_badge_polls_until_final(operator_client, account):
    message = MessageFactory(account=account, status=Message.Status.SENT)
    url = reverse("campaigns:message_status", args=[message.pk])
    assert 'hx-trigger="every 5s"' in operator_client.get(url).content.decode()
    message.status = Message.Status.DELIVERED
    message.save()
    badge = operator_client.get(url).content.decode()
    assert "Delivered" in badge
    assert "hx-trigger" not in badge


def test_switching_account_only_to_ones_you_belong_to(operator_client, operator, account):
    second = MembershipFactory(user=operator).account
    stranger = MembershipFactory().account
    switch = reverse("campaigns:switch_account")
    assert operator_client.post(switch, {"account": stranger.pk}).status_code == 404
    operator_client.post(switch, {"account": second.pk})
    MessageFactory(account=second, text="In the second account")
    MessageFactory(account=account, text="In the first account")
    page = operator_client.get(COMPOSE).content.decode()
    assert "In the second account" in page
    assert "In the first account" not in page
