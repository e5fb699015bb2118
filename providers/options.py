"""Provider-account options: non-secret credentials that admin shows as labelled choices.

An adapter lists its options (`options` on the adapter class); admin's provider account page
then edits each as a choice with a label and an explanation instead of a raw JSON key, and shows
a choice's warning whenever the account is set to it. Adapters keep reading the credentials as
before: an option only says which stored values mean what.
"""

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Choice:
    """One value of an option. `value` None means the key is absent from the credentials."""

    value: Any
    label: str
    # Other stored values that mean the same (e.g. False and "false" for an absent flag).
    same_as: tuple[Any, ...] = ()
    # Shown in admin whenever the account is set to this choice.
    warning: str = ""

    def matches(self, stored: Any) -> bool:
        return any(_same(stored, value) for value in (self.value, *self.same_as))


@dataclass(frozen=True)
class Option:
    key: str
    label: str
    choices: tuple[Choice, ...]  # the first is the default: the key absent
    help: str = ""

    def choice(self, credentials: dict[str, Any]) -> Choice | None:
        """The choice the credentials hold; None for a stored value no choice means."""
        stored = credentials.get(self.key)
        return next((choice for choice in self.choices if choice.matches(stored)), None)

    def warnings(self, credentials: dict[str, Any]) -> list[str]:
        choice = self.choice(credentials)
        return [choice.warning] if choice is not None and choice.warning else []


TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off", "")


def flag(
    key: str, label: str, *, absent: str, true: str, help: str = "", warning: str = ""
) -> Option:
    """A true/false option whose absence means false (words such as "yes" and "off" too)."""
    return Option(
        key,
        label,
        (
            Choice(None, absent, same_as=(False, *FALSE_WORDS)),
            Choice(True, true, same_as=TRUE_WORDS, warning=warning),
        ),
        help,
    )


def _same(stored: Any, value: Any) -> bool:
    """Whether a stored value is `value`: None and booleans exactly, others as words."""
    if value is None or isinstance(value, bool):
        return stored is value
    if stored is None or isinstance(stored, bool):
        return False
    return str(stored).strip().lower() == str(value).lower()


# --- credentials as labelled fields ------------------------------------------------------------
TEXT, URL, NUMBER, CHOICE = "text", "url", "number", "choice"


@dataclass(frozen=True)
class Credential:
    """One credential key of a provider kind, as admin asks for it: a labelled form field.

    An adapter lists its keys in `credential_fields` (plain data); admin builds the provider
    account's form from them. A secret is typed into a password input, never shown back, and
    keeps its stored value when left empty (a "clear" box removes it). `default` is what the
    adapter uses when the key is absent: a field left at it stores nothing.
    """

    key: str
    label: str
    help: str = ""
    required: bool = False
    secret: bool = False
    kind: str = TEXT  # TEXT, URL, NUMBER or CHOICE
    # CHOICE: (stored value, label), in order.
    choices: tuple[tuple[str, str], ...] = ()
    default: Any = None
    placeholder: str = ""
    min_value: int | None = None
    max_value: int | None = None
    # A regular expression the whole value must match, and what to say when it does not.
    pattern: str = ""
    pattern_message: str = ""
    # The key of another credential that must be set whenever this one is.
    requires: str = ""
    max_length: int = 500


# Optional HTTP basic auth that a provider must send with its webhooks: every kind has it.
WEBHOOK_AUTH: tuple[Credential, ...] = (
    Credential(
        "webhook_username",
        _("Webhook user name"),
        help=_(
            "Optional. When set, the provider must call the webhook URLs with HTTP basic auth "
            "using this user name and the password below."
        ),
        max_length=200,
    ),
    Credential(
        "webhook_password",
        _("Webhook password"),
        help=_("Optional: the basic auth password the provider sends with its webhooks."),
        secret=True,
        requires="webhook_username",
        max_length=200,
    ),
)
