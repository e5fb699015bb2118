"""French and Romanian: complete catalogues, compiled as written, pages with no English left, dates
and numbers written the local way, and a user's language kept from one login to the next.

The untranslated-string test renders every page of `PAGES` in English and in French (and in
Romanian) and fails on visible text that is the same in both and still reads as English, over
the whole page (base.html's header included). The JSON API stays English whatever the caller's
Accept-Language: it is served without the locale middleware.
"""

import ast
import gettext
import json
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import reverse
from django.utils import timezone, translation

from campaigns.contacts.models import Contact, ContactField, ContactList, Segment, Template
from campaigns.models import Membership, Message, OptOut, UserPreference
from smshub.lockout.models import LoginLock
from smshub.wsgi import build_application

from .factories import (
    AccountFactory,
    ApiKeyFactory,
    CategoryFactory,
    MembershipFactory,
    MessageFactory,
    OptOutFactory,
    SenderNameFactory,
    UserFactory,
)

# The pages in each language: the same whatever the database (CI runs them on its first leg).
pytestmark = pytest.mark.translations

LOCALE = Path(settings.LOCALE_PATHS[0])
LANGUAGES = ("fr", "ro")
PASSWORD = "a-long-test-password"  # tests.factories.UserFactory's


# --- the catalogues ---------------------------------------------------------------------------


def read_po(path: Path) -> list[dict]:
    """The entries of a .po file: ctx, id, plural, strs (by form), flags. Header first."""
    entries, entry, key = [], None, None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = line.strip()
        if not line:
            if entry is not None:
                entries.append(entry)
            entry = None
            continue
        if entry is None:
            entry = {"flags": set(), "parts": {}}
        if line.startswith("#,"):
            entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry["parts"][key].append(ast.literal_eval(line))
        else:
            key, _, value = line.partition(" ")
            entry["parts"].setdefault(key, []).append(ast.literal_eval(value))
    for entry in entries:
        parts = {key: "".join(values) for key, values in entry.pop("parts").items()}
        entry["ctx"] = parts.get("msgctxt")
        entry["id"] = parts.get("msgid", "")
        entry["plural"] = parts.get("msgid_plural")
        entry["strs"] = (
            [value for key, value in sorted(parts.items()) if key.startswith("msgstr[")]
            if entry["plural"] is not None
            else [parts.get("msgstr", "")]
        )
    return entries


def messages_of(language: str) -> list[dict]:
    return [entry for entry in read_po(po_path(language)) if entry["id"]]


def po_path(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "django.po"


PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]")
TAG = re.compile(r"</?([a-z]+)")


def described(entry: dict) -> str:
    return f"{entry['ctx'] + ' | ' if entry['ctx'] else ''}{entry['id']!r}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_with_its_placeholders(language):
    problems = []
    entries = messages_of(language)
    assert len(entries) > 100
    for entry in entries:
        if "fuzzy" in entry["flags"]:
            problems.append(f"fuzzy: {described(entry)}")
        sources = [entry["id"]] + ([entry["plural"]] if entry["plural"] else [])
        wanted = sorted(set(PLACEHOLDER.findall(" ".join(sources))))
        tags = sorted(TAG.findall(entry["id"]))
        for translated in entry["strs"]:
            if not translated.strip():
                problems.append(f"not translated: {described(entry)}")
            elif sorted(set(PLACEHOLDER.findall(translated))) != wanted:
                problems.append(f"placeholders differ: {described(entry)} → {translated!r}")
            elif sorted(TAG.findall(translated)) != tags:
                problems.append(f"HTML tags differ: {described(entry)} → {translated!r}")
    assert not problems, "\n".join(problems)


def test_romanian_is_written_with_comma_below_letters():
    """ș and ț, not the Turkish ş and ţ that old keyboards give."""
    wrong = [
        described(entry)
        for entry in messages_of("ro")
        if any(letter in text for text in entry["strs"] for letter in "şţŞŢ")
    ]
    assert not wrong


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalogue_matches_the_po_file(language):
    po = po_path(language)
    mo = po.with_suffix(".mo")
    assert mo.exists(), f"{mo} is missing: run compilemessages"
    with mo.open("rb") as stream:
        compiled = gettext.GNUTranslations(stream)
    stale = []
    for entry in messages_of(language):
        if entry["plural"] is None:
            got = (
                compiled.pgettext(entry["ctx"], entry["id"])
                if entry["ctx"] is not None
                else compiled.gettext(entry["id"])
            )
            if got != entry["strs"][0]:
                stale.append(described(entry))
            continue
        for n in (0, 1, 2, 5, 19, 20, 21, 101, 1_000_000):
            got = compiled.ngettext(entry["id"], entry["plural"], n)
            if got != entry["strs"][compiled.plural(n)]:
                stale.append(f"{described(entry)} (n={n})")
    assert not stale, "the .mo file is older than the .po file:\n" + "\n".join(stale)


# --- pages with no English left -----------------------------------------------------------------


@pytest.fixture
def shop(db):
    """An account with something on every page: a sender name, a category, an opt-out, a
    message, an API key."""
    account = AccountFactory(name="Boulangerie Dupont", timezone="Europe/Paris")
    SenderNameFactory(account=account, name="Dupont")
    CategoryFactory(account=account, name="Rappels", tag="rappels")
    OptOutFactory(account=account, number="+33612000001")
    MessageFactory(account=account, recipient="+33612345678", text="Votre pain est prêt.")
    MessageFactory(
        account=account,
        recipient="+33612000003",
        text="Votre commande est prête.",
        status=Message.Status.DELIVERED,
    )
    ApiKeyFactory(account=account, name="Caisse")
    clients = ContactList.objects.create(account=account, name="Clients fidèles")
    Contact.objects.create(
        account=account, number="+33612000003", name="Élise Martin", values={"ville": "Lyon"}
    ).lists.add(clients)
    ContactField.objects.create(account=account, key="ville", label="Ville", type="text")
    Segment.objects.create(
        account=account,
        name="Lyonnais",
        rules=[
            {"field": "ville", "op": "eq", "value": "Lyon"},
            {"list": clients.pk, "op": "in"},
            {"opted_out": False},
            {"replied_within_days": 30},
        ],
    )
    Template.objects.create(
        account=account, name="Rappel", text="Bonjour {name}, rendez-vous {ville|au cabinet}."
    )
    return account


def member(account, role=Membership.Role.ADMIN, language=""):
    user = MembershipFactory(account=account, role=role).user
    if language:
        UserPreference.objects.create(user=user, language=language)
    return user


# Who sees a page: an account admin, a viewer, a user in no account, or nobody logged in.
ADMIN, VIEWER, NO_ACCOUNT, ANONYMOUS = "admin", "viewer", "no account", "anonymous"
COMPOSE_PREVIEW = {
    "action": "preview",
    "recipients": "+33612345678, +33612345679, +33612345679, 0612",
    "name": "Soldes",
    "text": "Bonjour {first_name|à vous}, -20 % ce week-end. Réf. ",
    "when": "now",
}

# The pages checked, one row each: (name, who, method, url, data); the url is a name, or a name
# and a function giving its arguments from the `shop` fixture. Phase 2 adds its own.
THE_LIST = ("contacts:list_detail", lambda shop: [shop.contact_lists.get().pk])
THE_TEMPLATE = lambda shop: [Template.objects.get(account=shop).pk]  # noqa: E731
THE_FIELD = lambda shop: [ContactField.objects.get(account=shop).pk]  # noqa: E731
THE_CONTACT = lambda shop: [Contact.objects.get(account=shop).pk]  # noqa: E731
THE_SEGMENT = lambda shop: [Segment.objects.get(account=shop).pk]  # noqa: E731
# The week before the day the tests run (the messages of `shop` are written today).
A_RANGE = {
    "range": "custom",
    "date_from": (date.today() - timedelta(days=6)).isoformat(),
    "date_to": date.today().isoformat(),
}
PASTED_CONTACTS = {
    "action": "upload",
    "pasted": "number,name,ville\n+33612000005,Jean Dubois,Lyon\n0612,Paul,Paris\n",
}
PAGES = [
    ("login", ANONYMOUS, "get", "login", None),
    ("compose", ADMIN, "get", "campaigns:compose", None),
    ("compose preview", ADMIN, "post", "campaigns:compose", COMPOSE_PREVIEW),
    ("compose, viewer", VIEWER, "get", "campaigns:compose", None),
    ("opt-outs", ADMIN, "get", "campaigns:optout_list", None),
    ("opt-outs, viewer", VIEWER, "get", "campaigns:optout_list", None),
    ("opt-out import", ADMIN, "get", "campaigns:optout_import", None),
    (
        "opt-out import done",
        ADMIN,
        "post",
        "campaigns:optout_import",
        {"numbers": "+33612000002\n+33612000002\n+33612000001\nnot a number"},
    ),
    ("sender names", ADMIN, "get", "campaigns:sender_list", None),
    ("categories", ADMIN, "get", "campaigns:category_list", None),
    ("API keys", ADMIN, "get", "api_keys:list", None),
    ("forbidden", VIEWER, "get", "campaigns:optout_import", None),
    ("no account", NO_ACCOUNT, "get", "campaigns:compose", None),
    ("language", ADMIN, "get", "campaigns:language", None),
    ("contact lists", ADMIN, "get", "contacts:list_index", None),
    ("contact list", ADMIN, "get", THE_LIST, None),
    ("contact list, viewer", VIEWER, "get", THE_LIST, None),
    ("contact list renamed", ADMIN, "get", ("contacts:list_edit", THE_LIST[1]), None),
    ("contact list deleted?", ADMIN, "get", ("contacts:list_delete", THE_LIST[1]), None),
    ("templates", ADMIN, "get", "contacts:template_list", None),
    ("custom fields", ADMIN, "get", "contacts:field_list", None),
    ("custom fields, viewer", VIEWER, "get", "contacts:field_list", None),
    ("custom field", ADMIN, "get", ("contacts:field_edit", THE_FIELD), None),
    ("custom field deleted?", ADMIN, "get", ("contacts:field_delete", THE_FIELD), None),
    ("template", ADMIN, "get", ("contacts:template_edit", THE_TEMPLATE), None),
    ("template deleted?", ADMIN, "get", ("contacts:template_delete", THE_TEMPLATE), None),
    ("contacts", ADMIN, "get", "contacts:contact_list", None),
    ("contacts found", ADMIN, "get", "contacts:contact_list", {"q": "Élise", "segment": ""}),
    ("contacts, viewer", VIEWER, "get", "contacts:contact_list", None),
    ("contact", ADMIN, "get", ("contacts:contact_detail", THE_CONTACT), None),
    ("contact added", ADMIN, "get", "contacts:contact_add", None),
    (
        "contact refused",
        ADMIN,
        "post",
        "contacts:contact_add",
        {"number": "0612", "name": "Paul", "language": "fr", "v_ville": "Paris"},
    ),
    ("contact changed", ADMIN, "get", ("contacts:contact_edit", THE_CONTACT), None),
    ("contact deleted?", ADMIN, "get", ("contacts:contact_delete", THE_CONTACT), None),
    ("contact import", ADMIN, "get", "contacts:import", None),
    ("contact import, columns", ADMIN, "post", "contacts:import", PASTED_CONTACTS),
    ("contact import, viewer", VIEWER, "get", "contacts:import", None),
    ("segments", ADMIN, "get", "contacts:segment_list", None),
    ("segment", ADMIN, "get", ("contacts:segment_detail", THE_SEGMENT), None),
    ("segment, viewer", VIEWER, "get", ("contacts:segment_detail", THE_SEGMENT), None),
    ("new segment", ADMIN, "get", "contacts:segment_add", None),
    ("segment changed", ADMIN, "get", ("contacts:segment_edit", THE_SEGMENT), None),
    ("segment deleted?", ADMIN, "get", ("contacts:segment_delete", THE_SEGMENT), None),
    ("dashboard", ADMIN, "get", "campaigns:dashboard", A_RANGE),
    ("dashboard, viewer", VIEWER, "get", "campaigns:dashboard", None),
    ("reports", ADMIN, "get", "campaigns:reports", A_RANGE),
]
# Where text is read: the whole page, base.html's header and navigation included.
SCOPE = "html"

# Not translated yet, from files no phase owns yet (see the report of phase 3).
PENDING: set[str] = set()
# Names and codes, the same in every language; user data comes from the `shop` fixture.
NAMES = {
    "English",
    "Français",
    "Română",
    "SMS Hub",
    "SMS",
    "GSM-7",
    "UCS-2",
    "CSV",
    "UTF-8",
    "API",
    "JSON",
    "STOP",
    "START",
    "EUR",
    "SFR",
    # phonenumbers names countries in French but not in Romanian (its data has no Romanian
    # names but Romania's own): "France (+33)" is its answer in both.
    "France (+33)",
}
WORD = re.compile(r"[^\W\d_]{2,}")
TEXT_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-label", "hx-confirm"}


class VisibleText(HTMLParser):
    """Text nodes and text attributes inside `scope` (and the <title>)."""

    SKIPPED = {"script", "style", "code", "textarea", "option"}

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope, self.depth, self.skipping, self.in_title = scope, 0, 0, False
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == self.scope or self.depth:
            self.depth += tag not in {"br", "input", "img", "meta", "link", "hr"}
        self.in_title = self.in_title or tag == "title"
        if tag in self.SKIPPED and self.depth:
            self.skipping += 1
        if self.depth:
            self.texts += [value for name, value in attrs if name in TEXT_ATTRIBUTES and value]

    def handle_endtag(self, tag):
        if tag in self.SKIPPED and self.skipping:
            self.skipping -= 1
        if tag == "title":
            self.in_title = False
        elif self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if (self.depth and not self.skipping) or self.in_title:
            self.texts.append(data)


def visible_texts(html: str, scope: str = SCOPE) -> set[str]:
    parser = VisibleText(scope)
    parser.feed(html)
    return {" ".join(text.split()) for text in parser.texts if text.strip()}


def same_in_translation(language: str) -> set[str]:
    """What is translated on purpose as itself ("Message" is French too)."""
    return {
        entry["id"]
        for entry in messages_of(language)
        if entry["plural"] is None and entry["strs"][0] == entry["id"]
    }


def translations(language: str) -> str:
    """Every translation of the catalogue, without its HTML tags: a word of a translated
    sentence may be the same in English ("segments" in a French sentence)."""
    texts = (text for entry in messages_of(language) for text in entry["strs"])
    return "\n".join(" ".join(re.sub(r"<[^>]+>", " ", text).split()) for text in texts)


def part_of_a_translation(text: str, translated: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(text)}(?!\w)", translated) is not None


def reads_as_english(text: str, allowed: set[str]) -> bool:
    for name in sorted(allowed, key=len, reverse=True):
        text = text.replace(name, " ")
    return bool(WORD.search(text))


def render(client, who, method, url_name, data, account, language):
    client.logout()
    if who == ANONYMOUS:
        headers = {"Accept-Language": language}
    else:
        headers = {}
        if who == NO_ACCOUNT:
            user = UserFactory()
            UserPreference.objects.create(user=user, language=language)
        else:
            role = Membership.Role.ADMIN if who == ADMIN else Membership.Role.VIEWER
            user = member(account, role=role, language=language)
        client.force_login(user)
    url = (
        reverse(url_name)
        if isinstance(url_name, str)
        else reverse(url_name[0], args=url_name[1](account))
    )
    if method == "post":
        response = client.post(url, data, headers=headers)
    else:
        response = client.get(url, data, headers=headers)
    assert response.status_code in (200, 400, 403), (url, response.status_code)
    return response.content.decode()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("name", "who", "method", "url_name", "data"), PAGES, ids=[row[0] for row in PAGES]
)
def test_no_english_left_on_the_page(client, shop, language, name, who, method, url_name, data):
    english = visible_texts(render(client, who, method, url_name, data, shop, "en"))
    OptOut.objects.filter(account=shop).exclude(number="+33612000001").delete()  # made again
    translated = visible_texts(render(client, who, method, url_name, data, shop, language))
    allowed = NAMES | same_in_translation(language) | PENDING | fixture_data(shop)
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


def fixture_data(account) -> set[str]:
    values = {account.name, "Dupont", "Rappels", "rappels", "Caisse", "Votre pain est prêt."}
    values |= {account.timezone, "Soldes", "Bonjour à vous, -20 % ce week-end. Réf."}
    values |= {"Clients fidèles", "Élise Martin", "Rappel", "Ville"}
    values |= {"Bonjour {name}, rendez-vous {ville|au cabinet}."}
    values |= {"Lyon", "Lyonnais", "Votre commande est prête.", "Jean Dubois", "Paul", "Paris"}
    values |= {"number", "name", "ville", "0612"}  # the pasted list's own cells
    return values


# --- dates and numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "number", "date"),
    [
        ("fr", "1\u00a0851", "3 décembre 2026"),
        ("ro", "1.851", "3 decembrie 2026"),
        ("en", "1,851", "2026-12-03"),
    ],
)
def test_dates_and_numbers_are_written_the_local_way(client, shop, language, number, date):
    # created_at is set on insert (auto_now_add): the date is written over it afterwards.
    noel = SenderNameFactory(account=shop, name="Noel")
    type(noel).objects.filter(pk=noel.pk).update(
        created_at=datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    )
    client.force_login(member(shop, language=language))
    assert date in client.get(reverse("campaigns:sender_list")).content.decode()

    numbers = "\n".join(f"+3361{n:07d}" for n in range(1851))
    page = client.post(reverse("campaigns:optout_import"), {"numbers": numbers})
    assert f"<strong>{number}</strong>" in page.content.decode()


# --- choosing the language ----------------------------------------------------------------------


def log_in(client, user):
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302


def test_the_language_chosen_is_kept_after_logging_out_and_in(client, shop):
    user = member(shop)
    log_in(client, user)
    assert "New SMS" in client.get(reverse("campaigns:compose")).content.decode()

    page = client.post(reverse("campaigns:language"), {"language": "ro"}, follow=True)
    assert "Limba a fost salvată." in page.content.decode()
    assert UserPreference.objects.get(user=user).language == "ro"
    assert "SMS nou" in client.get(reverse("campaigns:compose")).content.decode()

    client.post(reverse("logout"))
    log_in(client, user)
    page = client.get(reverse("campaigns:compose")).content.decode()
    assert "SMS nou" in page
    # The language page shows the choice made.
    page = client.get(reverse("campaigns:language")).content.decode()
    assert re.search(r'<input[^>]*value="ro"[^>]*checked', page)


def test_without_a_choice_the_browser_language_is_used(client, shop):
    client.force_login(member(shop))
    page = client.get(reverse("campaigns:compose"), headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert "Nouveau SMS" in page.content.decode()
    assert page["Content-Language"] == "fr"
    page = client.get(reverse("campaigns:compose"), headers={"Accept-Language": "de"})
    assert "New SMS" in page.content.decode()


def test_the_choice_wins_over_the_browser_and_back_to_the_browser(client, shop):
    user = member(shop, language="fr")
    client.force_login(user)
    headers = {"Accept-Language": "ro"}
    assert "Nouveau SMS" in client.get(reverse("campaigns:compose"), headers=headers).text
    client.post(reverse("campaigns:language"), {"language": ""})
    assert UserPreference.objects.get(user=user).language == ""
    assert "SMS nou" in client.get(reverse("campaigns:compose"), headers=headers).text


def test_an_unknown_language_is_refused_with_a_message(client, shop):
    client.force_login(member(shop))
    page = client.post(reverse("campaigns:language"), {"language": "xx"})
    assert page.status_code == 200
    assert "Select a valid choice" in page.text
    assert not UserPreference.objects.filter(language="xx").exists()


def test_a_french_page_leaves_english_behind_for_the_next_request(client, shop):
    """A thread serves pages and API calls in turn: the API must not answer in French."""
    client.force_login(member(shop, language="fr"))
    assert "Nouveau SMS" in client.get(reverse("campaigns:compose")).text
    assert translation.get_language() == settings.LANGUAGE_CODE


def test_the_api_and_webhooks_run_without_the_locale_middleware():
    assert "campaigns.language.UserLanguageMiddleware" in settings.MIDDLEWARE
    assert not any("locale" in name.lower() for name in settings.MACHINE_MIDDLEWARE)


# --- the API stays English ----------------------------------------------------------------------


def call_api(app, path: str, payload, headers: dict[str, str]) -> tuple[int, dict]:
    """One JSON request to the WSGI application as the web server makes it: API paths are
    served with MACHINE_MIDDLEWARE there (Django's test client would use the pages' MIDDLEWARE)."""
    body = json.dumps(payload).encode()
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(
        REQUEST_METHOD="POST",
        PATH_INFO=path,
        QUERY_STRING="",
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH=str(len(body)),
    )
    environ["wsgi.input"] = BytesIO(body)
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: list = []
    # As Django's test client does: the test's database connection stays open.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = app(environ, lambda status, headers, exc=None: started.extend([status, headers]))
        try:
            content = b"".join(result)
        finally:
            result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return int(started[0].split()[0]), json.loads(content)


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_api_error_answers_in_english_whatever_the_caller_speaks(
    client, settings, shop, language
):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
    key = ApiKeyFactory(account=shop, name="Site")
    # A French (or Romanian) page first, in the same thread.
    client.force_login(member(shop, language=language))
    assert client.get(reverse("campaigns:compose"))["Content-Language"] == language
    far = (timezone.now() + timedelta(days=800)).isoformat()
    status, answer = call_api(
        build_application(),
        "/api/v1/messages",
        {"to": ["+33612345678", "+33 1"], "text": "Bonjour", "send_at": far},
        {"Authorization": f"Bearer {key.secret}", "Accept-Language": f"{language},en;q=0.1"},
    )
    assert status == 422, answer
    fields = answer["error"]["fields"]
    assert fields["to.1"] == ["“+33 1” is not a phone number."]
    assert fields["send_at"] == ["Too far ahead: choose a time within a year from now."]
    assert not Message.objects.filter(text="Bonjour").exists()


def test_the_same_errors_on_a_page_are_in_the_users_language(client, shop):
    client.force_login(member(shop, language="fr"))
    far = timezone.localtime(timezone.now() + timedelta(days=800)).strftime("%Y-%m-%dT%H:%M")
    data = {**COMPOSE_PREVIEW, "recipients": "+33 1", "when": "at", "send_at": far}
    page = client.post(reverse("campaigns:compose"), data).text
    assert "Trop loin\u00a0: choisissez une date dans l\u2019année qui vient." in page
    assert "Too far ahead" not in page
    page = client.post(reverse("contacts:contact_add"), {"number": "+33 1"}).text
    assert "n\u2019est pas un numéro de téléphone" in page


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("fr", "Trop de tentatives échouées pour ce nom d\u2019utilisateur\u00a0: réessayez"),
        ("ro", "Prea multe încercări eșuate pentru acest nume de utilizator: încercați din nou"),
        ("en", "Too many failed attempts for this user name: try again in 5 minutes, or ask"),
    ],
)
def test_a_locked_out_login_says_so_in_the_browsers_language(client, db, language, said):
    LoginLock.objects.create(
        scope=LoginLock.Scope.USERNAME,
        value="marie",
        failures=5,
        locked_at=timezone.now(),
        locked_until=timezone.now() + timedelta(minutes=4, seconds=30),
    )
    page = client.post(
        reverse("login"),
        {"username": "Marie", "password": "not-her-password"},
        headers={"Accept-Language": language},
    )
    assert page.status_code == 200
    assert said in page.text
