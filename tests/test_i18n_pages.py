"""French and Romanian: the campaign, messages and inbox pages and the navigation of base.html
show no English to a French or Romanian user, statuses and dates read the local way, and what
programs read (CSV exports, the JSON API) stays English.

The untranslated-string check is tests/test_i18n.py's: its helpers are imported.
"""

import os
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Membership, Message, MessageEvent

from .conftest import OUTPUT
from .factories import (
    AccountFactory,
    ApiKeyFactory,
    CampaignFactory,
    CategoryFactory,
    MessageFactory,
    OptOutFactory,
    ProviderAccountFactory,
    ReplyFactory,
    UserFactory,
)
from .test_i18n import (
    NAMES,
    member,
    part_of_a_translation,
    reads_as_english,
    same_in_translation,
    translations,
    visible_texts,
)

# The pages in each language: the same whatever the database (CI runs them on its first leg).
pytestmark = pytest.mark.translations

MAIN = Path(settings.BASE_DIR) / "locale"
LANGUAGES = ("fr", "ro")
PASSWORD = "a-long-test-password"


# --- pages with no English left ---------------------------------------------------------------

NUMBER = "+33698765432"
UNKNOWN = "unknown"


@pytest.fixture
def shop(db):
    """An account with a campaign in every state, messages with a timeline, and replies."""
    route = [ProviderAccountFactory(name="Simulateur")]
    account = AccountFactory(name="Boulangerie Dupont", timezone="Europe/Paris", route=route)
    category = CategoryFactory(account=account, name="Rappels", tag="rappels")
    now = timezone.now()
    statuses = {
        "Soldes de janvier": Campaign.Status.RUNNING,
        "Galette des rois": Campaign.Status.PAUSED,
        "Pain du dimanche": Campaign.Status.COMPLETED,
        "Fête des mères": Campaign.Status.CANCELED,
        "Brioches": Campaign.Status.SCHEDULED,
        "Croissants": Campaign.Status.DRAFT,
    }
    for name, status in statuses.items():
        campaign = CampaignFactory(
            account=account, name=name, status=status, category=category, text="Promo -20 %"
        )
        if status == Campaign.Status.RUNNING:
            for i, message_status in enumerate(
                [Message.Status.DELIVERED, Message.Status.SENT, Message.Status.FAILED]
                + [Message.Status.QUEUED] * 3
            ):
                MessageFactory(
                    account=account,
                    campaign=campaign,
                    recipient=f"+336123450{i:02d}",
                    text="Promo -20 %",
                    status=message_status,
                    claimed_at=now - timedelta(seconds=20) if i < 3 else None,
                    sent_at=now - timedelta(seconds=10) if i < 3 else None,
                    error_reason="Refusé" if message_status == Message.Status.FAILED else "",
                )
        elif status == Campaign.Status.SCHEDULED:
            MessageFactory(
                account=account,
                campaign=campaign,
                text="Promo -20 %",
                status=Message.Status.SCHEDULED,
                scheduled_at=now + timedelta(days=2),
            )
        elif status != Campaign.Status.DRAFT:
            MessageFactory(
                account=account,
                campaign=campaign,
                text="Promo -20 %",
                status={
                    Campaign.Status.PAUSED: Message.Status.QUEUED,
                    Campaign.Status.COMPLETED: Message.Status.DELIVERED,
                    Campaign.Status.CANCELED: Message.Status.CANCELED,
                }[status],
            )
    message = MessageFactory(
        account=account,
        recipient=NUMBER,
        text="Votre pain est prêt.",
        status=Message.Status.DELIVERED,
        category=category,
        segments=1,
        attempts=1,
        cost="0.0450",
        sent_at=now - timedelta(minutes=5),
        delivered_at=now - timedelta(minutes=4),
    )
    for old, new, source in [
        ("", "queued", MessageEvent.Source.STAFF),
        ("queued", "sending", MessageEvent.Source.DISPATCH),
        ("sending", "sent", MessageEvent.Source.PROVIDER),
        ("sent", "delivered", MessageEvent.Source.WEBHOOK),
    ]:
        MessageEvent.objects.create(
            message=message, from_status=old, to_status=new, source=source, payload={"ok": 1}
        )
    ReplyFactory(
        account=account, from_number=NUMBER, message=message, text="Merci", raw={"text": "Merci"}
    )
    ReplyFactory(account=account, from_number="", text="Bonjour ?")
    OptOutFactory(account=account, number=NUMBER)
    return account


def fixture_data(account) -> set[str]:
    names = set(Campaign.objects.filter(account=account).values_list("name", flat=True))
    return names | {
        account.name,
        account.timezone,
        "Rappels",
        "Promo -20 %",
        "Votre pain est prêt.",
        "Merci",
        "Bonjour ?",
        "Refusé",
        "“Votre pain est prêt.”",
        "“Merci”",
        "Simulateur",
        "À demain",  # an answer typed
        '{ "ok": 1 }',  # raw payloads, as received
        '{ "text": "Merci" }',
    }


def campaign_named(name):
    return lambda shop: [Campaign.objects.get(account=shop, name=name).pk]


def the_message(shop):
    return [Message.objects.get(account=shop, recipient=NUMBER).pk]


ADMIN, VIEWER = "admin", "viewer"
# (name, who, method, url name and arguments, data); POSTs follow their redirect.
PAGES = [
    ("campaign list", ADMIN, "get", ("campaigns:campaign_list", None), None),
    ("campaign list, viewer", VIEWER, "get", ("campaigns:campaign_list", None), None),
    ("campaign list, bad link", ADMIN, "get", ("campaigns:campaign_list", None), {"after": "x"}),
    *(
        (f"campaign {name}", who, "get", ("campaigns:campaign_detail", campaign_named(name)), None)
        for name, who in [
            ("Soldes de janvier", ADMIN),
            ("Soldes de janvier", VIEWER),
            ("Galette des rois", ADMIN),
            ("Pain du dimanche", ADMIN),
            ("Fête des mères", ADMIN),
            ("Brioches", ADMIN),
            ("Croissants", ADMIN),
        ]
    ),
    (
        "campaign paused",
        ADMIN,
        "post",
        ("campaigns:campaign_pause", campaign_named("Soldes de janvier")),
        {},
    ),
    (
        "campaign resumed",
        ADMIN,
        "post",
        ("campaigns:campaign_resume", campaign_named("Galette des rois")),
        {},
    ),
    (
        "campaign canceled",
        ADMIN,
        "post",
        ("campaigns:campaign_cancel", campaign_named("Brioches")),
        {},
    ),
    (
        "campaign not paused",
        ADMIN,
        "post",
        ("campaigns:campaign_pause", campaign_named("Pain du dimanche")),
        {},
    ),
    ("messages", ADMIN, "get", ("campaigns:message_list", None), None),
    ("messages filtered", ADMIN, "get", ("campaigns:message_list", None), {"status": "delivered"}),
    (
        "messages, wrong filters",
        ADMIN,
        "get",
        ("campaigns:message_list", None),
        {"date_from": "2026-12-03", "date_to": "2026-12-01"},
    ),
    ("messages, none match", ADMIN, "get", ("campaigns:message_list", None), {"status": "expired"}),
    ("message", ADMIN, "get", ("campaigns:message_detail", the_message), None),
    ("inbox", ADMIN, "get", ("campaigns:inbox", None), None),
    ("inbox, viewer", VIEWER, "get", ("campaigns:inbox", None), None),
    ("inbox search", ADMIN, "get", ("campaigns:inbox", None), {"q": "Merci"}),
    ("inbox, nothing found", ADMIN, "get", ("campaigns:inbox", None), {"q": "zzz"}),
    ("thread", ADMIN, "get", ("campaigns:thread", lambda shop: [NUMBER]), None),
    ("thread, unknown number", ADMIN, "get", ("campaigns:thread", lambda shop: [UNKNOWN]), None),
    (
        "answer sent",
        ADMIN,
        "post",
        ("campaigns:reply", lambda shop: [NUMBER]),
        {"text": "À demain"},
    ),
    ("answer empty", ADMIN, "post", ("campaigns:reply", lambda shop: [NUMBER]), {"text": " "}),
]
# The whole page: base.html's header and navigation too.
SCOPE = "body"


class _Undo(Exception):
    pass


def render(client, shop, who, method, url, data, language) -> str:
    """The page as `who` sees it in `language`; what a POST changed is undone afterwards, so
    that the English page is rendered from the same state."""
    try:
        with transaction.atomic():
            html = _render(client, shop, who, method, url, data, language)
            raise _Undo
    except _Undo:
        return html


def _render(client, shop, who, method, url, data, language) -> str:
    client.logout()
    role = Membership.Role.ADMIN if who == ADMIN else Membership.Role.VIEWER
    client.force_login(member(shop, role=role, language=language))
    name, arguments = url
    path = reverse(name, args=arguments(shop) if arguments else None)
    if method == "post":
        response = client.post(path, data, follow=True)
    else:
        response = client.get(path, data or {})
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("name", "who", "method", "url", "data"), PAGES, ids=[row[0] for row in PAGES]
)
def test_no_english_left_on_the_page(client, shop, language, name, who, method, url, data):
    translated = visible_texts(render(client, shop, who, method, url, data, language), SCOPE)
    # The English page, from the same state (see `render`).
    english = visible_texts(render(client, shop, who, method, url, data, "en"), SCOPE)
    allowed = NAMES | same_in_translation(language) | fixture_data(shop)
    allowed |= {user.username for user in UserFactory._meta.model.objects.all()}
    catalogue = translations(language)
    left = sorted(
        text
        for text in translated & english
        if text not in allowed
        and reads_as_english(text, allowed)
        and not part_of_a_translation(text, catalogue)
    )
    assert not left, f"{name} in {language} still shows English: {left}"
    assert translated - english, f"{name} in {language} shows nothing translated"


# --- what people read, in their language --------------------------------------------------------


def page(client, shop, language, name, *args, **params) -> str:
    client.force_login(member(shop, language=language))
    return client.get(reverse(name, args=args or None), params).content.decode()


@pytest.mark.parametrize(
    ("language", "nav", "status", "headline"),
    [
        ("fr", "Boîte de réception", "En cours", "Envoi à 3/min."),
        ("ro", "Mesaje primite", "În desfășurare", "Se trimite cu 3/min."),
        ("en", "Inbox", "Running", "Sending at 3/min."),
    ],
)
def test_a_running_campaign_in_each_language(client, shop, language, nav, status, headline):
    campaign = Campaign.objects.get(account=shop, name="Soldes de janvier")
    html = page(client, shop, language, "campaigns:campaign_detail", campaign.pk)
    assert f'<html lang="{language}">' in html
    assert f">{nav}" in html
    assert f'data-status="running">{status}</span>' in html
    assert headline in html


@pytest.mark.parametrize(
    ("language", "first_step", "delivered"),
    [
        ("fr", "nouveau → en file d\u2019attente", ">Remis</span>"),
        ("ro", "nou → în coadă", ">Livrat</span>"),
        ("en", "new → queued", ">Delivered</span>"),
    ],
)
def test_a_message_timeline_names_statuses_in_the_language(
    client, shop, language, first_step, delivered
):
    html = page(client, shop, language, "campaigns:message_detail", *the_message(shop))
    assert first_step in html
    assert delivered in html


@pytest.mark.parametrize(
    ("language", "date", "cost"),
    [("fr", "/20", "0,0450"), ("ro", ".20", "0,0450"), ("en", "20", "0.0450")],
)
def test_dates_and_numbers_on_a_message_are_written_the_local_way(
    client, shop, language, date, cost
):
    message = Message.objects.get(account=shop, recipient=NUMBER)
    html = page(client, shop, language, "campaigns:message_detail", message.pk)
    written = message.created_at.astimezone(ZoneInfo(shop.timezone))
    shown = {
        "fr": written.strftime("%d/%m/%Y %H:%M:%S"),
        "ro": written.strftime("%d.%m.%Y %H:%M:%S"),
        "en": written.strftime("%Y-%m-%d %H:%M:%S"),
    }[language]
    assert shown in html and date in shown
    assert f"<dd>{cost}</dd>" in html


def test_a_refused_action_says_why_in_the_language(client, shop):
    completed = Campaign.objects.get(account=shop, name="Pain du dimanche")
    client.force_login(member(shop, language="ro"))
    response = client.post(reverse("campaigns:campaign_pause", args=[completed.pk]), follow=True)
    assert (
        "Campania „Pain du dimanche” nu poate fi pusă pe pauză: starea ei este încheiată."
        in response.content.decode()
    )


def test_the_csv_export_stays_english_for_a_french_user(client, shop):
    """Programs read the export: its header and status words do not follow the language."""
    campaign = Campaign.objects.get(account=shop, name="Soldes de janvier")
    client.force_login(member(shop, language="fr"))
    response = client.get(reverse("campaigns:campaign_export", args=[campaign.pk]))
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0].startswith("recipient,status,provider")
    assert ",delivered," in body and ",queued," in body


def test_the_api_answers_in_english_after_a_french_page(client, settings, shop):
    """The same process serves a French page, then an API call as smshub/wsgi.py does (with
    MACHINE_MIDDLEWARE): the status word in the API's refusal stays English."""
    client.force_login(member(shop, language="fr"))
    assert "Boîte de réception" in client.get(reverse("campaigns:inbox")).content.decode()
    settings.MIDDLEWARE = settings.MACHINE_MIDDLEWARE
    delivered = Message.objects.get(account=shop, recipient=NUMBER)
    key = ApiKeyFactory(account=shop, name="Caisse")
    response = Client().post(
        f"/api/v1/messages/{delivered.pk}/cancel",
        headers={"Authorization": f"Bearer {key.secret}", "Accept-Language": "fr"},
    )
    assert response.status_code == 409
    assert response.json()["error"]["message"].startswith("This message is delivered:")


# --- in a browser -------------------------------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WIDE = (
    "[...document.querySelectorAll('body *')]"
    ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)"
    ".map(e => e.tagName + '.' + e.className + ': ' + e.textContent.trim().slice(0, 40))"
)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (apt-get install -y chromium)",
)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_pages_in_a_browser_at_desktop_and_phone_width(live_server, shop, language):
    """Each page in French and Romanian, at 1280 and 390 px: in the language, no sideways
    scrolling on a phone (longer words than English in the navigation, badges and tables)."""
    from playwright.sync_api import sync_playwright

    user = member(shop, language=language)
    campaign = Campaign.objects.get(account=shop, name="Soldes de janvier")
    pages = {
        "campaigns": reverse("campaigns:campaign_list"),
        "campaign": reverse("campaigns:campaign_detail", args=[campaign.pk]),
        "messages": reverse("campaigns:message_list"),
        "message": reverse("campaigns:message_detail", args=the_message(shop)),
        "inbox": reverse("campaigns:thread", args=[NUMBER]),
    }
    OUTPUT.mkdir(exist_ok=True)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
            page.goto(live_server.url + reverse("login"))
            page.fill("#id_username", user.username)
            page.fill("#id_password", PASSWORD)
            page.locator("form button[type=submit]").click()
            page.wait_for_load_state()
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 900 if width > 390 else 844})
                for name, path in pages.items():
                    page.goto(live_server.url + path)
                    assert page.locator("html").get_attribute("lang") == language
                    inbox = {"fr": "Boîte de réception", "ro": "Mesaje primite"}[language]
                    assert inbox in page.locator("#topnav").text_content()
                    page.screenshot(
                        path=OUTPUT / f"i18n-{name}-{language}-{width}.png", full_page=True
                    )
                    overflow = page.evaluate(
                        "document.documentElement.scrollWidth - window.innerWidth"
                    )
                    assert overflow <= 0, f"{name} is {overflow} px too wide: {page.evaluate(WIDE)}"
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        connections.close_all()
