"""Categories: listed for everyone, added and removed by account admins, one account's only."""

import pytest
from django.urls import reverse

from campaigns.models import Category, Membership

from ..factories import CampaignFactory, CategoryFactory, MembershipFactory, MessageFactory

pytestmark = pytest.mark.django_db

LIST = reverse("campaigns:category_list")
ADD = reverse("campaigns:category_add")


def remove_url(category) -> str:
    return reverse("campaigns:category_remove", args=[category.pk])


@pytest.fixture
def admin_client(client, account):
    client.force_login(MembershipFactory(account=account, role=Membership.Role.ADMIN).user)
    return client


def test_everyone_reads_this_accounts_categories_only(client, account):
    client.force_login(MembershipFactory(account=account, role=Membership.Role.VIEWER).user)
    CategoryFactory(account=account, name="Appointments", tag="appointments")
    CategoryFactory(name="Elsewhere")
    page = client.get(LIST).content.decode()
    assert "Appointments" in page and "appointments" in page
    assert "Elsewhere" not in page
    assert "Add a category" not in page  # a viewer manages nothing


def test_an_admin_adds_a_category_whose_tag_is_made_from_its_name(admin_client, account):
    response = admin_client.post(ADD, {"name": "Test results", "tag": ""})
    assert response.status_code == 302
    category = Category.objects.get()
    assert (category.account, category.name, category.tag) == (
        account,
        "Test results",
        "test-results",
    )


def test_names_and_tags_are_unique_per_account(admin_client, account):
    CategoryFactory(account=account, name="Billing", tag="billing")
    CategoryFactory(name="Promotions", tag="promotions")  # another account's: no conflict
    page = admin_client.post(ADD, {"name": "billing", "tag": "invoices"}).content.decode()
    assert "already has a category with this name" in page
    page = admin_client.post(ADD, {"name": "Invoices", "tag": "billing"}).content.decode()
    assert "already used by another category" in page
    assert admin_client.post(ADD, {"name": "Promotions", "tag": ""}).status_code == 302
    assert Category.objects.filter(account=account).count() == 2


def test_operators_and_viewers_cannot_change_categories(operator_client, account):
    category = CategoryFactory(account=account)
    assert operator_client.post(ADD, {"name": "Mine"}).status_code == 403
    assert operator_client.post(remove_url(category)).status_code == 403
    assert Category.objects.count() == 1


def test_an_unused_category_is_removed_a_used_one_stays(admin_client, account):
    unused, used, in_campaign = (CategoryFactory(account=account) for _ in range(3))
    MessageFactory(account=account, category=used)
    CampaignFactory(account=account, category=in_campaign)
    admin_client.post(remove_url(unused))
    page = admin_client.post(remove_url(used), follow=True).content.decode()
    assert "is used by messages or campaigns" in page
    admin_client.post(remove_url(in_campaign))
    assert set(Category.objects.all()) == {used, in_campaign}


def test_another_accounts_category_is_not_found(admin_client):
    theirs = CategoryFactory()
    assert admin_client.post(remove_url(theirs)).status_code == 404
    assert Category.objects.filter(pk=theirs.pk).exists()
