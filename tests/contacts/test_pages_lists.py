"""Lists: created, renamed and deleted by operators and account admins, with live member counts;
a list's page shows its members by keyset pages and removes the ticked ones."""

import pytest
from django.urls import reverse

from campaigns.contacts.models import Contact, ContactList, Segment
from campaigns.contacts.views.common import PAGE_SIZE

from .test_pages import (  # noqa: F401 (fixtures)
    acme,
    as_operator,
    as_viewer,
    fields,
    page,
    people,
)

pytestmark = pytest.mark.django_db

LISTS = reverse("contacts:list_index")


def test_create_a_list_and_see_live_counts(as_operator, acme, people):  # noqa: F811
    response = as_operator.post(LISTS, {"name": "Newsletter", "description": "Monthly"})
    newsletter = ContactList.objects.get(name="Newsletter")
    assert response["Location"] == reverse("contacts:list_detail", args=[newsletter.pk])
    newsletter.contacts.add(people["ann"], people["bob"])
    response = as_operator.get(LISTS)
    assert [(cl.name, cl.members) for cl in response.context["lists"]] == [
        ("Newsletter", 2),
        ("VIP", 1),
    ]
    assert '<td data-label="Contacts" class="num">2</td>' in page(response)


def test_a_name_is_required_and_unique(as_operator, people):  # noqa: F811
    for name, error in [("vip", "already has a list with this name"), ("", "required")]:
        response = as_operator.post(LISTS, {"name": name})
        assert response.status_code == 400
        html = response.content.decode()
        assert 'id="id_name_error"' in html and error in html
    assert ContactList.objects.count() == 1


def test_members_come_by_keyset_pages_and_ticked_ones_are_removed(as_operator, acme):  # noqa: F811
    big = ContactList.objects.create(account=acme, name="Big")
    Contact.objects.bulk_create(
        Contact(account=acme, number=f"+336123400{n:02d}", name=f"P{n:02d}")
        for n in range(PAGE_SIZE + 2)
    )
    big.contacts.add(*Contact.objects.all())
    url = reverse("contacts:list_detail", args=[big.pk])
    first = as_operator.get(url)
    html = page(first)
    assert f"{PAGE_SIZE + 2} contacts" in html and 'form="remove-form"' in html
    older = first.context["page"]["older"]
    second = as_operator.get(url, {"after": older})
    assert [c.name for c in second.context["page"]["rows"]] == ["P01", "P00"]
    p00 = Contact.objects.get(name="P00")
    response = as_operator.post(f"{url}?after={older}", {"contact": [p00.pk]})
    assert response["Location"] == f"{url}?after={older}"
    assert big.contacts.count() == PAGE_SIZE + 1 and Contact.objects.filter(pk=p00.pk).exists()
    assert "1 contact removed from “Big”." in page(as_operator.get(url))
    html = as_operator.post(url, {}).content.decode()
    assert 'id="id_contact_error"' in html and "Tick the contacts to remove first." in html


def test_rename_a_list(as_operator, people):  # noqa: F811
    vip = people["vip"]
    url = reverse("contacts:list_edit", args=[vip.pk])
    assert 'value="VIP"' in page(as_operator.get(url))
    assert as_operator.post(url, {"name": "Best", "description": "Top"}).status_code == 302
    vip.refresh_from_db()
    assert (vip.name, vip.description) == ("Best", "Top")


def test_delete_a_list_keeps_its_contacts_and_names_the_segments_using_it(
    as_operator,  # noqa: F811
    acme,  # noqa: F811
    people,  # noqa: F811
):
    vip = people["vip"]
    Segment.objects.create(account=acme, name="VIPs", rules=[{"list": vip.pk, "op": "in"}])
    url = reverse("contacts:list_delete", args=[vip.pk])
    html = page(as_operator.get(url))
    assert "The list and its 1 membership go; its contacts stay" in html
    assert "Segments with a condition on this list (VIPs)" in html
    assert as_operator.post(url)["Location"] == LISTS
    assert not ContactList.objects.exists() and acme.contacts.count() == 3


def test_a_viewer_reads_lists_without_forms(as_viewer, people):  # noqa: F811
    html = page(as_viewer.get(LISTS))
    assert "VIP" in html and 'name="name"' not in html
    html = page(as_viewer.get(reverse("contacts:list_detail", args=[people["vip"].pk])))
    assert "Ann" in html and 'name="contact"' not in html and "Rename" not in html
