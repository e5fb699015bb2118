"""Sender names: listed for everyone, requested by account admins, approved in admin."""

import pytest
from django.urls import reverse

from campaigns.models import Membership, SenderName
from campaigns.views.senders import SenderNameRequestForm

from ..factories import MembershipFactory, SenderNameFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("campaigns:sender_list")
REQUEST = reverse("campaigns:sender_request")


@pytest.fixture
def admin_client(client, account):
    client.force_login(MembershipFactory(account=account, role=Membership.Role.ADMIN).user)
    return client


def test_lists_this_accounts_names_with_their_status(operator_client, account):
    SenderNameFactory(account=account, name="Clinic")
    SenderNameFactory(account=account, name="Promo", status=SenderName.Status.PENDING)
    SenderNameFactory(name="Elsewhere")
    page = operator_client.get(LIST).content.decode()
    assert "Clinic" in page and "Approved" in page
    assert "Promo" in page and "Pending approval" in page
    assert "Elsewhere" not in page


def test_an_admin_requests_a_name_that_waits_for_approval(admin_client, account):
    response = admin_client.post(REQUEST, {"name": " Clinic2 "})
    assert response.status_code == 302
    sender = SenderName.objects.get()
    assert (sender.account, sender.name, sender.status) == (account, "Clinic2", "pending")
    assert "“Clinic2” requested" in admin_client.get(LIST).content.decode()


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("ab", "3 to 11 letters and digits"),
        ("Bad Name", "3 to 11 letters and digits"),
        ("Café", "3 to 11 letters and digits"),
        ("TwelveLetter", "3 to 11 letters and digits"),
        ("", "This field is required."),
    ],
)
def test_invalid_names_are_refused_next_to_the_field(admin_client, name, error):
    page = admin_client.post(REQUEST, {"name": name}).content.decode()
    assert error in page
    assert 'id="id_name_error"' in page
    assert not SenderName.objects.exists()


def test_a_name_is_unique_per_account_whatever_its_case(admin_client, account):
    SenderNameFactory(account=account, name="Clinic", status=SenderName.Status.REJECTED)
    SenderNameFactory(name="Shop")  # another account's: no conflict
    page = admin_client.post(REQUEST, {"name": "CLINIC"}).content.decode()
    assert "This account already has “Clinic” (rejected)." in page
    assert admin_client.post(REQUEST, {"name": "Shop"}).status_code == 302
    assert SenderName.objects.filter(account=account, name="Shop").exists()


def test_a_request_sent_twice_at_once_is_answered_like_a_duplicate(
    admin_client, account, monkeypatch
):
    """A double click: both requests pass the form's check before either has written the
    name. The second then meets the database's unique constraint: a form error, not a 500."""
    check = SenderNameRequestForm.clean_name

    def other_request_wins(form) -> str:
        name = check(form)
        SenderName.objects.create(account=account, name=name, status=SenderName.Status.PENDING)
        return name

    monkeypatch.setattr(SenderNameRequestForm, "clean_name", other_request_wins)
    response = admin_client.post(REQUEST, {"name": "Clinic"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "This account already has “Clinic” (pending approval)." in page
    assert 'id="id_name_error"' in page
    assert SenderName.objects.filter(account=account).count() == 1


@pytest.mark.parametrize("role", [Membership.Role.VIEWER, Membership.Role.OPERATOR])
def test_only_admins_request_names(client, account, role):
    client.force_login(MembershipFactory(account=account, role=role).user)
    assert "Request a sender name" not in client.get(LIST).content.decode()
    response = client.post(REQUEST, {"name": "Clinic"})
    assert response.status_code == 403
    assert "Only account admins can change this." in response.content.decode()
    assert not SenderName.objects.exists()


def test_a_requested_name_is_approved_in_admin(admin_client, account):
    admin_client.post(REQUEST, {"name": "Clinic"})
    sender = SenderName.objects.get()
    staff = UserFactory(username="root", is_staff=True, is_superuser=True)
    admin_client.force_login(staff)
    response = admin_client.post(
        reverse("admin:campaigns_sendername_changelist"),
        {"action": "approve", "_selected_action": [sender.pk]},
    )
    assert response.status_code == 302
    sender.refresh_from_db()
    assert sender.status == SenderName.Status.APPROVED
