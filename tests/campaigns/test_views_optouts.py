"""Opt-outs: list, search, add, remove, import. Everyone reads; account admins change."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.models import Membership, OptOut
from campaigns.services import optouts
from campaigns.views.optouts import PAGE_SIZE

from ..factories import MembershipFactory, OptOutFactory

pytestmark = pytest.mark.django_db

LIST = reverse("campaigns:optout_list")
ADD = reverse("campaigns:optout_add")
IMPORT = reverse("campaigns:optout_import")


@pytest.fixture
def admin_client(client, account):
    client.force_login(MembershipFactory(account=account, role=Membership.Role.ADMIN).user)
    return client


@pytest.fixture
def viewer_client(client, account):
    client.force_login(MembershipFactory(account=account, role=Membership.Role.VIEWER).user)
    return client


def test_list_search_and_keyset_pages(viewer_client, account):
    rows = OptOutFactory.create_batch(PAGE_SIZE + 3, account=account)
    OptOutFactory(number="+33699999999")  # another account
    first = viewer_client.get(LIST)
    assert [o.pk for o in first.context["rows"]] == [o.pk for o in reversed(rows)][:PAGE_SIZE]
    older = first.context["older"]
    second = viewer_client.get(LIST, {"after": older})
    assert [o.pk for o in second.context["rows"]] == [o.pk for o in reversed(rows[:3])]
    assert second.context["older"] is None
    found = viewer_client.get(LIST, {"q": rows[0].number.replace("+33", "0033")})
    assert [o.pk for o in found.context["rows"]] == [rows[0].pk]
    assert "is not opted out" in viewer_client.get(LIST, {"q": "+33699999999"}).content.decode()
    bad = viewer_client.get(LIST, {"q": "12ab"}).content.decode()
    assert "is not a phone number" in bad and 'aria-invalid="true"' in bad


def test_admin_adds_a_number_normalised(admin_client, account):
    response = admin_client.post(ADD, {"number": "+33 6 12 34 56 78"})
    assert response.status_code == 302
    optout = OptOut.objects.get()
    assert (optout.account, optout.number, optout.source) == (account, "+33612345678", "staff")
    page = admin_client.get(LIST).content.decode()
    assert "+33612345678 opted out" in page


def test_adding_a_bad_or_known_number_says_why_next_to_the_field(admin_client, account):
    page = admin_client.post(ADD, {"number": "0612"}).content.decode()
    assert "is not a phone number" in page
    assert 'id="id_number_error"' in page
    OptOutFactory(account=account, number="+33612345678")
    page = admin_client.post(ADD, {"number": "+33612345678"}).content.decode()
    assert "+33612345678 is already opted out." in page
    assert OptOut.objects.count() == 1


def test_admin_removes_a_number(admin_client, account):
    optout = OptOutFactory(account=account)
    response = admin_client.post(reverse("campaigns:optout_remove", args=[optout.pk]))
    assert response.status_code == 302
    assert not OptOut.objects.exists()


def test_import_a_pasted_list_reports_bad_lines_by_number(admin_client, account):
    OptOutFactory(account=account, number="+33612345678")
    text = "+33612345678\n0033612345679\n\nnot a number\n+33612345680\n+33 6 12 34 56 80\n0612\n"
    response = admin_client.post(IMPORT, {"numbers": text})
    result = response.context["result"]
    assert result["added"] == 2
    assert result["already"] == 1
    assert result["duplicates"] == 1
    assert [line for line, _ in result["errors"]] == [4, 7]
    assert set(OptOut.objects.filter(account=account).values_list("number", flat=True)) == {
        "+33612345678",
        "+33612345679",
        "+33612345680",
    }
    assert OptOut.objects.get(number="+33612345679").source == "import"
    page = response.content.decode()
    assert "2 lines could not be read" in page
    assert "“not a number” is not a phone number" in page


def test_import_a_csv_file_by_its_number_column(admin_client, account):
    csv = b"name;mobile\nAda;+33612345601\nBob;+33612345602\nCyd;nope\n"
    upload = SimpleUploadedFile("optouts.csv", csv, content_type="text/csv")
    result = admin_client.post(IMPORT, {"file": upload}).context["result"]
    assert result["added"] == 2
    assert result["errors"] == [
        (4, "“nope” is not a phone number. Start it with + and the country code.")
    ]


def test_import_needs_one_list(admin_client):
    page = admin_client.post(IMPORT, {"numbers": "  "}).content.decode()
    assert "Paste some numbers or choose a CSV file." in page
    upload = SimpleUploadedFile("optouts.csv", b"+33612345601\n", content_type="text/csv")
    page = admin_client.post(IMPORT, {"numbers": "+33612345602", "file": upload}).content.decode()
    assert "not both" in page
    assert not OptOut.objects.exists()


def test_parse_numbers_reads_the_first_column_without_a_header():
    parsed = optouts.parse_numbers("+33612345601,Ada\n+33612345602,Bob\n")
    assert parsed.numbers == ["+33612345601", "+33612345602"]
    assert parsed.errors == []


@pytest.mark.parametrize("role", [Membership.Role.VIEWER, Membership.Role.OPERATOR])
def test_only_admins_change_opt_outs(client, account, role):
    client.force_login(MembershipFactory(account=account, role=role).user)
    optout = OptOutFactory(account=account)
    page = client.get(LIST).content.decode()
    assert optout.number in page
    assert "Opt out</button>" not in page and "Remove" not in page
    assert client.post(ADD, {"number": "+33612345678"}).status_code == 403
    assert client.post(reverse("campaigns:optout_remove", args=[optout.pk])).status_code == 403
    assert client.get(IMPORT).status_code == 403
    assert client.post(IMPORT, {"numbers": "+33612345678"}).status_code == 403
    assert list(OptOut.objects.values_list("number", flat=True)) == [optout.number]


def test_another_accounts_opt_out_is_404_and_unseen(admin_client, account):
    theirs = OptOutFactory(number="+33612345699")
    assert (
        admin_client.post(reverse("campaigns:optout_remove", args=[theirs.pk])).status_code == 404
    )
    assert OptOut.objects.filter(pk=theirs.pk).exists()
    assert "+33612345699" not in admin_client.get(LIST).content.decode()
    # Adding the same number here is this account's own opt-out.
    admin_client.post(ADD, {"number": "+33612345699"})
    assert OptOut.objects.filter(number="+33612345699").count() == 2
