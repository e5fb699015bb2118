"""Sending, reading, listing and canceling messages through the API, and the validation errors
(field by field, in the one documented shape) that leave nothing behind."""

import zoneinfo
from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone
from pydantic import ValidationError, field_validator

from campaigns.api.schemas import Input
from campaigns.models import Campaign, Message, MessageEvent
from tests.factories import (
    CampaignFactory,
    CategoryFactory,
    MessageFactory,
    OptOutFactory,
    ReplyFactory,
    SenderNameFactory,
)

from .conftest import error_of

Status = Message.Status


def test_send_one_number(api, account):
    category = CategoryFactory(account=account, tag="appointments")
    SenderNameFactory(account=account, name="Clinic")
    response = api.post(
        "/messages",
        {
            "to": "+33 6 12 34 56 78",
            "text": "See you at 10:00",
            "sender": "Clinic",
            "category": "appointments",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["campaign"] is None and body["queued"] == 1
    sent = body["message"]
    message = Message.objects.get()
    assert sent["id"] == message.pk
    assert (sent["to"], sent["status"], sent["sender"], sent["category"]) == (
        "+33612345678",
        "queued",
        "Clinic",
        "appointments",
    )
    assert (sent["encoding"], sent["segments"]) == ("GSM-7", 1)
    assert message.account == account and message.category == category
    event = message.events.get()
    assert event.source == MessageEvent.Source.API and event.to_status == Status.QUEUED


def test_scheduled_time_without_offset_is_in_the_accounts_time_zone(api, account):
    tomorrow = (timezone.now() + timedelta(days=1)).date()
    response = api.post(
        "/messages",
        {
            "to": "+33612345678",
            "text": "Tomorrow",
            "send_at": f"{tomorrow}T09:30:00",
            "window_end": f"{tomorrow}T11:00:00+02:00",
        },
    )
    assert response.status_code == 201, response.content
    message = Message.objects.get()
    paris = datetime.combine(tomorrow, datetime.min.time()).replace(
        hour=9, minute=30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")
    )
    assert message.status == Status.SCHEDULED
    assert message.scheduled_at == paris
    assert response.json()["message"]["status"] == "scheduled"


def last_sunday_ahead(month: int) -> date:
    """The next last Sunday of `month` (March or October: when Paris changes its clocks)."""
    today = timezone.now().date()
    for year in (today.year, today.year + 1):
        day = date(year, month, 31)
        day -= timedelta(days=(day.weekday() + 1) % 7)
        if day > today + timedelta(days=1):
            return day
    raise AssertionError("there is one every year")


SPRING, AUTUMN = last_sunday_ahead(3), last_sunday_ahead(10)


@pytest.mark.parametrize(
    ("field", "local", "error"),
    [
        (
            "send_at",
            f"{SPRING}T02:30:00",
            f"{SPRING} 02:30 does not exist in Europe/Paris: the clocks go forward then. "
            "Choose another time, or give this one with its UTC offset.",
        ),
        (
            "window_end",
            f"{AUTUMN}T02:30:00",
            f"{AUTUMN} 02:30 happens twice in Europe/Paris: the clocks go back then. Give it "
            f"with its UTC offset: {AUTUMN}T02:30:00+02:00 for the first, "
            f"{AUTUMN}T02:30:00+01:00 for the second.",
        ),
    ],
)
def test_a_local_time_the_clocks_skip_or_repeat_is_refused(api, account, field, local, error):
    response = api.post("/messages", {"to": "+33612345678", "text": "Hi", field: local})
    assert response.status_code == 422, response.content
    assert error_of(response)["fields"] == {field: [error]}
    assert not Message.objects.exists()
    # With its offset, the same wall time is one moment: accepted.
    response = api.post("/messages", {"to": "+33612345678", "text": "Hi", field: local + "+01:00"})
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("field", ["send_at", "window_end"])
@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59",
        "9999-12-31T23:59:59-05:00",
        (timezone.now() + timedelta(days=367)).isoformat(),
    ],
)
def test_a_time_to_send_more_than_a_year_ahead_is_refused(api, field, when):
    response = api.post("/messages", {"to": "+33612345678", "text": "Hi", field: when})
    assert response.status_code == 422, response.content
    assert error_of(response)["fields"] == {
        field: ["Too far ahead: choose a time within a year from now."]
    }
    assert not Message.objects.exists()
    # A year ahead, less a day, is fine.
    when = timezone.now() + timedelta(days=365)
    response = api.post("/messages", {"to": "+33612345678", "text": "Hi", field: when.isoformat()})
    assert response.status_code == 201, response.content
    message = Message.objects.get()
    assert (message.scheduled_at if field == "send_at" else message.window_end) == when


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00", "0001-01-01T00:00:00+23:59", "1999-12-31T23:59:59Z"]
)
def test_a_time_to_send_long_past_means_now_but_no_window_ends_then(api, when):
    response = api.post("/messages", {"to": "+33612345678", "text": "Now", "send_at": when})
    assert response.status_code == 201, response.content
    message = Message.objects.get()
    assert (message.status, message.scheduled_at, message.window_start) == ("queued", None, None)
    response = api.post("/messages", {"to": "+33612345678", "text": "Hi", "window_end": when})
    assert error_of(response)["fields"] == {"window_end": ["This time has already passed."]}


@pytest.mark.parametrize(
    "when", [1893456000, "1893456000", "2030-05-01", "2030-05-01 09:00:00", "2030-13-01T09:00:00Z"]
)
def test_a_time_is_written_as_rfc_3339(api, when):
    response = api.post("/messages", {"to": "+33612345678", "text": "Hi", "send_at": when})
    assert response.status_code == 422, response.content
    [message] = error_of(response)["fields"]["send_at"]
    assert "Give a time as 2030-05-01T09:00:00+02:00 (RFC 3339)" in message
    assert not Message.objects.exists()


@pytest.mark.parametrize("path", ["/messages", "/replies"])
@pytest.mark.parametrize(
    ("since", "everything"),
    [
        ("0001-01-01T00:00:00", True),
        ("0001-01-01T00:00:00+23:59", True),
        ("9999-12-31T23:59:59-05:00", False),
        ("9999-12-31T23:59:59", False),
    ],
)
def test_since_far_in_the_past_or_future_is_as_if_2000_or_3000(
    api, account, path, since, everything
):
    message = MessageFactory(account=account)
    ReplyFactory(account=account, message=message)
    response = api.get(path, {"since": since})
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == (1 if everything else 0)


def test_send_to_many_makes_a_campaign(api, account):
    OptOutFactory(account=account, number="+33612345679")
    response = api.post(
        "/messages",
        {
            "to": ["+33612345678", "+33 6 12 34 56 78", "+33612345679", "+40721234567"],
            "text": "Sale today",
            "campaign": "Spring sale",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["queued"], body["duplicates"], body["opted_out"]) == (2, 1, 1)
    assert body["message"] is None
    campaign = Campaign.objects.get()
    assert body["campaign"]["id"] == campaign.pk and campaign.name == "Spring sale"
    assert body["campaign"]["counts"]["queued"] == 2 and body["campaign"]["counts"]["total"] == 2
    assert sorted(campaign.messages.values_list("recipient", flat=True)) == [
        "+33612345678",
        "+40721234567",
    ]
    assert set(MessageEvent.objects.values_list("source", flat=True)) == {"api"}

    shown = api.get(f"/campaigns/{campaign.pk}").json()
    assert shown["name"] == "Spring sale" and shown["counts"]["total"] == 2


def test_one_opted_out_number_is_recorded_blocked_and_not_sent(api, account):
    OptOutFactory(account=account, number="+33612345678")
    response = api.post("/messages", {"to": "+33612345678", "text": "Hi"})
    assert response.status_code == 201
    body = response.json()
    assert (body["queued"], body["opted_out"]) == (0, 1)
    assert body["message"]["status"] == "blocked" and body["message"]["error_code"] == "opted_out"
    message = Message.objects.get()
    assert message.status == Status.BLOCKED and "opted out" in message.error_reason


def test_a_list_of_one_or_a_campaign_name_makes_a_campaign(api, api_key):
    api.post("/messages", {"to": ["+33612345678"], "text": "One"})
    api.post("/messages", {"to": "+33612345678", "text": "Two", "campaign": "Named"})
    names = sorted(Campaign.objects.values_list("name", flat=True))
    assert names == ["API: Booking site", "Named"]
    assert Message.objects.filter(campaign__isnull=False).count() == 2


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"to": "0612345678", "text": "Hi"}, {"to"}),
        ({"to": ["+33612345678", "+33 1", "+1 2"], "text": "Hi"}, {"to.1", "to.2"}),
        ({"to": ["+33612345678", "nope"], "text": "Hi"}, {"to.1"}),
        ({"to": [], "text": "Hi"}, {"to"}),
        ({"to": "+33612345678", "text": "   "}, {"text"}),
        ({"to": "+33612345678", "text": ""}, {"text"}),
        ({"to": "+33612345678", "text": "x" * 1531}, {"text"}),
        ({"to": "+33612345678", "text": "a\u0000b"}, {"text"}),
        ({"to": "+33612345678"}, {"text"}),
        ({"to": "+33612345678", "text": "Hi", "sender": "Unknown"}, {"sender"}),
        ({"to": "+33612345678", "text": "Hi", "sender": "Pending"}, {"sender"}),
        ({"to": "+33612345678", "text": "Hi", "category": "theirs"}, {"category"}),
        (
            {"to": "+33612345678", "text": "Hi", "window_end": "2020-01-01T00:00:00Z"},
            {"window_end"},
        ),
        (
            {
                "to": "+33612345678",
                "text": "Hi",
                "send_at": f"{SPRING}T10:00:00Z",
                "window_end": f"{SPRING}T09:00:00Z",
            },
            {"window_end"},
        ),
        ({"to": "+33612345678", "text": "Hi", "send_at": "tomorrow"}, {"send_at"}),
        ({"to": "+33612345678", "text": "Hi", "campaign": "  "}, {"campaign"}),
        ({"to": "+33612345678", "text": "Hi", "recipient": "+33612345678"}, {"recipient"}),
        ({"to": 33612345678, "text": "Hi"}, {"to"}),
    ],
    ids=[
        "national-number",
        "bad-in-list",
        "not-international-in-list",
        "empty-list",
        "blank-text",
        "empty-text",
        "too-long",
        "nul",
        "no-text",
        "unknown-sender",
        "pending-sender",
        "other-accounts-category",
        "window-passed",
        "window-before-send",
        "bad-time",
        "blank-campaign",
        "unknown-field",
        "number-not-string",
    ],
)
def test_invalid_send_is_422_field_by_field_and_sends_nothing(
    api, account, other_account, body, fields
):
    SenderNameFactory(account=account, name="Pending", status="pending")
    SenderNameFactory(account=other_account, name="Unknown")
    CategoryFactory(account=other_account, tag="theirs")
    response = api.post("/messages", body)
    assert response.status_code == 422, response.content
    error = error_of(response)
    assert error["code"] == "invalid"
    assert set(error["fields"]) == fields, error
    assert not Message.objects.exists() and not Campaign.objects.exists()


def test_an_input_is_checked_once_and_still_refuses_unknown_fields():
    # ninja's schemas check an input with unknown fields refused twice (once as given, once
    # wrapped for attribute access); the API's inputs come from JSON and are checked once.
    checked = []

    class Probe(Input):
        text: str

        @field_validator("text")
        @classmethod
        def count(cls, value: str) -> str:
            checked.append(value)
            return value

    assert Probe.model_validate({"text": "hi"}).text == "hi"
    assert checked == ["hi"]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Probe.model_validate({"text": "hi", "txt": "typo"})


def test_field_messages_say_what_is_wrong(api):
    response = api.post(
        "/messages", {"to": ["+33612345678", "+33 1"], "text": "Hi", "sender": "Nope"}
    )
    fields = error_of(response)["fields"]
    assert fields["to.1"] == ["“+33 1” is not a phone number."]
    assert "not an approved sender name" in fields["sender"][0]
    fields = error_of(api.post("/messages", {"to": "06 12 ab", "text": " \u3000"}))["fields"]
    assert fields == {
        "to": [
            "Give a phone number: digits, spaces, dots, dashes or brackets, with + (or 00) and "
            "the country code (+33612345678), or a national number of the account's country."
        ],
        "text": ["Write something: not only spaces (and no NUL character)."],
    }


def test_body_that_is_not_json_is_400(api):
    response = api.post("/messages", raw="{not json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_request"


def test_get_message(api, account):
    message = MessageFactory(account=account, status=Status.DELIVERED, text="Hi")
    response = api.get(f"/messages/{message.pk}")
    assert response.status_code == 200
    assert response.json()["status"] == "delivered" and response.json()["text"] == "Hi"


def test_another_accounts_message_or_campaign_is_404(api, other_account):
    message = MessageFactory(account=other_account, status=Status.QUEUED)
    campaign = CampaignFactory(account=other_account)
    for response in [
        api.get(f"/messages/{message.pk}"),
        api.post(f"/messages/{message.pk}/cancel"),
        api.get(f"/campaigns/{campaign.pk}"),
        api.get("/messages/999999"),
    ]:
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
    message.refresh_from_db()
    assert message.status == Status.QUEUED


def test_an_id_out_of_range_is_422_not_500(api):
    response = api.get(f"/messages/{2**64}")
    assert response.status_code == 422
    assert "message_id" in error_of(response)["fields"]


def test_list_is_newest_first_filtered_and_paginated_by_cursor(api, account, other_account):
    old = MessageFactory(account=account, status=Status.SENT)
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    mine = [MessageFactory(account=account, status=Status.QUEUED) for _ in range(5)]
    MessageFactory(account=other_account, status=Status.QUEUED)

    first = api.get("/messages", {"status": "queued", "limit": 2}).json()
    assert [m["id"] for m in first["results"]] == [mine[4].pk, mine[3].pk]
    second = api.get(
        "/messages", {"status": "queued", "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    third = api.get(
        "/messages", {"status": "queued", "limit": 2, "cursor": second["next_cursor"]}
    ).json()
    assert [m["id"] for m in second["results"]] == [mine[2].pk, mine[1].pk]
    assert [m["id"] for m in third["results"]] == [mine[0].pk]
    assert third["next_cursor"] is None

    since = (timezone.now() - timedelta(days=1)).isoformat()
    recent = api.get("/messages", {"since": since}).json()["results"]
    assert {m["id"] for m in recent} == {m.pk for m in mine}
    assert len(api.get("/messages").json()["results"]) == 6


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "²"}, "cursor"),
        ({"status": "lost"}, "status"),
        ({"limit": 0}, "limit"),
        ({"since": "yesterday"}, "since"),
    ],
)
def test_bad_list_parameters_are_422(api, params, field):
    response = api.get("/messages", params)
    assert response.status_code == 422
    assert field in error_of(response)["fields"]


@pytest.mark.parametrize("status", [Status.QUEUED, Status.SCHEDULED, Status.RETRYING])
def test_cancel_a_message_not_yet_sending(api, account, status):
    message = MessageFactory(account=account, status=status)
    response = api.post(f"/messages/{message.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    message.refresh_from_db()
    assert message.status == Status.CANCELED
    event = message.events.get()
    assert (event.from_status, event.to_status, event.source) == (status, "canceled", "api")


@pytest.mark.parametrize(
    "status", [Status.SENDING, Status.SENT, Status.DELIVERED, Status.CANCELED, Status.FAILED]
)
def test_cancel_too_late_is_a_clear_409(api, account, status):
    message = MessageFactory(account=account, status=status)
    response = api.post(f"/messages/{message.pk}/cancel")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "not_cancelable"
    assert message.get_status_display().lower() in error["message"]
    message.refresh_from_db()
    assert message.status == status and not message.events.exists()


def test_replies_of_the_account_only_newest_first(api, account, other_account):
    message = MessageFactory(account=account)
    older = ReplyFactory(
        account=account,
        from_number="+33612345678",
        message=message,
        received_at=timezone.now() - timedelta(hours=2),
    )
    newer = ReplyFactory(account=account, from_number="+40721234567", text="STOP")
    ReplyFactory(account=other_account)

    body = api.get("/replies").json()
    assert [r["id"] for r in body["results"]] == [newer.pk, older.pk]
    assert body["results"][1]["message_id"] == message.pk
    assert body["results"][0]["text"] == "STOP"

    only = api.get("/replies", {"from_number": "+33 6 12 34 56 78"}).json()["results"]
    assert [r["id"] for r in only] == [older.pk]
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    assert [r["id"] for r in api.get("/replies", {"since": since}).json()["results"]] == [newer.pk]
    assert "from_number" in error_of(api.get("/replies", {"from_number": "x"}))["fields"]


def test_unknown_endpoint_is_a_json_404(api):
    response = api.get("/nothing-here")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_long_list_of_bad_numbers_names_the_first_hundred(api):
    response = api.post("/messages", {"to": ["+33 1"] * 150, "text": "Hi"})
    fields = error_of(response)["fields"]
    assert len(fields) == 101
    assert "to.99" in fields and "to.100" not in fields
    assert fields["to"] == ["…and 50 more invalid numbers."]


def test_a_method_an_endpoint_does_not_take_is_a_json_405(api):
    response = api.client.delete("/api/v1/messages", headers=api.headers(None))
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "GET" in response["Allow"] and "POST" in response["Allow"]


def test_a_body_too_large_is_a_json_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("/messages", {"to": ["+33612345678"] * 100, "text": "Hi"})
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_single_send_writes_in_one_statement_on_postgresql(api, account):
    """The hot path of the API: one number, one autocommitted statement (the message, its first
    event and the opt-out check together), no transaction of its own around it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("one statement is PostgreSQL's path; SQLite writes through the ORM")
    api.post("/messages", {"to": "+33612345670", "text": "Warm-up"})  # caches filled
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/messages", {"to": "+33612345678", "text": "One statement"})
    assert response.status_code == 201, response.content
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["WITH"]
    message = Message.objects.get(recipient="+33612345678")
    assert [e.to_status for e in message.events.all()] == [Status.QUEUED]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("conn_max_age", "prepared"), [(60, 1), (0, 0)])
def test_the_single_send_is_prepared_on_a_kept_connection(account, conn_max_age, prepared):
    """PostgreSQL plans the single send's statement once per kept connection; on connections
    that last one request (or behind a transaction pooler, CONN_MAX_AGE=0) never."""
    from django.db import connection

    from campaigns.services.compose import enqueue_message
    from campaigns.services.rows import PREPARE_AFTER

    if connection.vendor != "postgresql":
        pytest.skip("one statement is PostgreSQL's path; SQLite writes through the ORM")
    connection.close()
    kept_for = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = conn_max_age
    try:
        for n in range(PREPARE_AFTER + 2):  # on one connection, as a web thread's requests
            sent = enqueue_message(
                account, recipient=f"+3361234567{n}", text="Prepared", unless_opted_out=True
            )
            assert sent is not None and sent.pk
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                ['WITH m AS (INSERT INTO "campaigns_message"%'],
            )
            assert cursor.fetchone()[0] == prepared
    finally:
        connection.close()
        connection.settings_dict["CONN_MAX_AGE"] = kept_for
    assert Message.objects.filter(text="Prepared").count() == PREPARE_AFTER + 2
