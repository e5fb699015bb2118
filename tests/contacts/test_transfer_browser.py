"""In Debian's Chromium, driven by Playwright: an account admin uploads a CSV with custom
columns, maps them (htmx swaps each step in place), imports them into a new list, reads the
summary with the bad row's line, then exports the list."""

import pytest

from campaigns.contacts.models import Contact, ContactField, ContactList
from campaigns.models import Membership

from ..browser_support import BROWSER_TEST, log_in, screenshot
from ..factories import AccountFactory, MembershipFactory

pytestmark = BROWSER_TEST


@pytest.fixture
def page(settings, tmp_path, page):
    settings.SMSHUB_UPLOAD_DIR = tmp_path / "uploads"
    return page


def test_import_a_csv_with_custom_fields_into_a_new_list_then_export_it(
    page, live_server, tmp_path
):
    account = AccountFactory(name="Acme", country="FR")
    ContactField.objects.create(account=account, key="city", label="City")
    admin = MembershipFactory(account=account, role=Membership.Role.ADMIN).user
    people = tmp_path / "people.csv"
    people.write_text(
        "Mobile;First name;City;Age\n"
        "06 12 34 56 78;Ann;Lyon;34\n"
        "0612;Bad;Paris;1\n"
        "+33 6 12 34 56 79;Bob;Nice;19\n"
    )
    log_in(page, live_server, admin, "/contacts/import/")

    page.get_by_label("CSV file").set_input_files(str(people))
    page.get_by_role("button", name="Next: map the columns").click()
    page.get_by_role("heading", name="2. What each column holds").wait_for()
    assert page.get_by_label("What column 1 holds").input_value() == "number"
    assert page.get_by_label("What column 3 holds").input_value() == "field:city"
    assert page.get_by_label("What column 4 holds").input_value() == "new"
    page.get_by_label("Add the contacts to a list").select_option(label="A new list…")
    page.get_by_label("New list's name").fill("Spring fair")
    url = page.url
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_role("heading", name="Imported", exact=True).wait_for()
    assert page.url == url  # the card was swapped in place
    summary = page.locator("dl.facts").inner_text()
    assert "Contacts created\n2" in summary.replace("\t", "\n")
    assert page.locator(".rejected-rows td.line").all_inner_texts() == ["3"]
    screenshot(page, "contacts-import-summary", full_page=True)

    fair = ContactList.objects.get(account=account, name="Spring fair")
    ann = Contact.objects.get(number="+33612345678")
    assert ann.values == {"first_name": "Ann", "city": "Lyon", "age": 34}
    assert fair.contacts.count() == 2

    page.get_by_role("link", name="Spring fair").click()
    page.wait_for_url(f"**/contacts/lists/{fair.pk}/")
    answer = page.request.get(live_server.url + f"/contacts/lists/{fair.pk}/export/")
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    exported = answer.body().decode("utf-8-sig")
    assert exported.splitlines()[0] == "number,name,language,age,city,first_name,lists"
    assert "+33612345678,,,34,Lyon,Ann,Spring fair" in exported


def test_an_imported_list_gets_a_personalised_campaign_seen_on_each_contacts_page(
    page, live_server, tmp_path
):
    """Issue 16's walk: import a CSV with custom fields into a list, compose to that list with
    `{first_name|there}`, read the personalised preview, send, and find each contact's own text
    on its page."""
    account = AccountFactory(name="Bistro", country="FR")
    operator = MembershipFactory(account=account, role=Membership.Role.ADMIN).user
    people = tmp_path / "regulars.csv"
    people.write_text("Phone,First name,City\n0612345678,Ann,Lyon\n0612345679,,Nice\n")
    log_in(page, live_server, operator, "/contacts/import/")
    page.get_by_label("CSV file").set_input_files(str(people))
    page.get_by_role("button", name="Next: map the columns").click()
    page.get_by_role("heading", name="2. What each column holds").wait_for()
    page.get_by_label("Add the contacts to a list").select_option(label="A new list…")
    page.get_by_label("New list's name").fill("Regulars")
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_role("heading", name="Imported", exact=True).wait_for()

    page.goto(live_server.url + "/compose/")
    page.get_by_label("Regulars").check()
    page.get_by_label("Campaign name").fill("Tonight")
    page.locator("textarea[name=text]").fill("Hi {first_name|there}, a table in {city} tonight?")
    page.get_by_role("button", name="Preview", exact=True).click()
    page.get_by_role("heading", name="As recipients will get it").wait_for()
    samples = page.locator("ul.samples").inner_text()
    assert "Hi Ann, a table in Lyon tonight?" in samples
    assert "Hi there, a table in Nice tonight?" in samples
    screenshot(page, "compose-personalised-preview", full_page=True)
    page.get_by_role("button", name="Confirm: send to 2").click()
    page.wait_for_url("**/campaigns/*/")

    for number, text in (
        ("+33612345678", "Hi Ann, a table in Lyon tonight?"),
        ("+33612345679", "Hi there, a table in Nice tonight?"),
    ):
        contact = Contact.objects.get(account=account, number=number)
        page.goto(live_server.url + f"/contacts/{contact.pk}/")
        assert text in page.locator("main").inner_text()
