"""French and Romanian in Django's admin: our own text (model and field names, help texts, list
columns, actions, fieldsets, the provider account form's credential fields) shows no English to
a French or Romanian staff superuser; Django translates its own chrome.

The untranslated-string check is tests/test_i18n.py's, over the admin's content area (`<main>`:
what our models and admins put on the page; the header and the navigation sidebar are Django's
and repeat the index's model names).
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.text import capfirst

from campaigns.api.models import ApiKey
from campaigns.contacts.models import Contact
from campaigns.models import Account, Campaign, Message, OptOut, SenderName, UserPreference
from providers.models import ProviderAccount

from .factories import (
    AccountFactory,
    ApiKeyFactory,
    CampaignFactory,
    MessageFactory,
    OptOutFactory,
    ProviderAccountFactory,
    SenderNameFactory,
)
from .test_i18n import (
    NAMES,
    messages_of,
    part_of_a_translation,
    reads_as_english,
    visible_texts,
)

# The pages in each language: the same whatever the database (CI runs them on its first leg).
pytestmark = pytest.mark.translations

MAIN = Path(settings.BASE_DIR) / "locale"
LANGUAGES = ("fr", "ro")


# --- the admin's pages ------------------------------------------------------------------------

PROVIDER, ACCOUNT = "Simulateur Paris", "Boulangerie Dupont"


@pytest.fixture
def shop(db):
    """One of each object the pages below open."""
    provider = ProviderAccountFactory(name=PROVIDER)
    account = AccountFactory(name=ACCOUNT, route=[provider])
    campaign = CampaignFactory(account=account, name="Soldes", text="Promo -20 %")
    MessageFactory(account=account, campaign=campaign, recipient="+33612345678", text="Bonjour")
    SenderNameFactory(account=account, name="DUPONT", status=SenderName.Status.PENDING)
    OptOutFactory(account=account, number="+33612000001")
    ApiKeyFactory(account=account, name="Caisse")
    Contact.objects.create(account=account, number="+33612000003", name="Élise Martin")
    return account


def superuser(language: str):
    user = get_user_model().objects.create_superuser(
        f"admin-{language}", f"admin-{language}@example.com", "a-long-test-password"
    )
    UserPreference.objects.create(user=user, language=language)
    return user


def first(model):
    return lambda: [model.objects.order_by("pk").first().pk]


# (name, url name, its arguments); every model: the list, an object's page and the add page.
MODELS = [
    ("provider account", "providers_provideraccount", ProviderAccount),
    ("account", "campaigns_account", Account),
    ("message", "campaigns_message", Message),
    ("campaign", "campaigns_campaign", Campaign),
    ("sender name", "campaigns_sendername", SenderName),
    ("opt-out", "campaigns_optout", OptOut),
    ("API key", "api_apikey", ApiKey),
    ("contact", "contacts_contact", Contact),
]
PAGES = [("index", "admin:index", None)]
for _name, _url, _model in MODELS:
    PAGES += [
        (f"{_name} list", f"admin:{_url}_changelist", None),
        (f"{_name} page", f"admin:{_url}_change", first(_model)),
    ]
    if _model is not Message:  # messages are read-only: no add page
        PAGES.append((f"{_name} added", f"admin:{_url}_add", None))
# Where text is read: the content area (the header and the sidebar are Django's).
SCOPE = "main"

# Names, codes and data the pages show as they are.
SHOWN_AS_IS = NAMES | {
    "null",  # placeholders: what to type
    "smpp",
    "http://127.0.0.1:8025",
    PROVIDER,
    ACCOUNT,
    "Soldes",
    "Promo -20 %",
    "Bonjour",
    "DUPONT",
    "Caisse",
    "Élise Martin",
    "Europe/Paris",
    "UTC",
    "GSM-7",
    "UCS-2",
    "HMAC-SHA256",
    "X-SMSHub-Signature",
    "SMS 1",
    "ID",
    # provider names (adapters' display_name)
    "Simulator",
    "Vortext (Cegedim)",
    "Primotexto",
    "SMSAdvert",
    "Expertflow SMS Connector",
    "Ogangi Mobile Engagement",
    "Twilio-style gateway (callbacks only)",
}
# Secrets as shown (masked) and API keys' prefixes.
SHOWN_MASKED = re.compile(r"•+\S{0,4}|.*\bsmsh_\S+…\)?")
# English that Django's own admin shows: the alt texts of its search icon and of its yes/no
# icons are not marked for translation, and its Romanian catalogue lacks the newer admin texts.
DJANGO_ENGLISH = {
    "fr": {"Search", "True", "False"},
    "ro": {
        "Search",
        "True",
        "False",
        "Run",
        "Show counts",
        "Select all objects on this page for an action",
        "Add link",
        "Change or view list link",
        "Model name",
    },
}
DJANGO_ENGLISH_START = "Select this object for an action - "  # + the object's name


def same_in_translation(language: str) -> set[str]:
    """Messages translated on purpose as themselves ("Message" is French too)."""
    entries = messages_of(language)
    same = {e["id"] for e in entries if e["plural"] is None and e["strs"][0] == e["id"]}
    return same | {capfirst(text) for text in same}  # labels are shown capitalised


def translations(language: str) -> str:
    entries = messages_of(language)
    return "\n".join(" ".join(text.split()) for entry in entries for text in entry["strs"])


def render(client, language: str, url: str, arguments) -> str:
    client.force_login(get_user_model().objects.get(username=f"admin-{language}"))
    response = client.get(reverse(url, args=arguments() if arguments else None))
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("name", "url", "arguments"), PAGES, ids=[row[0] for row in PAGES])
def test_no_english_left_in_the_admin(client, shop, language, name, url, arguments):
    superuser(language)
    superuser("en")
    html = render(client, language, url, arguments)
    assert f'<html lang="{language}"' in html
    translated = visible_texts(html, SCOPE)
    english = visible_texts(render(client, "en", url, arguments), SCOPE)
    allowed = SHOWN_AS_IS | same_in_translation(language) | DJANGO_ENGLISH[language]
    allowed |= set(get_user_model().objects.values_list("username", flat=True))
    catalogue = translations(language)
    left = sorted(
        text
        for text in translated & english
        if text not in allowed
        and not SHOWN_MASKED.fullmatch(text)
        and not text.startswith(DJANGO_ENGLISH_START)
        and reads_as_english(text, allowed)
        and not part_of_a_translation(text, catalogue)
    )
    assert not left, f"{name} in {language} still shows English: {left}"
    assert translated - english, f"{name} in {language} shows nothing translated"


# --- what a French and a Romanian admin read --------------------------------------------------

LABELS = {
    # the provider account form: our fieldsets, the simulator's credential, the webhook auth
    ("provider account page", "fr"): [
        "Identifiants Simulator",
        "Clé d\u2019API",
        "Nom d\u2019utilisateur des webhooks",
        "Mot de passe des webhooks",
        "État",
        "Dernier succès",
        "Priorité",
        "Messages par seconde au plus",
    ],
    ("provider account page", "ro"): [
        "Credențiale Simulator",
        "Cheie API",
        "Nume de utilizator pentru webhook-uri",
        "Parola pentru webhook-uri",
        "Stare de funcționare",
        "Ultimul succes",
        "Prioritate",
        "Mesaje pe secundă cel mult",
    ],
    ("provider account list", "fr"): ["Tester la connexion", "Lever la suspension"],
    ("provider account list", "ro"): ["Testează conexiunea", "Ridică suspendarea"],
    ("account page", "fr"): ["Pays par défaut", "Prix par segment SMS", "Journal d\u2019audit"],
    ("account page", "ro"): ["Țară implicită", "Preț pe segment SMS", "Jurnal de audit"],
    ("account list", "fr"): ["Fuseau horaire", "Créé le", "Renouveler la clé de signature"],
    ("account list", "ro"): ["Fus orar", "Creat la", "Reînnoiește cheia de semnătură"],
    ("message page", "fr"): ["Envoi", "Horaires", "Signification de l\u2019erreur"],
    ("message page", "ro"): ["Trimitere", "Momente", "Semnificația erorii"],
    ("campaign page", "fr"): ["Messages par statut"],
    ("campaign page", "ro"): ["Mesaje după stare"],
    ("sender name list", "fr"): ["Approuver les noms d\u2019expéditeur sélectionnés"],
    ("sender name list", "ro"): ["Aprobă numele de expeditor selectate"],
    ("API key list", "fr"): ["Révoquer les clés d\u2019API sélectionnées", "Active"],
    ("API key list", "ro"): ["Revocă cheile API selectate", "Activă"],
    ("opt-out list", "fr"): ["Désinscriptions"],
    ("opt-out list", "ro"): ["Dezabonări"],
}


@pytest.mark.parametrize(("page", "language"), list(LABELS), ids=[" ".join(k) for k in LABELS])
def test_our_labels_read_in_the_language(client, shop, page, language):
    superuser(language)
    _name, url, arguments = next(row for row in PAGES if row[0] == page)
    html = render(client, language, url, arguments)
    missing = [label for label in LABELS[page, language] if label not in html]
    assert not missing, f"{page} in {language}: {missing}"


def test_the_admin_stays_english_for_an_english_admin(client, shop):
    superuser("en")
    page = render(client, "en", "admin:providers_provideraccount_change", first(ProviderAccount))
    assert "Simulator credentials" in page and "API key" in page and "Health" in page
