"""What the error codes the hub stores mean, as one short sentence for people.

A message's `error_code` and a provider account's `last_error_code` hold a code: the hub's own
(`opted_out`, `no_route`, `window_ended`...), an adapter's (`invalid_number`, `config`...), an
HTTP status a provider answered with (`401`, `503`), or a provider's own word from its doc's
error table or its delivery reports (Ogangi's `BAD_SIGNATURE`, the simulator's `UNREACHABLE`,
a Twilio-style gateway's `30003`). `meaning(code)` gives the sentence; a code nobody documented
comes back as itself with "(provider's code)". Staff templates use the `error_meaning` filter
(`{% load provider_errors %}`).
"""

import re

from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

MEANINGS: dict[str, Promise] = {
    # --- the hub's own codes (campaigns.services) ---
    "opted_out": _("The recipient opted out (or the number is blocked): nothing was sent."),
    "no_route": _(
        "No provider account can send it: the account's route is empty or all of it is disabled."
    ),
    "window_ended": _("The send window ended before the message could be sent."),
    "unreadable": _(
        "The provider's answer could not be read; it may have the message, so it is not resent."
    ),
    "timeout": _("The provider did not answer in time; the message is tried again later."),
    "network": _("The provider could not be reached (network error); tried again later."),
    "config": _(
        "The provider account is misconfigured (a credential missing or invalid): fix it in admin."
    ),
    "receive_only": _(
        "This provider account only receives callbacks: it cannot send, take it off the route."
    ),
    # --- the adapters' codes (providers/*.py) ---
    "unreadable_answer": _(
        "The provider's answer could not be read; it may have the message, so it is not resent."
    ),
    "answer": _(
        "The provider's answer could not be read (is the base URL the provider's API?); not resent."
    ),
    "check": _("The connection test got an answer unlike the provider's API: check the base URL."),
    "invalid_number": _("The phone number is not in a form the provider accepts."),
    "number": _("The phone number is not in international form (+ and country code)."),
    "phone": _("The phone number is not in international form (+ and country code)."),
    "invalid_sender": _("The sender is not one the provider accepts for this account."),
    "sender": _("The sender name is not accepted: 3 to 11 letters or digits, no spaces."),
    "charset": _("The text holds characters the provider does not accept."),
    "invalid_text": _("The text holds characters the provider cannot carry."),
    "too_long": _("The text is longer than the provider accepts."),
    "shortTextMessage": _("SMSAdvert takes a text of 3 to 480 characters."),
    "marketing": _(
        "Primotexto's notification service forbids marketing messages: use another provider."
    ),
    "window": _("The send window is not valid (it ends before it starts, or has ended)."),
    "errorMessage": _("SMSAdvert refused it with an error message (see the reason)."),
    "no_carrier": _(
        "Ogangi's one-time codes need the carrier's name in the account's Carrier setting."
    ),
    "invalid_length": _("The one-time code length must be from 4 to 12 digits."),
    "signature_reading": _(
        "Ogangi accepts another signature reading: set the two signature settings the "
        "connection test names."
    ),
    "cursor": _(
        "The saved position for fetching replies could not be read: check the account in admin."
    ),
    # --- HTTP statuses a provider answered with (providers.http) ---
    "400": _("The provider refused the request as incomplete or malformed (HTTP 400)."),
    "401": _("The provider refused the credentials (HTTP 401): check them in admin."),
    "402": _("The provider wants payment (HTTP 402): is there credit left on the account?"),
    "403": _("The provider refused access with these credentials (HTTP 403)."),
    "404": _("Nothing at that address (HTTP 404): check the provider account's base URL."),
    "408": _("The provider timed out the request (HTTP 408); tried again later."),
    "429": _("The provider asked to slow down (HTTP 429); tried again later."),
    "500": _("The provider had an internal error (HTTP 500); tried again later."),
    "502": _("The provider's gateway failed (HTTP 502); tried again later."),
    "503": _("The provider is unavailable (HTTP 503); tried again later."),
    "504": _("The provider's gateway timed out (HTTP 504); tried again later."),
    # --- Ogangi's words (ogangi-mobile-engagement.txt: "Response XML Basics", message states) ---
    "BAD_SIGNATURE": _(
        "Ogangi refused the signature: the keys, the instance id or the signature settings "
        "are wrong."
    ),
    "ERROR": _("Ogangi had an internal error; tried again later."),
    "NOT_ENOUGH_FUNDS": _("No credit left on the Ogangi account: top it up."),
    "BAD_TIMEZONE": _("Ogangi refused the workspace's time zone: check it with Ogangi."),
    "NOT_SENT": _("Ogangi did not send the message."),
    "BAD_FROM": _("Ogangi refused the sender (short or long code)."),
    "BAD_TO": _("Ogangi refused the recipient's number."),
    "BAD_ENCODING": _("Ogangi could not encode the text."),
    "BAD_CARRIER/FROM": _("The carrier and the sender do not go together at Ogangi."),
    "SEGMENTS_EXCEEDED": _("The text is too long for Ogangi (over 1600 characters)."),
    # Ogangi's and the simulator's delivery reports.
    "UNREACHABLE": _("The recipient's phone could not be reached (off or out of coverage)."),
    "UNDELIVERED": _("The network could not deliver the message to the phone."),
    "EXPIRED": _("The message expired before the phone could receive it."),
    # --- SMSAdvert's doc: its one example errorMessage ---
    "DATABASE ERROR": _("SMSAdvert had a database error; tried again later."),
    # --- Twilio-style gateways' delivery reports (ErrorCode; Twilio's documented 300xx) ---
    "30001": _("The gateway's queue overflowed (Twilio 30001)."),
    "30002": _("The gateway account is suspended (Twilio 30002)."),
    "30003": _("The recipient's phone could not be reached (Twilio 30003)."),
    "30004": _("The message was blocked (Twilio 30004)."),
    "30005": _("The recipient's number is unknown or no longer in service (Twilio 30005)."),
    "30006": _("A landline or a carrier that cannot take SMS (Twilio 30006)."),
    "30007": _("The carrier filtered the message (Twilio 30007)."),
    "30008": _("An unknown error from the carrier (Twilio 30008)."),
}

_HTTP = re.compile(r"[1-5]\d\d")


def known(code: str) -> bool:
    """Whether `meaning` has a sentence of its own for `code`."""
    return _sentence(code) is not None


def meaning(code: object) -> str:
    """The sentence for an error code; "" for none. Codes joined with commas (SMSAdvert's
    field errors: "phone,shortTextMessage") get each part's sentence."""
    text = str(code or "").strip()
    if not text:
        return ""
    sentence = _sentence(text)
    if sentence is not None:
        return sentence
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) > 1 and all(_sentence(part) is not None for part in parts):
        return " ".join(dict.fromkeys(_sentence(part) for part in parts))
    return gettext("%(code)s (provider's code)") % {"code": text}


def _sentence(code: str) -> str | None:
    for candidate in (code, code.upper(), code.lower()):
        if candidate in MEANINGS:
            return str(MEANINGS[candidate])
    if _HTTP.fullmatch(code):
        if code.startswith("5"):
            return gettext("The provider had an error (HTTP %(code)s); tried again later.") % {
                "code": code
            }
        if code.startswith("4"):
            return gettext("The provider refused the request (HTTP %(code)s).") % {"code": code}
    return None
