"""Many contacts at once: created, updated or skipped, bad rows listed, nothing else lost."""

import random
import threading

import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from campaigns import phone
from campaigns.contacts import importing
from campaigns.contacts.importing import ContactRow, upsert_rows
from campaigns.contacts.models import Contact, ContactField, ContactList

pytestmark = pytest.mark.django_db


@pytest.fixture
def french(account):
    account.country = "FR"
    account.save()
    ContactField.objects.create(account=account, key="city", label="City")
    ContactField.objects.create(account=account, key="age", label="Age", type="number")
    return account


def rows():
    return [
        ContactRow(1, "06 12 34 56 78", "Ann", "fr", {"city": "Lyon", "age": "34"}),
        ContactRow(2, "0612", "Bad", None, {}),
        ContactRow(3, "+33612345679", "Bob", None, {"age": "old"}),
        ContactRow(4, "0612345678", "Ann again", None, {}),
        ContactRow(5, "+40721234567", "", None, {"city": "Cluj"}),
    ]


def test_rows_are_created_with_bad_ones_listed_by_line(french):
    vip = ContactList.objects.create(account=french, name="VIP")
    result = upsert_rows(french, rows(), contact_list=vip, keep_ids=True)
    assert (result.created, result.updated, result.duplicates, result.rejected_count) == (
        2,
        0,
        1,
        2,
    )
    assert [(r.line, r.value) for r in result.rejected] == [(2, "0612"), (3, "+33612345679")]
    assert result.rejected[1].reason == "age: “old” is not a number."
    ann = Contact.objects.get(number="+33612345678")
    assert (ann.name, ann.language, ann.values) == ("Ann", "fr", {"city": "Lyon", "age": 34})
    assert sorted(vip.contacts.values_list("number", flat=True)) == [
        "+33612345678",
        "+40721234567",
    ]
    assert result.added_to_list == 2
    assert result.ids == [ann.pk, Contact.objects.get(number="+40721234567").pk]


def test_existing_contacts_are_updated_or_skipped_as_asked(french):
    upsert_rows(french, rows())
    again = [ContactRow(1, "+33612345678", "", None, {"age": "35"})]
    skipped = upsert_rows(french, again, update_existing=False)
    assert (skipped.created, skipped.updated, skipped.skipped) == (0, 0, 1)
    assert Contact.objects.get(number="+33612345678").values["age"] == 34
    updated = upsert_rows(french, again)
    assert (updated.created, updated.updated) == (0, 1)
    ann = Contact.objects.get(number="+33612345678")
    # The name given empty is not erased; values not given are kept.
    assert (ann.name, ann.values) == ("Ann", {"city": "Lyon", "age": 35})


# --- more rows than a batch, lists, values removed, rows that cannot be stored -------------


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(importing, "BATCH", 2)
    monkeypatch.setattr(importing, "POSTGRES_BATCH", 2)


def test_rows_in_many_batches_keep_their_order_and_report_progress(french, small_batches):
    seen = []
    given = [ContactRow(n, f"+3361234560{n}", f"P{n}", None, {"age": str(n)}) for n in range(7)]
    given.insert(3, ContactRow(99, "+33612345601", "Again"))  # a duplicate in a later batch
    result = upsert_rows(
        french, given, keep_ids=True, progress=lambda r: seen.append((r.rows, r.created))
    )
    assert (result.created, result.duplicates) == (7, 1)
    assert seen == [(2, 2), (5, 4), (7, 6), (8, 7)]
    by_number = dict(Contact.objects.values_list("number", "pk"))
    assert result.ids == [by_number[f"+3361234560{n}"] for n in range(7)]
    assert Contact.objects.get(number="+33612345601").name == "P1"


def test_a_list_counts_only_the_contacts_that_joined_it(french, small_batches):
    vip = ContactList.objects.create(account=french, name="VIP")
    first = upsert_rows(french, rows()[:1], contact_list=vip)
    assert first.added_to_list == 1
    # Existing contacts are added too, whether updated or left alone; members are not again.
    again = [
        ContactRow(1, "+33612345678"),
        ContactRow(2, "+33612345670"),
        ContactRow(3, "+33612345671"),
    ]
    skipped = upsert_rows(french, again, update_existing=False, contact_list=vip)
    assert (skipped.created, skipped.skipped, skipped.added_to_list) == (2, 1, 2)
    updated = upsert_rows(french, again, contact_list=vip, keep_ids=True)
    assert (updated.updated, updated.added_to_list) == (3, 0)
    assert vip.contacts.count() == 3
    assert sorted(updated.ids) == sorted(vip.contacts.values_list("pk", flat=True))


def test_an_empty_value_removes_the_field_and_others_stay(french):
    upsert_rows(french, [ContactRow(1, "+33612345678", "Ann", "FR", {"city": "Lyon", "age": "3"})])
    upsert_rows(french, [ContactRow(1, "+33612345678", None, " ", {"age": ""})])
    ann = Contact.objects.get()
    assert (ann.name, ann.language, ann.values) == ("Ann", "fr", {"city": "Lyon"})
    # A new contact gets no empty value either.
    upsert_rows(french, [ContactRow(1, "+33612345679", None, None, {"age": "", "city": " "})])
    assert Contact.objects.get(number="+33612345679").values == {}


def test_rows_a_database_cannot_keep_are_bad_rows(french):
    result = upsert_rows(
        french,
        [
            ContactRow(1, "+33612345678", "Ann\x00"),
            ContactRow(2, "+33612345679", "\ud800"),
            ContactRow(3, "+33612345670", None, None, {"city": "Ly\x00on"}),
            ContactRow(4, "+33612345671", None, None, {"shoe": "42"}),
            ContactRow(5, "+33612345672", None, "f" * 9),
            ContactRow(6, "", error="This line cannot be read as CSV."),
            ContactRow(7, "+33612345673", "Fine", None, {"city": "Nice"}),
        ],
    )
    assert [(r.line, r.reason) for r in result.rejected] == [
        (1, "name: not valid text."),
        (2, "name: not valid text."),
        (3, "city: The NUL character is not allowed."),
        (4, "No custom field “shoe” in this account."),
        (5, "language: at most 8 characters, e.g. fr or ro."),
        (6, "This line cannot be read as CSV."),
    ]
    assert list(Contact.objects.values_list("name", flat=True)) == ["Fine"]


def test_values_of_every_type_are_cast_and_remembered(french):
    ContactField.objects.create(account=french, key="joined", label="Joined", type="date")
    given = [
        ContactRow(n, f"+3361234567{n}", None, None, {"age": age, "joined": joined})
        for n, (age, joined) in enumerate(
            [("34", "2025-01-10"), ("34", "10/01/2025"), ("1,5", "2025-1-2"), ("x", "2025-01-10")]
        )
    ]
    given.append(ContactRow(9, "+33612345679", None, None, {"joined": "31/02/2025"}))
    result = upsert_rows(french, given)
    assert [(r.line, r.reason) for r in result.rejected] == [
        (3, "age: “x” is not a number."),
        (9, "joined: “31/02/2025” is not a date: write it 2026-05-31 or 31/05/2026."),
    ]
    assert list(Contact.objects.order_by("number").values_list("values", flat=True)) == [
        {"age": 34, "joined": "2025-01-10"},
        {"age": 34, "joined": "2025-01-10"},
        {"age": 1.5, "joined": "2025-01-02"},
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statements")
def test_a_contact_deleted_while_its_row_is_written_is_created_again(french, monkeypatch):
    Contact.objects.create(account=french, number="+33612345678", name="Old")
    run, calls = importing._run, []

    def racing(sql, *args, **kwargs):
        written = run(sql, *args, **kwargs)
        calls.append(sql.split()[0])
        if len(calls) == 1:  # after the insert found it, before the update
            Contact.objects.filter(number="+33612345678").delete()
        return written

    monkeypatch.setattr(importing, "_run", racing)
    # A row that removes a value is written by an insert, then an update of what was there.
    result = upsert_rows(french, [ContactRow(1, "+33612345678", "New", None, {"city": ""})])
    assert (result.created, result.updated, calls) == (1, 0, ["INSERT", "UPDATE", "INSERT"])
    assert Contact.objects.get().name == "New"


# --- numbers read fast, exactly as phone.normalize reads them ------------------------------

REGIONS = ["FR", "GB", "US", "IT", "DE", "RO", "AR", "MX", "BR", "IN", "RU", "CI", "MA", "BE"]


def number_inputs() -> list[str]:
    formats = [
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.NATIONAL,
    ]
    inputs = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                inputs += [phonenumbers.format_number(example, f) for f in formats]
    e164 = [i for i in inputs if i.startswith("+")]
    inputs += ["00" + i[1:] for i in e164[::7]] + [i.replace(" ", ".") for i in inputs[::5]]
    randomly = random.Random(16)
    for _ in range(1500):
        digits = "".join(randomly.choice("0123456789") for _ in range(randomly.randint(2, 16)))
        inputs.append(randomly.choice(["+", "0", "00", "", "+33", "06", "+1", "+44 "]) + digits)
    inputs += [
        "+", "0", "+0", "00", "+33 (0) 6 12 34 56 78", "+330612345678", "33612345678",
        "+1 800 FLOWERS", "+٣٣٦١٢٣٤٥٦٧٨", "06-12-34-56-78", "+33 6 12 34 56 78 ext. 12",
        "+800 1234 5678", "+39 06 1234 5678", "+39 312 345 6789", "0039 06 12345678",
        "+7 912 345 67 89", "8 912 345 67 89", "+44 7400 123456", "07400 123456",
        "011 33 6 12 34 56 78", "+54 9 11 1234 5678", "011 15 1234 5678", "+5511961234567",
        "+33 6 12 34 56 78 90 12 34 56", "+" + "1" * 40, "0" * 45,
    ]  # fmt: skip
    return inputs


def outcome(read, value):
    try:
        return read(value)
    except ValidationError as error:
        return error.messages


@pytest.mark.parametrize("region", [*REGIONS, None])
def test_numbers_are_read_as_phone_normalize_reads_them(region):
    numbers = importing.Numbers(region)
    fast = 0
    for value in number_inputs():
        assert outcome(numbers, value) == outcome(lambda v: phone.normalize(v, region), value), (
            value
        )
        fast += numbers.fast(value) is not None
    assert fast > 500  # most valid numbers take the short way


# --- outside a transaction on PostgreSQL: batches written beside the reading ---------------

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL writes in a thread of its own"
)


def writers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "contacts-import-writer"]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_batches_are_written_beside_the_reading_and_committed_each(french, small_batches):
    vip = ContactList.objects.create(account=french, name="VIP")
    seen = []
    given = [ContactRow(n, f"+3361234560{n}", f"P{n}", None, {"age": str(n)}) for n in range(5)]
    result = upsert_rows(
        french,
        given,
        contact_list=vip,
        keep_ids=True,
        progress=lambda r: seen.append((r.created, Contact.objects.count())),
    )
    assert (result.created, result.added_to_list) == (5, 5)
    assert seen == [(2, 2), (4, 4), (5, 5)]  # each batch committed when it is reported
    by_number = dict(Contact.objects.values_list("number", "pk"))
    assert result.ids == [by_number[f"+3361234560{n}"] for n in range(5)]
    again = upsert_rows(french, [*given[:3], ContactRow(9, "+33612345699")], contact_list=vip)
    assert (again.created, again.updated, again.added_to_list) == (1, 3, 1)
    assert not writers()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_stops_the_import_and_keeps_what_was_committed(
    french, small_batches, monkeypatch
):
    write, calls = importing._write_postgres, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("database gone")
        return write(*args, **kwargs)

    monkeypatch.setattr(importing, "_write_postgres", failing)
    given = [ContactRow(n, f"+3361234560{n}") for n in range(6)]
    with pytest.raises(RuntimeError, match="database gone"):
        upsert_rows(french, given)
    assert Contact.objects.count() == 2
    assert not writers()
