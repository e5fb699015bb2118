"""Lists of contacts through the API (create, read, rename, delete; members added and removed by
id or number), and tenancy: another account's contact or list is a 404 at every endpoint."""

import pytest

from campaigns.contacts import services
from campaigns.contacts.models import Contact, ContactList, Membership

from .conftest import error_of
from .test_contacts import send


@pytest.fixture
def french(account):
    account.country = "FR"
    account.save()
    return account


def test_lists_are_created_read_renamed_and_deleted(api, french):
    response = api.post("/lists", {"name": " VIP ", "description": "Best customers"})
    assert response.status_code == 201, response.content
    created = response.json()
    vip = ContactList.objects.get()
    assert created["id"] == vip.pk and vip.account == french
    assert (created["name"], created["description"], created["members"]) == (
        "VIP",
        "Best customers",
        0,
    )
    ann = services.save_contact(french, number="+33612345678")
    services.add_to_list(vip, [ann])
    assert api.get(f"/lists/{vip.pk}").json()["members"] == 1

    response = send(api, "patch", f"/lists/{vip.pk}", {"name": "Gold"})
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["description"]) == ("Gold", "Best customers")

    response = send(api, "delete", f"/lists/{vip.pk}")
    assert response.status_code == 200, response.content
    assert response.json() == {"id": vip.pk, "members": 1}
    assert not ContactList.objects.exists()
    assert Contact.objects.filter(pk=ann.pk).exists()  # members stay contacts


def test_a_list_name_is_unique_in_the_account(api, french, other_account):
    ContactList.objects.create(account=other_account, name="VIP")  # another account's: fine
    assert api.post("/lists", {"name": "VIP"}).status_code == 201
    response = api.post("/lists", {"name": "VIP"})
    assert response.status_code == 409
    assert error_of(response)["code"] == "already_exists"
    other = api.post("/lists", {"name": "Other"}).json()
    response = send(api, "patch", f"/lists/{other['id']}", {"name": "VIP"})
    assert response.status_code == 409
    assert ContactList.objects.get(pk=other["id"]).name == "Other"


@pytest.mark.parametrize(
    "body", [{"name": ""}, {"name": "   "}, {"name": "x" * 101}, {"name": "a\x00"}, {}, []]
)
def test_a_list_needs_a_name(api, french, body):
    response = api.post("/lists", body)
    assert response.status_code == 422, response.content
    error_of(response)
    assert not ContactList.objects.exists()


def test_lists_are_listed_newest_first_with_their_member_counts(api, french, other_account):
    ContactList.objects.create(account=other_account, name="Theirs")
    lists = [ContactList.objects.create(account=french, name=f"List {i}") for i in range(3)]
    ann = services.save_contact(french, number="+33612345678")
    bob = services.save_contact(french, number="+33612345679")
    services.add_to_list(lists[0], [ann, bob])
    services.add_to_list(lists[2], [bob])
    first = api.get("/lists", {"limit": 2}).json()
    assert [(r["name"], r["members"]) for r in first["results"]] == [("List 2", 1), ("List 1", 0)]
    second = api.get("/lists", {"cursor": first["next_cursor"]}).json()
    assert [(r["name"], r["members"]) for r in second["results"]] == [("List 0", 2)]
    assert second["next_cursor"] is None


def test_members_are_added_and_removed_by_id_or_number(api, french, other_account):
    vip = ContactList.objects.create(account=french, name="VIP")
    ann = services.save_contact(french, number="+33612345678")
    bob = services.save_contact(french, number="+33612345679")
    eve = services.save_contact(french, number="+40721234567")
    theirs = services.save_contact(other_account, number="+33612345670")
    services.add_to_list(vip, [eve])
    response = api.post(
        f"/lists/{vip.pk}/members",
        {
            "contact_ids": [ann.pk, theirs.pk, eve.pk, ann.pk],
            "numbers": ["06 12 34 56 79", "+33612345670", "0612", "\x00"],
        },
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "added": 2,
        "already": 1,
        "members": 3,
        "errors": {
            "contact_ids.1": ["No contact with this id in your account."],
            "numbers.1": ["+33612345670 is not a contact of this account."],
            "numbers.2": [
                "“0612” is not a valid number of France. Write it with + and the country code, "
                "or as a number of France (06 12 34 56 78)."
            ],
            "numbers.3": ["The NUL character (\\u0000) is not allowed."],
        },
    }
    assert set(vip.contacts.all()) == {ann, bob, eve}
    assert not Membership.objects.filter(contact=theirs).exists()

    response = api.post(
        f"/lists/{vip.pk}/members/remove",
        {"contact_ids": [ann.pk], "numbers": ["+33612345679", "+33612345678", "+33699999999"]},
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "removed": 2,
        "not_members": 0,
        "members": 1,
        "errors": {"numbers.2": ["+33699999999 is not a contact of this account."]},
    }
    response = api.post(f"/lists/{vip.pk}/members/remove", {"contact_ids": [ann.pk]})
    assert (response.json()["removed"], response.json()["not_members"]) == (0, 1)
    assert list(vip.contacts.all()) == [eve]
    assert Contact.objects.count() == 4  # removed from the list, not deleted


def test_adding_members_with_an_idempotency_key_is_done_once(api, french):
    vip = ContactList.objects.create(account=french, name="VIP")
    ann = services.save_contact(french, number="+33612345678")
    headers = {"Idempotency-Key": "add-ann"}
    first = api.post(f"/lists/{vip.pk}/members", {"contact_ids": [ann.pk]}, headers=headers)
    services.remove_from_list(vip, [ann])
    again = api.post(f"/lists/{vip.pk}/members", {"contact_ids": [ann.pk]}, headers=headers)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert not vip.contacts.exists()  # the replay did nothing


@pytest.mark.parametrize(
    "body",
    [
        {"contact_ids": ["1"]},
        {"contact_ids": [True]},
        {"contact_ids": [0]},
        {"contact_ids": [2**63]},
        {"contact_ids": list(range(1, 10_002))},
        {"numbers": [612345678]},
        {"numbers": "+33612345678"},
        {"contacts": [1]},
    ],
)
def test_odd_members_are_refused_clearly(api, french, body):
    vip = ContactList.objects.create(account=french, name="VIP")
    response = api.post(f"/lists/{vip.pk}/members", body)
    assert response.status_code == 422, response.content
    error_of(response)


def test_10000_members_by_number_at_once(api, french):
    vip = ContactList.objects.create(account=french, name="VIP")
    numbers = [f"+336{i:08d}" for i in range(10_000)]
    Contact.objects.bulk_create(Contact(account=french, number=n) for n in numbers)
    response = api.post(f"/lists/{vip.pk}/members", {"numbers": numbers})
    assert response.status_code == 200, response.content[:300]
    assert response.json()["added"] == response.json()["members"] == 10_000
    response = api.post(f"/lists/{vip.pk}/members/remove", {"numbers": numbers})
    assert response.json()["removed"] == 10_000 and not vip.contacts.exists()


# --- Tenancy ---------------------------------------------------------------------------------


def _theirs(other_account):
    contact = services.save_contact(other_account, number="+33612345678", name="Theirs")
    contact_list = ContactList.objects.create(account=other_account, name="Theirs")
    services.add_to_list(contact_list, [contact])
    return contact, contact_list


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/contacts/{contact}", None),
        ("patch", "/contacts/{contact}", {"name": "Mine now"}),
        ("delete", "/contacts/{contact}", None),
        ("get", "/lists/{list}", None),
        ("patch", "/lists/{list}", {"name": "Mine now"}),
        ("delete", "/lists/{list}", None),
        ("post", "/lists/{list}/members", {"contact_ids": []}),
        ("post", "/lists/{list}/members/remove", {"contact_ids": ["{contact}"]}),
    ],
)
def test_another_accounts_contact_or_list_is_a_404(api, other_account, method, path, body):
    contact, contact_list = _theirs(other_account)
    path = path.format(contact=contact.pk, list=contact_list.pk)
    if body and body.get("contact_ids"):
        body = {"contact_ids": [contact.pk]}
    if method == "post":
        response = api.post(path, body)
    elif method == "get":
        response = api.get(path)
    else:
        response = send(api, method, path, body)
    assert response.status_code == 404, response.content
    assert error_of(response)["code"] == "not_found"
    contact.refresh_from_db()
    contact_list.refresh_from_db()
    assert (contact.name, contact_list.name) == ("Theirs", "Theirs")
    assert list(contact_list.contacts.all()) == [contact]


def test_another_accounts_contacts_lists_and_fields_are_never_listed(api, account, other_account):
    _theirs(other_account)
    assert api.get("/contacts").json() == {"results": [], "next_cursor": None}
    assert api.get("/contacts", {"search": "Theirs"}).json()["results"] == []
    assert api.get("/contacts", {"number": "+33612345678"}).json()["results"] == []
    assert api.get("/lists").json() == {"results": [], "next_cursor": None}
    assert api.get("/contact-fields").json() == []


def test_another_accounts_contacts_are_not_touched_by_a_bulk_upsert(api, account, other_account):
    contact, _ = _theirs(other_account)
    response = api.post(
        "/contacts/bulk", {"contacts": [{"number": "+33612345678", "name": "Mine"}]}
    )
    assert response.json()["created"] == 1
    contact.refresh_from_db()
    assert contact.name == "Theirs"
    assert Contact.objects.get(account=account).name == "Mine"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/contacts"),
        ("post", "/contacts"),
        ("post", "/contacts/bulk"),
        ("get", "/contacts/1"),
        ("get", "/contact-fields"),
        ("get", "/lists"),
        ("post", "/lists"),
        ("post", "/lists/1/members"),
    ],
)
def test_every_endpoint_needs_a_key(client, db, method, path):
    response = getattr(client, method)("/api/v1" + path, content_type="application/json")
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_contacts_count_against_the_rate_limit(api, account, settings):
    settings.SMSHUB_API_RATE_LIMIT = 2
    assert api.get("/contacts").status_code == 200
    assert api.get("/lists").status_code == 200
    response = api.get("/contact-fields")
    assert response.status_code == 429 and response["Retry-After"]
