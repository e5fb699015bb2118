"""The import page (a file or a pasted list, the column mapping, the summary) and the CSV
exports of a list, a segment and every contact: roles, tenancy, and files that are not what
they should be (never a 500)."""

import csv
import io

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns import uploads as kept_uploads
from campaigns.contacts import importing, transfer
from campaigns.contacts.models import Contact, ContactField, ContactList, Membership, Segment
from campaigns.models import Membership as Staff

from ..factories import AccountFactory, MembershipFactory

pytestmark = pytest.mark.django_db

Role = Staff.Role
IMPORT = reverse("contacts:import")
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def uploads(settings, tmp_path):
    settings.SMSHUB_UPLOAD_DIR = tmp_path / "uploads"
    return tmp_path / "uploads"


@pytest.fixture
def acme(db):
    return AccountFactory(name="Acme", country="FR")


@pytest.fixture
def other(db):
    return AccountFactory(name="Other Ltd", country="FR")


def login(client, account, role):
    client.force_login(MembershipFactory(account=account, role=role).user)
    return client


@pytest.fixture
def as_admin(client, acme):
    return login(client, acme, Role.ADMIN)


@pytest.fixture
def as_operator(client, acme):
    return login(client, acme, Role.OPERATOR)


@pytest.fixture
def as_viewer(client, acme):
    return login(client, acme, Role.VIEWER)


@pytest.fixture
def city(acme):
    return ContactField.objects.create(account=acme, key="city", label="City")


def upload(client, content: bytes | str, name: str = "people.csv", **extra):
    if isinstance(content, str):
        content = content.encode()
    return client.post(
        IMPORT, {"action": "upload", "csv_file": SimpleUploadedFile(name, content), **extra}
    )


def mapping_of(response) -> dict:
    """The mapping form as the page proposes it, ready to post."""
    form = response.context["form"]
    data = {"action": "import"}
    for name, bound in form.initial.items():
        if isinstance(bound, bool):
            if bound:
                data[name] = "on"
        elif bound is not None:
            data[name] = bound
    return data


def imported(client, content, changes=None, name="people.csv"):
    first = upload(client, content, name)
    assert first.status_code == 200, first.content.decode()[:2000]
    data = mapping_of(first)
    data.update(changes or {})
    return client.post(IMPORT, data)


PEOPLE = (
    "Phone;Name;City;Age;Joined\n"
    "06 12 34 56 78;Ann;Lyon;34;2025-01-10\n"
    "0612;Bad;Paris;1;\n"
    "+33612345679;Bob;;19;31/12/2024\n"
    "06 12 34 56 78;Ann again;Nice;35;\n"
)


# --- who may import -----------------------------------------------------------------------


def test_viewers_get_no_import_form(as_viewer):
    response = as_viewer.get(IMPORT)
    assert response.status_code == 403
    assert b'name="csv_file"' not in response.content
    assert upload(as_viewer, PEOPLE).status_code == 403
    assert not Contact.objects.exists()


def test_operators_see_the_upload_step(as_operator):
    response = as_operator.get(IMPORT)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="csv_file"' in html and 'name="pasted"' in html


# --- the whole import ---------------------------------------------------------------------


def test_an_admin_imports_a_file_with_new_fields_into_a_new_list(as_admin, acme, city):
    first = upload(as_admin, PEOPLE)
    html = first.content.decode()
    assert first.status_code == 200 and "2. What each column holds" in html
    initial = first.context["form"].initial
    # Guessed: the number by its header, City is the account's field, the others new fields
    # of the type their values suggest.
    assert (initial["column_0"], initial["column_1"], initial["column_2"]) == (
        "number",
        "name",
        "field:city",
    )
    assert (initial["column_3"], initial["type_3"]) == ("new", "number")
    assert (initial["column_4"], initial["key_4"], initial["type_4"]) == ("new", "joined", "date")
    data = mapping_of(first)
    data.update(contact_list="new", new_list="Spring fair")
    response = as_admin.post(IMPORT, data, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    summary = response.context["summary"]
    assert (summary["rows"], summary["created"], summary["updated"]) == (4, 2, 0)
    assert (summary["duplicates"], summary["rejected_count"]) == (1, 1)
    assert summary["rejected"] == [
        {"line": 3, "value": "0612", "reason": summary["rejected"][0]["reason"]}
    ]
    assert "0612" in html and "not a valid number of France" in html
    assert summary["new_fields"] == ["{age}", "{joined}"]
    assert ContactField.objects.get(account=acme, key="age").type == "number"
    ann = Contact.objects.get(account=acme, number="+33612345678")
    assert (ann.name, ann.values) == ("Ann", {"city": "Lyon", "age": 34, "joined": "2025-01-10"})
    bob = Contact.objects.get(account=acme, number="+33612345679")
    assert bob.values == {"age": 19, "joined": "2024-12-31"}  # an empty cell sets nothing
    fair = ContactList.objects.get(account=acme, name="Spring fair")
    assert set(fair.contacts.all()) == {ann, bob} and summary["added_to_list"] == 2
    assert reverse("contacts:list_detail", args=[fair.pk]) in html


def test_existing_contacts_are_updated_or_left_alone(as_operator, acme, city):
    Contact.objects.create(account=acme, number="+33612345678", name="Ann", values={"city": "Lyon"})
    content = "number,name,city\n0612345678,,Paris\n0612345679,Bob,\n"
    skip = imported(as_operator, content, {"mode": "skip"}).context["summary"]
    assert (skip["created"], skip["skipped"], skip["updated"]) == (1, 1, 0)
    assert Contact.objects.get(number="+33612345678").values == {"city": "Lyon"}
    update = imported(as_operator, content).context["summary"]
    assert (update["created"], update["updated"]) == (0, 2)
    ann = Contact.objects.get(number="+33612345678")
    assert (ann.name, ann.values) == ("Ann", {"city": "Paris"})  # an empty name kept hers


def test_a_pasted_list_is_imported_into_an_existing_list(as_operator, acme):
    vip = ContactList.objects.create(account=acme, name="VIP")
    first = as_operator.post(
        IMPORT, {"action": "upload", "pasted": "06 12 34 56 78\n+40 721 234 567\nnope\n"}
    )
    assert first.status_code == 200
    data = mapping_of(first)
    assert data["column_0"] == "number" and "has_header" not in data
    data["contact_list"] = str(vip.pk)
    summary = as_operator.post(IMPORT, data).context["summary"]
    assert (summary["created"], summary["rejected_count"]) == (2, 1)
    assert summary["rejected"][0]["line"] == 3
    assert vip.contacts.count() == 2


def test_the_same_import_confirmed_twice_is_done_once(as_operator, acme):
    first = upload(as_operator, "number\n0612345678\n")
    data = mapping_of(first)
    assert as_operator.post(IMPORT, data).context["summary"]["created"] == 1
    again = as_operator.post(IMPORT, data)
    assert again.context["again"] is True and again.context["summary"]["created"] == 1
    assert "imported already (once)" in again.content.decode()
    assert Contact.objects.count() == 1


def test_progress_is_polled_while_importing(as_operator, acme):
    first = upload(as_operator, "number\n0612345678\n")
    token = first.context["upload"].token
    url = reverse("contacts:import_progress", args=[token])
    assert url in first.content.decode()
    assert "<progress" not in as_operator.get(url).content.decode()  # nothing running yet
    user = first.wsgi_request.user
    cache.set(f"contacts-import-progress:{user.pk}:{token}", {"done": 50, "total": 200}, 60)
    html = as_operator.get(url).content.decode()
    assert 'max="200" value="50"' in html and "50 of 200 lines" in html
    assert as_operator.get(reverse("contacts:import_progress", args=["x"])).status_code == 200


def test_rejected_rows_beyond_the_first_thousand_are_counted(as_operator, acme, monkeypatch):
    monkeypatch.setattr(importing, "MAX_REJECTED", 3)
    content = "number\n" + "".join(f"bad{n}\n" for n in range(5)) + "0612345678\n"
    response = imported(as_operator, content, {"column_0": "number"})
    summary = response.context["summary"]
    assert (summary["created"], summary["rejected_count"]) == (1, 5)
    assert [row["line"] for row in summary["rejected"]] == [2, 3, 4]
    assert "Only the first 3 are listed" in response.content.decode()


def test_the_number_column_is_found_by_its_values(as_admin, acme):
    first = upload(as_admin, "Hotel,Mobile,City,Town\nIbis,06 12 34 56 78,Lyon,Lyon\n")
    initial = first.context["form"].initial
    assert [initial[f"column_{i}"] for i in range(4)] == ["new", "number", "new", "new"]
    assert [initial[f"key_{i}"] for i in range(4)] == ["hotel", "mobile", "city", "town"]
    # Two columns of the same name: the second is not proposed as the same new field.
    twice = upload(as_admin, "number,City,city\n0612345678,Lyon,Lyon\n").context["form"]
    assert (twice.initial["column_1"], twice.initial["column_2"]) == ("new", "ignore")


# --- mappings that cannot be imported -----------------------------------------------------


def test_with_htmx_a_mapping_error_comes_back_in_the_card(as_operator, acme):
    data = mapping_of(upload(as_operator, "number,name\n0612345678,Ann\n"))
    data["column_0"] = "ignore"
    response = as_operator.post(IMPORT, data, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200  # htmx swaps no 4xx answer
    assert html.lstrip().startswith('<section class="card form-card" id="import-card"')
    assert "Choose the column that holds the numbers." in html


def test_a_mapping_without_a_number_column_imports_nothing(as_operator, acme):
    data = mapping_of(upload(as_operator, "number,name\n0612345678,Ann\n"))
    data["column_0"] = "ignore"
    response = as_operator.post(IMPORT, data)
    assert response.status_code == 400
    assert "Choose the column that holds the numbers." in response.content.decode()
    assert not Contact.objects.exists()


def test_two_columns_cannot_hold_the_same_thing(as_operator, acme):
    data = mapping_of(upload(as_operator, "number,other\n0612345678,0612345679\n"))
    data["column_1"] = "number"
    response = as_operator.post(IMPORT, data)
    assert response.status_code == 400
    assert "Another column is “number” already" in response.content.decode()


@pytest.mark.parametrize(
    "key, error",
    [
        ("city", "already has a field “city”"),
        ("number", "“number” is a field of every contact already."),
        ("name", "“name” is a field of every contact already."),
        ("language", "“language” is a field of every contact already."),
        ("First Name", "Use lowercase letters"),
    ],
)
def test_a_new_field_key_may_not_clash(as_admin, acme, city, key, error):
    data = mapping_of(upload(as_admin, "number,town\n0612345678,Lyon\n"))
    data.update(column_1="new", key_1=key)
    response = as_admin.post(IMPORT, data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Contact.objects.exists()
    assert list(ContactField.objects.values_list("key", flat=True)) == ["city"]


def test_two_new_fields_may_not_share_a_key(as_admin, acme):
    data = mapping_of(upload(as_admin, "number,town,city\n0612345678,Lyon,Lyon\n"))
    data.update(column_1="new", key_1="city", column_2="new", key_2="city")
    response = as_admin.post(IMPORT, data)
    assert response.status_code == 400
    assert "Two columns cannot both be new field “city”" in response.content.decode()


def test_only_account_admins_add_fields(as_operator, acme):
    first = upload(as_operator, "number,town\n0612345678,Lyon\n")
    assert first.context["form"].initial["column_1"] == "ignore"
    assert "Only account admins can add custom fields" in first.content.decode()
    data = mapping_of(first)
    data.update(column_1="new", key_1="town")
    assert as_operator.post(IMPORT, data).status_code == 400
    assert not ContactField.objects.exists() and not Contact.objects.exists()


def test_a_new_list_needs_a_free_name(as_operator, acme):
    ContactList.objects.create(account=acme, name="VIP")
    data = mapping_of(upload(as_operator, "number\n0612345678\n"))
    data.update(contact_list="new", new_list="vip")
    response = as_operator.post(IMPORT, data)
    assert response.status_code == 400
    assert "A list with this name exists" in response.content.decode()


def test_another_accounts_list_cannot_be_chosen(as_operator, acme, other):
    theirs = ContactList.objects.create(account=other, name="Theirs")
    data = mapping_of(upload(as_operator, "number\n0612345678\n"))
    data["contact_list"] = str(theirs.pk)
    response = as_operator.post(IMPORT, data)
    assert response.status_code == 400
    assert not Contact.objects.exists() and not theirs.contacts.exists()


def test_another_sessions_file_is_not_found(as_operator, client, acme):
    data = mapping_of(upload(as_operator, "number\n0612345678\n"))
    as_operator.logout()
    login(client, acme, Role.OPERATOR)
    response = client.post(IMPORT, data)
    assert response.status_code == 400
    assert "no longer on the server" in response.content.decode()
    assert not Contact.objects.exists()


def test_choosing_another_file_forgets_this_one(as_operator, uploads):
    data = mapping_of(upload(as_operator, "number\n0612345678\n"))
    assert len(list(uploads.glob("contacts/*.csv"))) == 1
    response = as_operator.post(IMPORT, {**data, "action": "cancel"})
    assert 'name="csv_file"' in response.content.decode()
    assert not list(uploads.glob("contacts/*.csv"))


# --- files that are not what they should be -----------------------------------------------


@pytest.mark.parametrize(
    "content, name, error",
    [
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100, "people.xlsx", "spreadsheet workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "people.xls", "spreadsheet"),
        (bytes(range(256)) * 4, "people.bin", "not a text file"),
        (b"", "empty.csv", "empty"),
        (b"  \n\n", "blank.csv", "The file is empty."),
    ],
)
def test_files_that_are_not_csv_are_refused_with_a_reason(as_operator, content, name, error):
    response = upload(as_operator, content, name)
    assert response.status_code == 400
    assert error in response.content.decode()


def test_nothing_chosen_says_so(as_operator):
    response = as_operator.post(IMPORT, {"action": "upload"})
    assert response.status_code == 400
    assert "Choose a file, or paste a list." in response.content.decode()


def test_a_file_that_is_not_utf8_is_read_as_windows_1252(as_operator, acme):
    content = "number;name\n0612345678;Zoé Brûlé\n".encode("cp1252")
    first = upload(as_operator, content)
    assert "read as Windows-1252" in first.content.decode()
    summary = as_operator.post(IMPORT, mapping_of(first)).context["summary"]
    assert summary["created"] == 1
    assert Contact.objects.get().name == "Zoé Brûlé"


def test_a_huge_line_is_a_bad_row_and_the_rest_is_imported(as_operator, acme):
    content = "number,name\n0612345678,Ann\n0612345679," + "x" * 300_000 + "\n0612345670,Cat\n"
    summary = imported(as_operator, content).context["summary"]
    assert (summary["created"], summary["rejected_count"]) == (2, 1)
    assert summary["rejected"][0]["line"] == 3
    assert "Longer than 100,000 characters" in summary["rejected"][0]["reason"]


def test_bad_values_are_listed_by_line_and_lose_nothing_else(as_admin, acme):
    content = (
        "number,name,age,note\n"
        "0612345678,Ann,34,ok\n"
        f"0612345679,{'N' * 201},3,ok\n"
        "0612345670,Cat,old,ok\n"
        f"0612345671,Dan,5,{'t' * 501}\n"
        '0612345672,"Eve\nOn two lines",6,ok\n'
        "0612345673,Fay,7,ok\n"
    )
    data = mapping_of(upload(as_admin, content))
    data.update(column_2="new", key_2="age", type_2="number", column_3="new", key_3="note")
    summary = as_admin.post(IMPORT, data).context["summary"]
    assert [(row["line"], row["reason"]) for row in summary["rejected"]] == [
        (3, "name: at most 200 characters."),
        (4, "age: “old” is not a number."),
        (5, "note: At most 500 characters."),
    ]
    assert summary["created"] == 3
    assert Contact.objects.get(number="+33612345672").name == "Eve\nOn two lines"
    assert Contact.objects.get(number="+33612345673").values == {"age": 7, "note": "ok"}


def test_garbage_in_a_text_file_never_fails_the_import(as_operator, acme):
    content = b'number,name\n\xff\xfe0612345678,\xc3\n0612345679,\xe9\xe9\n"0612,\n'
    first = upload(as_operator, content)
    assert first.status_code == 200
    response = as_operator.post(IMPORT, mapping_of(first))
    assert response.status_code == 200
    summary = response.context["summary"]
    # phonenumbers reads past the stray bytes before a number, as everywhere in the hub.
    assert (summary["created"], summary["rejected_count"]) == (2, 1)
    assert summary["rejected"][0]["line"] == 4


def test_a_file_too_large_is_refused(as_operator, monkeypatch):
    monkeypatch.setattr(kept_uploads, "MAX_BYTES", 10)
    response = upload(as_operator, "number\n0612345678\n")
    assert response.status_code == 400
    assert "at most 10" in response.content.decode()


# --- exports ------------------------------------------------------------------------------


@pytest.fixture
def people(acme, city):
    ContactField.objects.create(account=acme, key="age", label="Age", type="number")
    ann = Contact.objects.create(
        account=acme, number="+33612345601", name="Ann", values={"city": "Lyon", "age": 34}
    )
    bob = Contact.objects.create(
        account=acme, number="+33612345602", name='=HYPERLINK("x")', values={"age": -2.5}
    )
    cat = Contact.objects.create(account=acme, number="+33612345603", name="Cat", language="fr")
    vip = ContactList.objects.create(account=acme, name="VIP")
    zoo = ContactList.objects.create(account=acme, name="Zoo")
    Membership.objects.create(contact=ann, contact_list=vip)
    Membership.objects.create(contact=ann, contact_list=zoo)
    Membership.objects.create(contact=bob, contact_list=vip)
    return {"ann": ann, "bob": bob, "cat": cat, "vip": vip}


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_every_contact_is_exported_with_fields_and_lists(as_viewer, people):
    response = as_viewer.get(reverse("contacts:export"))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment;" in response["Content-Disposition"]
    assert rows_of(response) == [
        ["number", "name", "language", "age", "city", "lists"],
        ["+33612345601", "Ann", "", "34", "Lyon", "VIP; Zoo"],
        ["+33612345602", '\'=HYPERLINK("x")', "", "-2.5", "", "VIP"],
        ["+33612345603", "Cat", "fr", "", "", ""],
    ]


def test_a_list_is_exported_in_pages(as_viewer, people, monkeypatch):
    monkeypatch.setattr(transfer, "EXPORT_CHUNK", 1)
    response = as_viewer.get(reverse("contacts:export_list", args=[people["vip"].pk]))
    assert [row[0] for row in rows_of(response)] == ["number", "+33612345601", "+33612345602"]
    assert "contacts-vip-" in response["Content-Disposition"]


def test_a_segment_is_exported(as_viewer, acme, people):
    lyon = Segment.objects.create(
        account=acme, name="Lyon", rules=[{"field": "city", "op": "eq", "value": "Lyon"}]
    )
    rows = rows_of(as_viewer.get(reverse("contacts:export_segment", args=[lyon.pk])))
    assert [row[1] for row in rows] == ["name", "Ann"]


def test_another_accounts_list_or_segment_is_not_found(as_viewer, other):
    theirs = ContactList.objects.create(account=other, name="Theirs")
    segment = Segment.objects.create(account=other, name="All", rules=[])
    assert as_viewer.get(reverse("contacts:export_list", args=[theirs.pk])).status_code == 404
    assert as_viewer.get(reverse("contacts:export_segment", args=[segment.pk])).status_code == 404


def test_an_export_holds_only_the_accounts_contacts(as_viewer, acme, other, people):
    Contact.objects.create(account=other, number="+33699999999", name="Not ours")
    rows = rows_of(as_viewer.get(reverse("contacts:export")))
    assert "+33699999999" not in {row[0] for row in rows}


def test_an_export_round_trips_through_the_import(as_admin, acme, people):
    exported = b"".join(as_admin.get(reverse("contacts:export")).streaming_content)
    Contact.objects.all().delete()
    summary = imported(as_admin, exported, {"column_5": "ignore"}).context["summary"]
    assert summary["created"] == 3 and summary["rejected_count"] == 0
    ann = Contact.objects.get(number="+33612345601")
    assert (ann.name, ann.values) == ("Ann", {"city": "Lyon", "age": 34})
