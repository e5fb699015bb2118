"""Who sees and does what: staff see only their accounts; viewers read, operators send, account
admins manage sender names and opt-outs; another account's object is a 404 on every page."""

import pytest
from django.urls import reverse

from campaigns.models import Membership, Message, OptOut, SenderName

from ..factories import (
    AccountFactory,
    MembershipFactory,
    MessageFactory,
    OptOutFactory,
    ReplyFactory,
)

pytestmark = pytest.mark.django_db

Role = Membership.Role
NUMBER = "+33612349999"

PAGES = [
    ("campaigns:dashboard", []),
    ("campaigns:compose", []),
    ("campaigns:message_list", []),
    ("campaigns:inbox", []),
    ("campaigns:optout_list", []),
    ("campaigns:sender_list", []),
    ("campaigns:category_list", []),
    ("campaigns:campaign_list", []),
]


@pytest.fixture
def mine(account):
    message = MessageFactory(account=account, recipient=NUMBER)
    ReplyFactory(account=account, from_number=NUMBER, message=message)
    return {"message": message, "optout": OptOutFactory(account=account)}


@pytest.fixture
def theirs(db):
    other = AccountFactory(name="Other Ltd")
    message = MessageFactory(account=other, recipient="+33612348888")
    ReplyFactory(account=other, from_number="+33612348888", message=message, text="Theirs")
    return {"account": other, "message": message, "optout": OptOutFactory(account=other)}


def login(client, account, role):
    client.force_login(MembershipFactory(account=account, role=role).user)
    return client


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_every_page(client, account, mine, role):
    login(client, account, role)
    urls = [reverse(name, args=args) for name, args in PAGES] + [
        reverse("campaigns:message_detail", args=[mine["message"].pk]),
        reverse("campaigns:message_status", args=[mine["message"].pk]),
        reverse("campaigns:thread", args=[NUMBER]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        if "status" not in url:
            assert "aria-current=" in response.content.decode(), url


# (role, may send, may manage)
RIGHTS = [(Role.VIEWER, False, False), (Role.OPERATOR, True, False), (Role.ADMIN, True, True)]


@pytest.mark.parametrize(("role", "sends", "manages"), RIGHTS)
def test_what_each_role_may_change(client, account, mine, role, sends, manages):
    login(client, account, role)
    expected_send = 302 if sends else 403
    expected_manage = 302 if manages else 403
    answered = client.post(reverse("campaigns:reply", args=[NUMBER]), {"text": "Answer"})
    assert answered.status_code == expected_send
    assert Message.objects.filter(text="Answer").exists() == sends
    added = client.post(reverse("campaigns:optout_add"), {"number": "+33612345678"})
    assert added.status_code == expected_manage
    assert OptOut.objects.filter(number="+33612345678").exists() == manages
    removed = client.post(reverse("campaigns:optout_remove", args=[mine["optout"].pk]))
    assert removed.status_code == expected_manage
    assert OptOut.objects.filter(pk=mine["optout"].pk).exists() != manages
    imported = client.post(reverse("campaigns:optout_import"), {"numbers": "+33612345670"})
    assert imported.status_code == (200 if manages else 403)
    assert OptOut.objects.filter(number="+33612345670").exists() == manages
    requested = client.post(reverse("campaigns:sender_request"), {"name": "Clinic"})
    assert requested.status_code == expected_manage
    assert SenderName.objects.filter(name="Clinic").exists() == manages


@pytest.mark.parametrize("role", list(Role))
def test_another_accounts_objects_are_404_everywhere(client, account, theirs, role):
    login(client, account, role)
    message, optout = theirs["message"], theirs["optout"]
    gets = [
        reverse("campaigns:message_detail", args=[message.pk]),
        reverse("campaigns:message_status", args=[message.pk]),
        reverse("campaigns:thread", args=[message.recipient]),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
        assert client.get(url, headers={"HX-Request": "true"}).status_code == 404, url
    # Posts by a role that may not make them stop at the role check (403), before any lookup.
    posts = []
    if role != Role.VIEWER:
        posts.append(reverse("campaigns:reply", args=[message.recipient]))
    if role == Role.ADMIN:
        posts.append(reverse("campaigns:optout_remove", args=[optout.pk]))
    for url in posts:
        assert client.post(url, {"text": "x"}).status_code == 404, url
    assert OptOut.objects.filter(pk=optout.pk).exists()
    assert not Message.objects.filter(text="x").exists()
    # Nor does anything of theirs show on a list.
    for name in (
        "campaigns:dashboard",
        "campaigns:message_list",
        "campaigns:inbox",
        "campaigns:optout_list",
        "campaigns:sender_list",
    ):
        page = client.get(reverse(name)).content.decode()
        assert theirs["message"].recipient not in page, name
        assert optout.number not in page, name
        assert "Theirs" not in page, name


def test_the_switcher_lists_only_my_accounts(client, account, theirs):
    user = MembershipFactory(account=account, role=Role.VIEWER).user
    MembershipFactory(user=user, account__name="Second Ltd")
    client.force_login(user)
    page = client.get(reverse("campaigns:dashboard")).content.decode()
    switcher = page[page.index('id="account-switch"') : page.index("</select>")]
    assert "Acme" in switcher and "Second Ltd" in switcher
    assert "Other Ltd" not in switcher
    assert (
        client.post(
            reverse("campaigns:switch_account"), {"account": theirs["account"].pk}
        ).status_code
        == 404
    )


def test_the_nav_offers_every_page_and_marks_the_current_one(operator_client):
    page = operator_client.get(reverse("campaigns:message_list")).content.decode()
    nav = page[page.index('<nav aria-label="Main"') : page.index("</nav>")]
    for name in ("dashboard", "compose", "message_list", "inbox", "optout_list", "sender_list"):
        assert reverse(f"campaigns:{name}") in nav
    assert f'href="{reverse("campaigns:message_list")}" aria-current="page"' in nav
    assert nav.count("aria-current") == 1
