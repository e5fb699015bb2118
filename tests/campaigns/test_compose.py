import pytest
from django.urls import reverse

from campaigns.models import Membership, Message

from ..factories import CategoryFactory, MembershipFactory, MessageFactory, SenderNameFactory

pytestmark = pytest.mark.django_db

COMPOSE = reverse("campaigns:compose")


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


def test_sending_queues_a_normalised_message(operator_client, account, operator):
    category = CategoryFactory(account=account)
    SenderNameFactory(account=account, name="Clinic")
    response = operator_client.post(
        COMPOSE,
        {
            "recipient": "+33 6 12 34 56 78",
            "text": "See you at 10:00 €",
            "sender": "Clinic",
            "category": category.pk,
        },
        follow=True,
    )
    assert response.status_code == 200
    message = Message.objects.get()
    assert message.account == account
    assert message.recipient == "+33612345678"
    assert message.sender == "Clinic"
    assert message.category == category
    assert message.created_by == operator
    assert message.status == Message.Status.QUEUED
    assert (message.encoding, message.segments) == ("GSM-7", 1)
    page = response.content.decode()
    assert "Message to +33612345678 queued." in page
    assert f'id="status-{message.pk}"' in page


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"recipient": "0612", "text": "Hi"}, "is not a phone number"),
        ({"recipient": "+33 6 12", "text": "Hi"}, "not a valid phone number"),
        ({"recipient": "", "text": "Hi"}, "This field is required"),
        ({"recipient": "+33612345678", "text": ""}, "This field is required"),
        ({"recipient": "+33612345678", "text": "   "}, "Write the message to send"),
        ({"recipient": "+33612345678", "text": "Hi", "sender": "NotMine"}, "Select a valid choice"),
        ({"recipient": "+33612345678", "text": "x" * 1531}, "at most 1530 characters"),
    ],
)
def test_bad_input_gets_a_form_error_and_sends_nothing(operator_client, data, error):
    response = operator_client.post(COMPOSE, data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Message.objects.exists()


def test_another_accounts_category_cannot_be_used(operator_client):
    elsewhere = CategoryFactory()
    response = operator_client.post(
        COMPOSE, {"recipient": "+33612345678", "text": "Hi", "category": elsewhere.pk}
    )
    assert "Select a valid choice" in response.content.decode()
    assert not Message.objects.exists()


def test_a_viewer_cannot_send(client, account):
    viewer = MembershipFactory(account=account, role=Membership.Role.VIEWER).user
    client.force_login(viewer)
    assert "your role is viewer" in client.get(COMPOSE).content.decode()
    response = client.post(COMPOSE, {"recipient": "+33612345678", "text": "Hi"})
    assert response.status_code == 403
    assert not Message.objects.exists()


def test_a_user_in_no_account_is_told_so(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("lonely", password="x" * 12))
    response = client.get(COMPOSE)
    assert response.status_code == 403
    assert "not a member of any account" in response.content.decode()


def test_live_counter_reports_encoding_and_segments(operator_client):
    url = reverse("campaigns:text_counter")
    gsm = operator_client.post(url, {"text": "a" * 161}, headers={"HX-Request": "true"})
    assert "161 characters" in gsm.content.decode()
    assert "GSM-7" in gsm.content.decode()
    assert "2 SMS" in gsm.content.decode()
    unicode = operator_client.post(url, {"text": "Bună ziua"}).content.decode()
    assert "UCS-2" in unicode
    assert "<mark>ă</mark>" in unicode


def test_message_pages_of_another_account_are_404(client, account, other_account_user):
    message = MessageFactory(account=account)
    client.force_login(other_account_user)
    for name in ("campaigns:message_detail", "campaigns:message_status"):
        assert client.get(reverse(name, args=[message.pk])).status_code == 404


def test_status_badge_polls_until_final(operator_client, account):
    message = MessageFactory(account=account, status=Message.Status.SENT)
    url = reverse("campaigns:message_status", args=[message.pk])
    assert 'hx-trigger="every 2s"' in operator_client.get(url).content.decode()
    message.status = Message.Status.DELIVERED
    message.save()
    badge = operator_client.get(url).content.decode()
    assert "Delivered" in badge
    assert "hx-trigger" not in badge


def test_message_detail_shows_the_timeline(operator_client, account):
    from campaigns.services.compose import enqueue_message

    message = enqueue_message(account, recipient="+33612345678", text="Timeline please")
    page = operator_client.get(reverse("campaigns:message_detail", args=[message.pk]))
    assert "Queued to send now." in page.content.decode()
    fragment = operator_client.get(
        reverse("campaigns:message_detail", args=[message.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "<html" not in fragment
    assert "Timeline" in fragment


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


def test_a_send_time_is_read_in_the_accounts_timezone(operator_client, account):
    assert account.timezone == "Europe/Paris"
    response = operator_client.post(
        COMPOSE,
        {
            "recipient": "+33612345678",
            "text": "Later",
            "send_at": "2030-01-15T10:00",
            "window_end": "2030-01-15T12:00",
        },
        follow=True,
    )
    message = Message.objects.get()
    assert message.status == Message.Status.SCHEDULED
    assert message.scheduled_at.isoformat() == "2030-01-15T09:00:00+00:00"  # Paris is UTC+1
    assert message.window_end.isoformat() == "2030-01-15T11:00:00+00:00"
    assert "scheduled for 2030-01-15 10:00" in response.content.decode()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"send_at": "2030-01-15T10:00", "window_end": "2030-01-15T09:00"}, "Must be after"),
        ({"window_end": "2020-01-01T09:00"}, "already passed"),
        ({"send_at": "tomorrow"}, "Enter a valid date/time"),
    ],
)
def test_bad_schedules_are_form_errors(operator_client, data, error):
    response = operator_client.post(COMPOSE, {"recipient": "+33612345678", "text": "x", **data})
    assert error in response.content.decode()
    assert not Message.objects.exists()
