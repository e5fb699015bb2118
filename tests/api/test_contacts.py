"""Contacts through the API: one at a time (create, read, change, list, delete) and 10,000 at
once (bulk upsert with errors by row), and the custom fields an account defines."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.contacts import services
from campaigns.contacts.models import Contact, ContactField, ContactList, Membership, Segment
from campaigns.models import Message, Reply
from tests.factories import MessageFactory, OptOutFactory

from .conftest import BASE, error_of


def send(api, method: str, path: str, body=None, headers=None):
    """A PATCH or DELETE (the shared client speaks GET and POST)."""
    return getattr(api.client, method)(
        BASE + path,
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        headers=api.headers(headers),
    )


@pytest.fixture
def french(account):
    """The account with France as its default country and two custom fields."""
    account.country = "FR"
    account.save()
    ContactField.objects.create(account=account, key="city", label="City")
    ContactField.objects.create(account=account, key="age", label="Age", type="number")
    ContactField.objects.create(account=account, key="birthday", label="Birthday", type="date")
    return account


def test_a_contact_is_created_from_a_national_number_with_its_fields(api, french):
    response = api.post(
        "/contacts",
        {
            "number": "06 12 34 56 78",
            "name": " Ann Martin ",
            "language": "FR",
            "fields": {"city": "Lyon", "age": "34", "birthday": "31/05/1990"},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    contact = Contact.objects.get()
    assert body["id"] == contact.pk and contact.account == french
    assert (body["number"], body["name"], body["language"]) == ("+33612345678", "Ann Martin", "fr")
    assert body["fields"] == {"city": "Lyon", "age": 34, "birthday": "1990-05-31"}
    assert (body["lists"], body["opted_out"]) == ([], False)
    assert body["created_at"] and body["updated_at"]


def test_create_names_each_field_at_fault_and_keeps_nothing(api, french):
    response = api.post(
        "/contacts",
        {"number": "0612", "language": "x" * 9, "fields": {"age": "old", "shoe": 42, "city": True}},
    )
    assert response.status_code == 422, response.content
    fields = error_of(response)["fields"]
    assert set(fields) == {"language", "fields.city"}  # the schema's checks come first
    assert fields["fields.city"] == [
        "Give text, a number or a date (2026-05-31), or null to remove the value."
    ]
    response = api.post("/contacts", {"number": "0612", "fields": {"age": "old", "shoe": 42}})
    assert response.status_code == 422, response.content
    assert error_of(response)["fields"] == {
        "number": [
            "“0612” is not a valid number of France. Write it with + and the country code, or "
            "as a number of France (06 12 34 56 78)."
        ],
        "fields.age": ["“old” is not a number."],
        "fields.shoe": ["No custom field “shoe” in this account: add it first."],
    }
    assert not Contact.objects.exists()


def test_a_number_already_a_contact_is_a_409_naming_it(api, french):
    first = api.post("/contacts", {"number": "+33612345678"}).json()
    response = api.post("/contacts", {"number": "06 12 34 56 78", "name": "Again"})
    assert response.status_code == 409, response.content
    error = error_of(response)
    assert error["code"] == "already_exists"
    assert f"(id {first['id']})" in error["message"]
    assert error["fields"] == {"number": ["+33612345678 is already a contact of this account."]}
    assert Contact.objects.get().name == ""


def test_create_with_an_idempotency_key_is_done_once(api, french):
    headers = {"Idempotency-Key": "contact-1"}
    first = api.post("/contacts", {"number": "+33612345678"}, headers=headers)
    again = api.post("/contacts", {"number": "+33612345678"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    other = api.post("/contacts", {"number": "+33612345679"}, headers=headers)
    assert other.status_code == 409 and error_of(other)["code"] == "idempotency_conflict"
    assert Contact.objects.count() == 1


def test_read_and_change_a_contact(api, french):
    contact = services.save_contact(
        french, number="+33612345678", name="Ann", values={"city": "Lyon", "age": 34}
    )
    vip = ContactList.objects.create(account=french, name="VIP")
    services.add_to_list(vip, [contact])
    OptOutFactory(account=french, number=contact.number)
    body = api.get(f"/contacts/{contact.pk}").json()
    assert (body["name"], body["lists"], body["opted_out"]) == ("Ann", [vip.pk], True)

    response = send(
        api,
        "patch",
        f"/contacts/{contact.pk}",
        {"name": "Ann M.", "fields": {"city": None, "birthday": "1990-05-31"}},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    # Only what is given changes; null removes a value.
    assert (body["number"], body["name"]) == ("+33612345678", "Ann M.")
    assert body["fields"] == {"age": 34, "birthday": "1990-05-31"}
    contact.refresh_from_db()
    assert contact.values == {"age": 34, "birthday": "1990-05-31"}

    response = send(api, "patch", f"/contacts/{contact.pk}", {"number": "06 12 34 56 99"})
    assert response.status_code == 200, response.content
    assert response.json()["number"] == "+33612345699"


def test_changing_a_number_to_another_contacts_is_a_409_and_changes_nothing(api, french):
    ann = services.save_contact(french, number="+33612345678", name="Ann")
    services.save_contact(french, number="+33612345679", name="Bob")
    response = send(
        api, "patch", f"/contacts/{ann.pk}", {"number": "0612345679", "name": "Not Ann"}
    )
    assert response.status_code == 409, response.content
    assert error_of(response)["code"] == "already_exists"
    ann.refresh_from_db()
    assert (ann.number, ann.name) == ("+33612345678", "Ann")
    response = send(api, "patch", f"/contacts/{ann.pk}", {"fields": {"age": "old"}, "name": None})
    assert response.status_code == 422
    assert set(error_of(response)["fields"]) == {"name"}
    response = send(api, "patch", f"/contacts/{ann.pk}", {"fields": {"age": "old"}})
    assert error_of(response)["fields"] == {"fields.age": ["“old” is not a number."]}


def test_contacts_are_listed_newest_first_page_by_page(api, french):
    contacts = [services.save_contact(french, number=f"+3361234560{i}") for i in range(5)]
    first = api.get("/contacts", {"limit": 2}).json()
    assert [c["id"] for c in first["results"]] == [contacts[4].pk, contacts[3].pk]
    second = api.get("/contacts", {"limit": 2, "cursor": first["next_cursor"]}).json()
    third = api.get("/contacts", {"limit": 2, "cursor": second["next_cursor"]}).json()
    assert [c["id"] for c in second["results"] + third["results"]] == [
        c.pk for c in reversed(contacts[:3])
    ]
    assert third["next_cursor"] is None


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [c["id"] for c in response.json()["results"]]


def test_contacts_are_filtered_by_list_segment_number_search_and_time(api, french):
    ann = services.save_contact(french, number="+33612345678", name="Ann", values={"city": "Lyon"})
    bob = services.save_contact(french, number="+33612345679", name="Bob", values={"city": "Nice"})
    eve = services.save_contact(french, number="+40721234567", name="Eve Annan")
    vip = ContactList.objects.create(account=french, name="VIP")
    services.add_to_list(vip, [ann, eve])
    lyon = Segment.objects.create(
        account=french, name="Lyon", rules=[{"field": "city", "op": "eq", "value": "lyon"}]
    )
    Contact.objects.filter(pk=bob.pk).update(updated_at=timezone.now() + timedelta(hours=1))

    assert ids(api.get("/contacts", {"list_id": vip.pk})) == [eve.pk, ann.pk]
    assert ids(api.get("/contacts", {"segment_id": lyon.pk})) == [ann.pk]
    assert ids(api.get("/contacts", {"segment_id": lyon.pk, "list_id": vip.pk})) == [ann.pk]
    assert ids(api.get("/contacts", {"number": "06 12 34 56 79"})) == [bob.pk]
    assert ids(api.get("/contacts", {"search": "ann"})) == [eve.pk, ann.pk]
    assert ids(api.get("/contacts", {"search": "0721"})) == [eve.pk]
    assert ids(api.get("/contacts", {"search": "06 12 34 56 78"})) == [ann.pk]
    later = (timezone.now() + timedelta(minutes=30)).isoformat()
    assert ids(api.get("/contacts", {"updated_since": later})) == [bob.pk]


def test_unknown_filters_say_which(api, french, other_account):
    theirs = ContactList.objects.create(account=other_account, name="Theirs")
    segment = Segment.objects.create(account=other_account, name="Theirs")
    response = api.get("/contacts", {"list_id": theirs.pk, "segment_id": segment.pk})
    assert response.status_code == 422
    assert error_of(response)["fields"] == {
        "list_id": ["No list with this id in your account."],
        "segment_id": ["No segment with this id in your account."],
    }
    response = api.get("/contacts", {"cursor": "x"})
    assert set(error_of(response)["fields"]) == {"cursor"}
    response = api.get("/contacts", {"number": "0612"})
    assert set(error_of(response)["fields"]) == {"number"}


def test_a_segment_with_unreadable_conditions_is_a_422_not_a_500(api, french):
    broken = Segment.objects.create(account=french, name="Broken", rules=[{"field": "city"}])
    response = api.get("/contacts", {"segment_id": broken.pk})
    assert response.status_code == 422
    assert "cannot be read" in error_of(response)["fields"]["segment_id"][0]


def test_deleting_a_contact_masks_its_number_and_cancels_what_waits(api, french):
    contact = services.save_contact(french, number="+33612345678", values={"city": "Lyon"})
    MessageFactory(account=french, recipient=contact.number, status="delivered")
    waiting = MessageFactory(account=french, recipient=contact.number, status="queued")
    Reply.objects.create(account=french, from_number=contact.number, text="Hi")
    response = send(api, "delete", f"/contacts/{contact.pk}")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": contact.pk,
        "canceled_messages": 1,
        "masked_messages": 2,
        "masked_replies": 1,
    }
    assert not Contact.objects.exists()
    waiting.refresh_from_db()
    assert waiting.status == "canceled" and waiting.recipient == "+33•••••5678"
    assert "API key" in waiting.events.last().detail
    assert send(api, "delete", f"/contacts/{contact.pk}").status_code == 404


def test_a_contact_being_sent_to_is_a_409_to_retry(api, french):
    contact = services.save_contact(french, number="+33612345678")
    MessageFactory(account=french, recipient=contact.number, status="sending")
    response = send(api, "delete", f"/contacts/{contact.pk}")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "still_sending" and "try again" in error["message"]
    assert response["Retry-After"] == "5"
    assert Contact.objects.filter(pk=contact.pk).exists()
    assert Message.objects.get().recipient == "+33612345678"


def test_custom_fields_are_listed_with_their_types(api, french, other_account):
    ContactField.objects.create(account=other_account, key="secret", label="Secret")
    response = api.get("/contact-fields")
    assert response.status_code == 200
    assert response.json() == [
        {"key": "age", "label": "Age", "type": "number"},
        {"key": "birthday", "label": "Birthday", "type": "date"},
        {"key": "city", "label": "City", "type": "text"},
    ]


# --- Bulk upsert -----------------------------------------------------------------------------


def test_bulk_writes_the_good_rows_and_names_each_bad_one(api, french):
    existing = services.save_contact(
        french, number="+33612345678", name="Ann", values={"city": "Lyon", "age": 34}
    )
    rows = [
        {"number": "06 12 34 56 78", "fields": {"age": 35}},  # updates Ann
        {"number": "0612", "name": "Bad number"},
        {"number": "+33612345679", "name": "Bob", "language": "EN", "fields": {"city": "Nice"}},
        {"number": "+33612345680", "fields": {"age": "old", "shoe": "42"}},
        {"number": "0612345679", "name": "Bob again"},  # a duplicate of row 2
        {"number": "+33612345681", "name": "x" * 201, "language": "\x00"},
        {"number": "+40721234567", "name": "Eve", "fields": {"birthday": "31/05/1990"}},
    ]
    response = api.post("/contacts/bulk", {"contacts": rows})
    assert response.status_code == 200, response.content
    body = response.json()
    bob = Contact.objects.get(number="+33612345679")
    eve = Contact.objects.get(number="+40721234567")
    assert body == {
        "created": 2,
        "updated": 1,
        "skipped": 0,
        "duplicates": 1,
        "rejected": 3,
        "added_to_list": 0,
        "ids": [existing.pk, None, bob.pk, None, bob.pk, None, eve.pk],
        "errors": {
            "contacts.1.number": [
                "“0612” is not a valid number of France. Write it with + and the country code, "
                "or as a number of France (06 12 34 56 78)."
            ],
            "contacts.3.fields.age": ["“old” is not a number."],
            "contacts.3.fields.shoe": ["No custom field “shoe” in this account: add it first."],
            "contacts.5.name": ["At most 200 characters."],
            "contacts.5.language": ["The NUL character (\\u0000) is not allowed."],
        },
    }
    existing.refresh_from_db()
    assert (existing.name, existing.values) == ("Ann", {"city": "Lyon", "age": 35})
    assert (bob.name, bob.language, bob.values) == ("Bob", "en", {"city": "Nice"})
    assert eve.values == {"birthday": "1990-05-31"}
    assert Contact.objects.count() == 3


def test_bulk_can_leave_existing_contacts_alone_and_fill_a_list(api, french):
    existing = services.save_contact(french, number="+33612345678", name="Ann")
    vip = ContactList.objects.create(account=french, name="VIP")
    rows = [{"number": "+33612345678", "name": "Changed"}, {"number": "+33612345679"}]
    response = api.post(
        "/contacts/bulk", {"contacts": rows, "update_existing": False, "list_id": vip.pk}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["updated"], body["skipped"], body["added_to_list"]) == (
        1,
        0,
        1,
        2,
    )
    existing.refresh_from_db()
    assert existing.name == "Ann"
    assert set(vip.contacts.values_list("number", flat=True)) == {"+33612345678", "+33612345679"}


def test_bulk_refuses_a_list_of_another_account_and_writes_nothing(api, french, other_account):
    theirs = ContactList.objects.create(account=other_account, name="Theirs")
    response = api.post(
        "/contacts/bulk", {"contacts": [{"number": "+33612345678"}], "list_id": theirs.pk}
    )
    assert response.status_code == 422
    assert error_of(response)["fields"] == {"list_id": ["No list with this id in your account."]}
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"contacts": []}, {"contacts"}),
        ({"contacts": [{"number": 612345678}]}, {"contacts.0.number"}),
        ({"contacts": [{"number": "+33612345678", "colour": "red"}]}, {"contacts.0.colour"}),
        (
            {"contacts": [{"number": "+33612345678", "fields": {"age": [1]}}]},
            {"contacts.0.fields.age"},
        ),
        ({"contacts": [{"number": "+33612345678"}], "update_existing": "yes"}, {"update_existing"}),
        ({"contacts": [{"number": "+33612345678"}], "list_id": True}, {"list_id"}),
        ({"contacts": {"number": "+33612345678"}}, {"contacts"}),
    ],
)
def test_a_bulk_body_of_the_wrong_shape_writes_nothing(api, french, body, fields):
    response = api.post("/contacts/bulk", body)
    assert response.status_code == 422, response.content
    assert set(error_of(response)["fields"]) == fields
    assert not Contact.objects.exists()


def test_bulk_takes_10000_contacts_and_refuses_more(api, french):
    vip = ContactList.objects.create(account=french, name="VIP")
    rows = [
        {"number": f"+336{i:08d}", "name": f"Person {i}", "fields": {"city": "Lyon", "age": i}}
        for i in range(10_000)
    ]
    response = api.post("/contacts/bulk", {"contacts": [*rows, rows[0]]})
    assert response.status_code == 422
    assert set(error_of(response)["fields"]) == {"contacts"}
    response = api.post(
        "/contacts/bulk",
        {"contacts": rows, "list_id": vip.pk},
        headers={"Idempotency-Key": "big-import"},
    )
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert (body["created"], body["rejected"], body["added_to_list"]) == (10_000, 0, 10_000)
    assert len(body["ids"]) == 10_000 and None not in body["ids"]
    assert Contact.objects.count() == Membership.objects.count() == 10_000
    # Sent again with its key: the first answer, nothing done twice.
    again = api.post(
        "/contacts/bulk",
        {"contacts": rows, "list_id": vip.pk},
        headers={"Idempotency-Key": "big-import"},
    )
    assert again.json() == body and again["Idempotent-Replayed"] == "true"


# --- Odd input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"number": "+33612345678", "name": "A\x00nn"},
        {"number": "+33612345678", "name": "\ud800"},
        {"number": "+33612345678", "fields": {"city": "Ly\x00on"}},
        {"number": "+33612345678", "fields": {"city": "\udfff"}},
        {"number": "+33612345678", "fields": {"\x00": "x"}},
        {"number": "+33612345678", "fields": {"age": 1e400}},
        {"number": "+33612345678", "fields": {"age": 10**400}},
        {"number": "+33612345678", "fields": {"city": {"a": 1}}},
        {"number": "+33612345678", "fields": [1, 2]},
        {"number": "+33612345678", "fields": {f"k{i}": "x" for i in range(201)}},
        {"number": "+33612345678", "lists": [1]},
        {"number": ["+33612345678"]},
        {"number": "\x00"},
        {"number": "+" + "1" * 40},
        {"number": "+33612345678", "language": 7},
        [],
        "a string",
        None,
    ],
)
def test_odd_contacts_are_refused_clearly_never_a_500(api, french, body):
    response = api.post("/contacts", body)
    assert response.status_code in (400, 422), response.content
    error_of(response)
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    "row",
    [
        {"number": "\x00"},
        {"number": "\ud800"},
        {"number": "+" + "1" * 1000},
        {"number": "+33612345678", "name": "\ud800"},
        {"number": "+33612345678", "fields": {"\ud800": "x"}},
        {"number": "+33612345678", "fields": {"city": "\x00"}},
        {"number": "+33612345678", "fields": {"city": "x" * 501}},
        {"number": "+33612345678", "fields": {"age": 1e300}},
        {"number": "+33612345678", "fields": {"birthday": "2026-02-30"}},
    ],
)
def test_an_odd_row_is_named_and_the_others_written(api, french, row):
    response = api.post("/contacts/bulk", {"contacts": [row, {"number": "+40721234567"}]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["rejected"]) == (1, 1)
    assert body["ids"][0] is None and all(key.startswith("contacts.0.") for key in body["errors"])
    assert list(Contact.objects.values_list("number", flat=True)) == ["+40721234567"]


def test_a_nan_from_python_json_is_refused(api, french):
    raw = '{"number": "+33612345678", "fields": {"age": NaN}}'
    response = api.post("/contacts", raw=raw)
    assert response.status_code == 422, response.content
    assert set(error_of(response)["fields"]) == {"fields.age"}


@pytest.mark.parametrize(
    "query",
    [
        {"search": "a\x00b"},
        {"number": "\x00"},
        {"updated_since": "9999-12-31T23:59:59"},
        {"updated_since": "0001-01-01T00:00:00+14:00"},
        {"list_id": "x"},
        {"list_id": str(2**64)},
        {"segment_id": "-1"},
        {"limit": "1000"},
        {"search": "x" * 101},
    ],
)
def test_odd_filters_are_answered_never_a_500(api, french, query):
    response = api.get("/contacts", query)
    assert response.status_code in (200, 422), response.content
    if response.status_code == 422:
        error_of(response)
