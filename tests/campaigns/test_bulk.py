"""Campaigns to many recipients: the scan, the preview, the import in batches, CSV reading."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Value
from django.db.models.functions import Upper
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Campaign, Message, MessageEvent
from campaigns.services import bulk, campaign_control, compose, dispatch
from campaigns.services.campaign_control import CampaignStateError
from campaigns.services.rows import insert_alike

from ..factories import AccountFactory, CategoryFactory, OptOutFactory, UserFactory

pytestmark = pytest.mark.django_db

S = Message.Status
CS = Campaign.Status


def numbers(count: int, start: int = 0) -> list[tuple[int, str]]:
    """`count` distinct valid French mobile numbers, one per line."""
    return [(i + 1, f"+336{start + i:08d}") for i in range(count)]


@pytest.fixture
def account():
    return AccountFactory(timezone="Europe/Bucharest")


@pytest.fixture
def nudges(monkeypatch) -> list[bool]:
    """Dispatcher nudges, recorded instead of published."""
    calls: list[bool] = []
    monkeypatch.setattr(compose, "nudge_dispatcher", lambda: calls.append(True))
    return calls


PASTED = """+33 6 12 34 56 78
0612345678
+33612345678, +40 722 123 456; +40722123456
+33 6 12

+447911123456"""


def test_a_pasted_list_becomes_one_queued_message_per_distinct_valid_number(
    account, nudges, django_capture_on_commit_callbacks
):
    category = CategoryFactory(account=account)
    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        result = bulk.create_campaign(
            account,
            name="Spring",
            text="Bună ziua",
            recipients=bulk.pasted_recipients(PASTED),
            sender="Clinic",
            category=category,
            created_by=user,
        )
    campaign = result.campaign
    assert (result.queued, result.duplicates, result.opted_out) == (3, 2, 0)
    assert result.rejected_count == 2
    assert [(r.line, r.value) for r in result.rejected] == [(2, "0612345678"), (4, "+33 6 12")]
    assert result.rejected[0].reason == (
        "Not a phone number. Start it with + and the country code."
    )
    assert result.rejected[1].reason == "Not a valid phone number for its country."
    assert campaign.status == CS.RUNNING
    assert Campaign.objects.get().status == CS.RUNNING
    assert (campaign.name, campaign.sender, campaign.category, campaign.created_by) == (
        "Spring",
        "Clinic",
        category,
        user,
    )
    messages = list(Message.objects.order_by("id"))
    assert [m.recipient for m in messages] == ["+33612345678", "+40722123456", "+447911123456"]
    for message in messages:
        assert (message.account, message.campaign, message.category) == (
            account,
            campaign,
            category,
        )
        assert (message.status, message.encoding, message.segments) == (S.QUEUED, "UCS-2", 1)
        assert (message.sender, message.created_by, message.scheduled_at) == ("Clinic", user, None)
        [event] = message.events.all()
        assert (event.from_status, event.to_status) == ("", S.QUEUED)
        assert (event.source, event.detail) == (MessageEvent.Source.STAFF, "Queued to send now.")
    assert nudges == [True]  # once, for the whole campaign


def test_opted_out_numbers_are_counted_and_left_out(account, nudges):
    OptOutFactory(account=account, number="+33612345678")
    OptOutFactory(number="+40722123456")  # another account's opt-out does not count here
    result = bulk.create_campaign(
        account,
        name="Opt-outs",
        text="Hi",
        recipients=[(1, "+33612345678"), (2, "+40722123456"), (3, "+33 6 12 34 56 78")],
    )
    assert (result.queued, result.opted_out, result.duplicates) == (1, 1, 1)
    assert list(Message.objects.values_list("recipient", flat=True)) == ["+40722123456"]


def test_a_future_send_time_schedules_campaign_and_messages_like_a_single_message(
    account, nudges, django_capture_on_commit_callbacks
):
    send_at = timezone.now() + timedelta(hours=2)
    window_end = send_at + timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        result = bulk.create_campaign(
            account,
            name="Later",
            text="Hi",
            recipients=[(1, "+33612345678")],
            send_at=send_at,
            window_end=window_end,
        )
    single = compose.enqueue_message(
        account, recipient="+40722123456", text="Hi", send_at=send_at, window_end=window_end
    )
    assert result.campaign.status == CS.SCHEDULED
    message = Message.objects.get(campaign=result.campaign)
    fields = ("status", "scheduled_at", "window_start", "window_end")
    assert [getattr(message, f) for f in fields] == [getattr(single, f) for f in fields]
    assert message.status == S.SCHEDULED
    assert message.events.get().detail == single.events.get().detail
    assert nudges == []  # nothing due: the sweep promotes it when its time comes


@pytest.mark.parametrize(
    ("send_at_delta", "window_delta", "status", "window_start_set"),
    [
        (None, timedelta(hours=1), S.QUEUED, False),  # now, but not after a time
        (timedelta(minutes=-5), None, S.QUEUED, True),  # a time just passed: now
    ],
)
def test_windows_and_past_times_match_enqueue_message(
    account, nudges, send_at_delta, window_delta, status, window_start_set
):
    now = timezone.now()
    send_at = now + send_at_delta if send_at_delta else None
    window_end = now + window_delta if window_delta else None
    result = bulk.create_campaign(
        account,
        name="Window",
        text="Hi",
        recipients=[(1, "+33612345678")],
        send_at=send_at,
        window_end=window_end,
    )
    single = compose.enqueue_message(
        account, recipient="+40722123456", text="Hi", send_at=send_at, window_end=window_end
    )
    message = Message.objects.get(campaign=result.campaign)
    assert result.campaign.status == CS.RUNNING
    for name in ("status", "scheduled_at", "window_start", "window_end"):
        assert getattr(message, name) == getattr(single, name)
    assert message.status == status
    assert (message.window_start is not None) == window_start_set
    assert message.window_end == window_end


def test_messages_are_written_batch_by_batch_while_the_input_is_read(account, nudges):
    seen_in_database: list[int] = []

    def recipients():
        for line, number in numbers(35):
            if line in (1, 11, 21, 31):
                seen_in_database.append(Message.objects.count())
            yield line, number

    reported: list[int] = []
    result = bulk.create_campaign(
        account,
        name="Stream",
        text="Hi",
        recipients=recipients(),
        batch_size=10,
        progress=reported.append,
    )
    assert result.queued == 35
    # When line 21 is read, the first two batches are already in the database.
    assert seen_in_database == [0, 10, 20, 30]
    assert reported == [10, 20, 30, 35]
    assert MessageEvent.objects.count() == 35


def test_queries_grow_with_batches_not_rows(account, nudges):
    def queries(count: int, start: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            bulk.create_campaign(
                account,
                name=f"From {start}",
                text="Hi",
                recipients=numbers(count, start=start),
                batch_size=50,
            )
        return len(captured)

    two_batches = queries(100, start=0)
    six_batches = queries(300, start=1000)
    per_batch = (six_batches - two_batches) / 4
    # An opt-out lookup, a cancel check, the messages, their ids, their events, a savepoint.
    assert per_batch <= 7
    assert six_batches < 60  # 300 rows
    assert Message.objects.count() == 400


def test_rows_whose_values_the_database_computes_are_written_by_bulk_create(account, nudges):
    result = bulk.create_campaign(account, name="Events", text="Hi", recipients=numbers(3))
    ids = sorted(result.campaign.messages.values_list("id", flat=True))
    template = MessageEvent(at=timezone.now(), source="system", detail=Upper(Value("later")))
    insert_alike(template, {"message": ids})
    assert (
        sorted(MessageEvent.objects.filter(detail="LATER").values_list("message", flat=True)) == ids
    )


def test_rejected_rows_are_all_counted_but_only_the_first_are_kept(account, nudges, monkeypatch):
    monkeypatch.setattr(bulk, "MAX_REJECTED", 3)
    rows = [(line, "not a number") for line in range(1, 8)] + [(8, "+33612345678")]
    result = bulk.create_campaign(account, name="Bad", text="Hi", recipients=rows)
    assert result.rejected_count == 7
    assert [r.line for r in result.rejected] == [1, 2, 3]
    assert result.queued == 1


def test_a_long_rejected_value_is_shortened(account):
    preview = bulk.preview(account, text="Hi", recipients=[(1, "x" * 500)])
    assert len(preview.rejected[0].value) == bulk.MAX_VALUE_SHOWN
    assert preview.rejected[0].value.endswith("…")


def test_a_campaign_with_nobody_to_send_to_is_completed_at_once(account, nudges):
    result = bulk.create_campaign(account, name="Empty", text="Hi", recipients=[(1, "nope")])
    assert result.queued == 0
    assert result.campaign.status == CS.COMPLETED
    assert nudges == []


def test_a_campaign_canceled_during_its_import_stops_importing(account, nudges):
    def recipients():
        for line, number in numbers(30):
            if line == 15:
                Campaign.objects.update(status=CS.CANCELED)
            yield line, number

    result = bulk.create_campaign(
        account, name="Stop", text="Hi", recipients=recipients(), batch_size=10
    )
    assert result.queued == 10
    assert Campaign.objects.get().status == CS.CANCELED
    assert Message.objects.count() == 10


def test_a_failed_import_leaves_no_campaign_behind(account, nudges):
    def recipients():
        yield from numbers(25)
        raise bulk.CsvError("Line 26 cannot be read as CSV.")

    with pytest.raises(bulk.CsvError):
        bulk.create_campaign(
            account, name="Broken", text="Hi", recipients=recipients(), batch_size=10
        )
    assert not Campaign.objects.exists()
    assert not Message.objects.exists()


def test_messages_wait_while_the_campaign_is_being_written(account, nudges):
    """Until the whole list is in, the campaign is importing: the dispatcher takes none of its
    messages, and staff can neither resume, pause nor cancel it (a resume would send a part of
    the list and leave the campaign's final status unset)."""
    seen: list = []

    def recipients():
        for line, number in numbers(12):
            if line == 11:
                campaign = Campaign.objects.get()
                due = Message.objects.filter(dispatch.due_filter(timezone.now()))
                seen.append((campaign.status, campaign.messages.count(), due.count()))
                for action in (
                    campaign_control.resume,
                    campaign_control.pause,
                    campaign_control.cancel,
                ):
                    with pytest.raises(CampaignStateError, match="being imported"):
                        action(campaign)
            yield line, number

    result = bulk.create_campaign(
        account, name="Hold", text="Hi", recipients=recipients(), batch_size=10
    )
    assert seen == [(CS.IMPORTING, 10, 0)]
    assert result.campaign.status == CS.RUNNING
    assert result.queued == 12
    assert Message.objects.filter(dispatch.due_filter(timezone.now())).count() == 12


def test_a_campaign_whose_import_failed_is_removed_even_after_a_refused_resume(account, nudges):
    def recipients():
        yield from numbers(15)
        with pytest.raises(CampaignStateError):
            campaign_control.resume(Campaign.objects.get())
        raise bulk.CsvError("Line 16 cannot be read as CSV.")

    with pytest.raises(bulk.CsvError):
        bulk.create_campaign(
            account, name="Broken", text="Hi", recipients=recipients(), batch_size=10
        )
    assert not Campaign.objects.exists()
    assert not Message.objects.exists()
    assert nudges == []


def test_preview_counts_like_create_and_writes_nothing(account):
    OptOutFactory(account=account, number="+40722123456")
    text = "x" * 161  # two GSM-7 segments
    preview = bulk.preview(account, text=text, recipients=bulk.pasted_recipients(PASTED))
    assert not Campaign.objects.exists() and not Message.objects.exists()
    assert (preview.rows, preview.recipients, preview.duplicates) == (7, 2, 2)
    assert (preview.opted_out, preview.rejected_count) == (1, 2)
    assert [r.line for r in preview.rejected] == [2, 4]
    assert (preview.encoding, preview.segments, preview.total_segments) == ("GSM-7", 2, 4)
    assert preview.first_recipients == ["+33612345678", "+447911123456"]
    assert preview.single_recipient is None
    assert preview.estimated_cost is None and preview.price_per_segment is None


def test_preview_estimates_the_cost_from_the_accounts_price(account):
    account.price_per_segment = Decimal("0.0450")
    account.price_currency = "EUR"
    account.save()
    preview = bulk.preview(account, text="€ " * 100, recipients=numbers(3))  # 200 septets: 2 SMS
    assert preview.total_segments == 6
    assert preview.estimated_cost == Decimal("0.2700")
    assert preview.currency == "EUR"


def test_preview_of_one_number_names_it(account):
    preview = bulk.preview(account, text="Hi", recipients=[(1, "+33 6 12 34 56 78"), (2, "x")])
    assert preview.single_recipient == "+33612345678"


# --- CSV -----------------------------------------------------------------------------------


def csv_file(text: str, encoding: str = "utf-8") -> io.BytesIO:
    return io.BytesIO(text.encode(encoding))


CSV = (
    "Name;Mobile;City\n"
    "Ana;+40 722 123 456;Cluj\n"
    "\n"
    "Bob;0612;Lyon\n"
    "Cem;;Izmir\n"
    "Dan\n"
    "Eva;+33612345678;Paris\n"
)


def test_inspect_csv_finds_delimiter_header_and_number_column():
    info = bulk.inspect_csv(csv_file("\ufeff" + CSV))  # a BOM, as Excel writes it
    assert info.delimiter == ";"
    assert info.headers == ["Name", "Mobile", "City"]
    assert info.sample == ["Ana", "+40 722 123 456", "Cluj"]
    assert (info.has_header, info.column, info.lines) == (True, 1, 7)


def test_inspect_csv_without_header_picks_the_column_of_numbers():
    info = bulk.inspect_csv(csv_file("Ana,+40722123456\nBob,+33612345678"))
    assert (info.delimiter, info.has_header, info.column, info.lines) == (",", False, 1, 2)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "The file is empty."),
        (b"PK\x03\x04rest of a workbook", "spreadsheet workbook"),
        (b"\x00\x01\x02binary", "not a text file"),
    ],
)
def test_inspect_csv_refuses_what_is_not_csv(content, error):
    with pytest.raises(bulk.CsvError, match=error):
        bulk.inspect_csv(io.BytesIO(content))


def test_csv_rows_carry_their_line_in_the_file_header_being_line_1(account):
    rows = list(bulk.csv_recipients(csv_file(CSV), column=1, has_header=True, delimiter=";"))
    assert rows == [(2, "+40 722 123 456"), (4, "0612"), (5, ""), (6, ""), (7, "+33612345678")]
    preview = bulk.preview(
        account,
        text="Hi",
        recipients=bulk.csv_recipients(csv_file(CSV), column=1, has_header=True, delimiter=";"),
    )
    assert preview.recipients == 2
    assert [(r.line, r.value, r.reason) for r in preview.rejected] == [
        (4, "0612", "Not a phone number. Start it with + and the country code."),
        (5, "", "No number on this line."),
        (6, "", "No number on this line."),
    ]


def test_csv_bytes_that_are_not_utf8_do_not_stop_the_import(account):
    content = "Nom,Téléphone\nRené,+33612345678\n".encode("cp1252")
    rows = list(bulk.csv_recipients(io.BytesIO(content), column=1, has_header=True))
    assert rows == [(2, "+33612345678")]


def test_refresh_status_starts_a_scheduled_campaign_then_completes_it(account, nudges):
    send_at = timezone.now() + timedelta(hours=1)
    result = bulk.create_campaign(
        account, name="Later", text="Hi", recipients=numbers(2), send_at=send_at
    )
    campaign = result.campaign
    assert campaign_control.refresh_status(campaign) is False
    assert Campaign.objects.get().status == CS.SCHEDULED
    Message.objects.update(status=S.SENDING)  # their time came; a worker took them
    assert campaign_control.refresh_status(campaign) is False
    assert Campaign.objects.get().status == CS.RUNNING
    Message.objects.update(status=S.SENT)
    assert campaign_control.refresh_status(campaign) is True
    assert Campaign.objects.get().status == CS.COMPLETED
