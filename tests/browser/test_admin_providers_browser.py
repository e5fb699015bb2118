"""In Debian's Chromium, driven by Playwright: an administrator adds a provider account in admin.
Picking the kind shows only that kind's labelled credentials; the secret is a password input that
is never shown back; the saved account's page says its health in words. Screenshots of the form
at 1280 and 390 px wide, with no horizontal overflow on the phone."""

from django.urls import reverse

from providers.exceptions import ProviderTemporaryError
from providers.models import ProviderAccount

from ..browser_support import (
    BROWSER_TEST,
    DESKTOP,
    PASSWORD,
    at_phone_width,
    log_in,
    no_horizontal_overflow,
    screenshot,
)

SECRET = "vortext-browser-secret-4321"

pytestmark = BROWSER_TEST


def test_add_a_provider_account_with_labelled_credentials(page, live_server, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    log_in(page, live_server, root, reverse("admin:providers_provideraccount_add"))

    # Before a kind is chosen, no kind's credentials show: the page says to choose first.
    page.wait_for_selector("#id_slug")
    assert page.locator("fieldset.provider-kind:visible").count() == 0
    assert page.get_by_text("Choose the provider first").is_visible()

    page.get_by_label("Name:", exact=True).fill("Cegedim")
    page.get_by_label("Provider:", exact=True).select_option("vortext")
    vortext = page.locator("fieldset.provider-kind-vortext")
    assert vortext.is_visible()
    assert page.locator("fieldset.provider-kind:visible").count() == 1
    assert page.locator("fieldset.provider-kind-ogangi").is_hidden()
    vortext.get_by_label("User name").fill("hub-user")
    password = vortext.get_by_label("Password")
    assert password.get_attribute("type") == "password"
    password.fill(SECRET)
    screenshot(page, "admin-provider-form", full_page=True)

    at_phone_width(page)
    assert no_horizontal_overflow(page)
    screenshot(page, "admin-provider-form-phone", full_page=True)
    page.set_viewport_size(DESKTOP)

    # Switching kind shows the other kind's fields instead.
    page.get_by_label("Provider:", exact=True).select_option("ogangi")
    assert page.locator("fieldset.provider-kind-ogangi").is_visible()
    assert vortext.is_hidden()
    page.get_by_label("Provider:", exact=True).select_option("vortext")

    page.get_by_role("button", name="Save and continue editing").click()
    page.wait_for_selector("text=was added successfully")
    account = ProviderAccount.objects.get(name="Cegedim")
    assert account.credentials == {"username": "hub-user", "password": SECRET}
    assert account.base_url == "https://messages.cloud.cegedim.com"
    assert SECRET not in page.content()
    assert "A value is stored (••••••••4321)" in page.content()

    # Its health, in words.
    account.note_answers([ProviderTemporaryError("could not reach host: Timeout", code="timeout")])
    page.reload()
    assert page.get_by_text("The provider did not answer in time").is_visible()
    assert page.get_by_text("Closed: messages are sent through it normally.").is_visible()
    screenshot(page, "admin-provider-change", full_page=True)
    at_phone_width(page)
    assert no_horizontal_overflow(page)
    screenshot(page, "admin-provider-change-phone", full_page=True)

    page.goto(live_server.url + reverse("admin:providers_provideraccount_changelist"))
    page.set_viewport_size(DESKTOP)
    assert page.get_by_text("The provider did not answer in time").is_visible()
    screenshot(page, "admin-provider-list", full_page=True)
