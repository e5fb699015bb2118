"""Who may do what on the contacts pages, and tenancy: viewers read everything; operators and
account admins change contacts, lists, segments and templates; only account admins manage custom
fields. Another account's object is a 404 at every address, for reading and for changing."""

import pytest
from django.urls import reverse

from campaigns.contacts.models import Contact, ContactField, ContactList, Segment, Template

from ..factories import AccountFactory
from .test_pages import Role, acme, contact, login  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def objects(account) -> dict:
    person = contact(account, "+33612345601", "Ann", city="Lyon")
    contact_list = ContactList.objects.create(account=account, name="VIP")
    person.lists.add(contact_list)
    return {
        "contact": person,
        "list": contact_list,
        "field": ContactField.objects.create(account=account, key="city", label="City"),
        "segment": Segment.objects.create(account=account, name="All", rules=[]),
        "template": Template.objects.create(account=account, name="Hi", text="Hi {name}"),
    }


@pytest.fixture
def mine(acme):  # noqa: F811
    return objects(acme)


@pytest.fixture
def theirs(db):
    return objects(AccountFactory(name="Other Ltd"))


def pages(o: dict) -> list[str]:
    """Every page anyone of the account may read."""
    return [
        reverse("contacts:contact_list"),
        reverse("contacts:contact_detail", args=[o["contact"].pk]),
        reverse("contacts:field_list"),
        reverse("contacts:list_index"),
        reverse("contacts:list_detail", args=[o["list"].pk]),
        reverse("contacts:segment_list"),
        reverse("contacts:segment_detail", args=[o["segment"].pk]),
        reverse("contacts:template_list"),
    ]


def edit_pages(o: dict) -> list[str]:
    """Pages (GET) for operators and account admins."""
    return [
        reverse("contacts:contact_add"),
        reverse("contacts:contact_edit", args=[o["contact"].pk]),
        reverse("contacts:contact_delete", args=[o["contact"].pk]),
        reverse("contacts:list_edit", args=[o["list"].pk]),
        reverse("contacts:list_delete", args=[o["list"].pk]),
        reverse("contacts:segment_add"),
        reverse("contacts:segment_edit", args=[o["segment"].pk]),
        reverse("contacts:segment_delete", args=[o["segment"].pk]),
        reverse("contacts:template_edit", args=[o["template"].pk]),
        reverse("contacts:template_delete", args=[o["template"].pk]),
    ]


def manage_pages(o: dict) -> list[str]:
    """Pages (GET) for account admins only."""
    return [
        reverse("contacts:field_edit", args=[o["field"].pk]),
        reverse("contacts:field_delete", args=[o["field"].pk]),
    ]


def edit_posts(o: dict) -> list[tuple[str, dict]]:
    """Every change operators and account admins may make, with what it posts."""
    return [
        (
            reverse("contacts:contact_list"),
            {"contact": o["contact"].pk, "contact_list": o["list"].pk},
        ),
        (reverse("contacts:contact_add"), {"number": "+33612345699"}),
        (reverse("contacts:contact_edit", args=[o["contact"].pk]), {"number": "+33612345698"}),
        (
            reverse("contacts:contact_add_to_list", args=[o["contact"].pk]),
            {"contact_list": o["list"].pk},
        ),
        (
            reverse("contacts:contact_remove_from_list", args=[o["contact"].pk, o["list"].pk]),
            {},
        ),
        (reverse("contacts:list_index"), {"name": "New list"}),
        (reverse("contacts:list_detail", args=[o["list"].pk]), {"contact": o["contact"].pk}),
        (reverse("contacts:list_edit", args=[o["list"].pk]), {"name": "Renamed"}),
        (reverse("contacts:segment_add"), {"name": "New segment"}),
        (reverse("contacts:segment_edit", args=[o["segment"].pk]), {"name": "Renamed"}),
        (reverse("contacts:segment_count"), {"rule-0-what": "opted_out"}),
        (reverse("contacts:template_list"), {"name": "New", "text": "Hello"}),
        (reverse("contacts:template_edit", args=[o["template"].pk]), {"name": "X", "text": "Y"}),
        # Deletions last: they take their object away.
        (reverse("contacts:segment_delete", args=[o["segment"].pk]), {}),
        (reverse("contacts:template_delete", args=[o["template"].pk]), {}),
        (reverse("contacts:contact_delete", args=[o["contact"].pk]), {}),
        (reverse("contacts:list_delete", args=[o["list"].pk]), {}),
    ]


def manage_posts(o: dict) -> list[tuple[str, dict]]:
    return [
        (reverse("contacts:field_list"), {"key": "shoe", "label": "Shoe", "type": "number"}),
        (reverse("contacts:field_edit", args=[o["field"].pk]), {"label": "Town"}),
        (reverse("contacts:field_delete", args=[o["field"].pk]), {}),
    ]


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_every_page(client, acme, mine, role):  # noqa: F811
    login(client, acme, role)
    for url in pages(mine):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert 'aria-current="page">Contacts</a>' in html or 'aria-current="true">Contacts' in html


@pytest.mark.parametrize("role", list(Role))
def test_what_each_role_may_open(client, acme, mine, role):  # noqa: F811
    login(client, acme, role)
    for url in edit_pages(mine):
        expected = 403 if role == Role.VIEWER else 200
        assert client.get(url).status_code == expected, url
    for url in manage_pages(mine):
        assert client.get(url).status_code == (200 if role == Role.ADMIN else 403), url


def test_a_viewer_changes_nothing_and_is_told_why(client, acme, mine):  # noqa: F811
    login(client, acme, Role.VIEWER)
    for url, data in edit_posts(mine) + manage_posts(mine):
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert "Only " in response.content.decode()
    assert Contact.objects.get(pk=mine["contact"].pk).number == "+33612345601"
    assert ContactList.objects.count() == 1 and Segment.objects.count() == 1
    assert Template.objects.get().name == "Hi" and ContactField.objects.get().label == "City"


def test_an_operator_changes_contacts_but_not_custom_fields(client, acme, mine):  # noqa: F811
    login(client, acme, Role.OPERATOR)
    for url, data in edit_posts(mine):
        assert client.post(url, data).status_code in (200, 302), url
    assert not Contact.objects.filter(pk=mine["contact"].pk).exists()
    assert not ContactList.objects.filter(pk=mine["list"].pk).exists()
    for url, data in manage_posts(mine):
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert "Only account admins can change custom fields." in response.content.decode()
    assert list(ContactField.objects.values_list("key", "label")) == [("city", "City")]


def test_an_account_admin_manages_custom_fields(client, acme, mine):  # noqa: F811
    login(client, acme, Role.ADMIN)
    for url, data in manage_posts(mine):
        assert client.post(url, data).status_code == 302, url
    assert list(ContactField.objects.values_list("key", "label")) == [("shoe", "Shoe")]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.VIEWER])
def test_another_accounts_objects_are_not_found_anywhere(client, acme, mine, theirs, role):  # noqa: F811
    """A viewer reads theirs as not found, and may change nothing anyway (403 before any
    lookup, for theirs and mine alike)."""
    login(client, acme, role)
    gets = pages(theirs) + edit_pages(theirs) + manage_pages(theirs)
    posts = edit_posts(theirs) + manage_posts(theirs)
    # Addresses without an object (index pages, add) are the same for both accounts.
    same = set(gets) & set(pages(mine) + edit_pages(mine) + manage_pages(mine))
    same |= {url for url, _ in posts} & {url for url, _ in edit_posts(mine) + manage_posts(mine)}
    assert len(set(gets) - same) == 13
    for url in gets:
        if url not in same:
            expected = 404 if role == Role.ADMIN or url in pages(theirs) else 403
            assert client.get(url).status_code == expected, url
    for url, data in posts:
        if url not in same:
            expected = 404 if role == Role.ADMIN or url in pages(theirs) else 403
            assert client.post(url, data).status_code == expected, url
    # Mixing an own contact with another account's list is a 404 too.
    url = reverse("contacts:contact_remove_from_list", args=[mine["contact"].pk, theirs["list"].pk])
    assert client.post(url).status_code == (404 if role == Role.ADMIN else 403)
    # Nothing of theirs changed.
    assert Contact.objects.get(pk=theirs["contact"].pk).lists.count() == 1
    assert Template.objects.get(pk=theirs["template"].pk).name == "Hi"
    assert ContactField.objects.get(pk=theirs["field"].pk).label == "City"


def test_their_objects_never_show_on_my_pages(client, acme, mine, theirs):  # noqa: F811
    theirs["contact"].name = "Theirs"
    theirs["contact"].save()
    ContactList.objects.filter(pk=theirs["list"].pk).update(name="Their list")
    Segment.objects.filter(pk=theirs["segment"].pk).update(name="Their segment")
    Template.objects.filter(pk=theirs["template"].pk).update(name="Their template")
    ContactField.objects.filter(pk=theirs["field"].pk).update(label="Their field")
    login(client, acme, Role.ADMIN)
    for url in pages(mine) + edit_pages(mine):
        html = client.get(url).content.decode()
        for word in ("Theirs", "Their list", "Their segment", "Their template", "Their field"):
            assert word not in html, (url, word)
    # Their list as a filter, or their segment: an error next to the filter, nothing shown.
    response = client.get(reverse("contacts:contact_list"), {"list": theirs["list"].pk})
    assert response.context["page"]["rows"] == []
    assert 'id="id_list_error"' in response.content.decode()
    response = client.get(reverse("contacts:contact_list"), {"segment": theirs["segment"].pk})
    assert 'id="id_segment_error"' in response.content.decode()


def test_logged_out_visitors_are_sent_to_log_in(client, mine):
    for url in pages(mine):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
