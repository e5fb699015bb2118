"""Primotexto: notification (transactional) SMS through Primotexto's v2 JSON API.

Wire protocol (``../shared/provider-docs/primotexto.txt``, "Envoyer un SMS de notification"):

    POST {base}/v2/notification/messages/send
    X-Primotexto-ApiKey: <api_key>
    Content-Type: application/json

    {"number": "+33600000000", "message": "Code de confirmation: 283951",
     "sender": "YourCompany", "campaignName": "Code de confirmation",
     "category": "codeConfirmation", "date": 1398177000000}

    → 200 {"creditsUsed": 1.0, "snapshotId": "386479"}

``snapshotId`` becomes the provider message id and ``creditsUsed`` the cost (a Decimal, in
Primotexto credits). Production base URL: ``https://api.primotexto.com``.

Deliberate choices where the doc is silent or ambiguous:

- ``number`` is always sent in E.164 (``+33600000000``, one of the two formats the doc accepts);
  anything else is refused before the call. The doc shows only French numbers but does not say
  other countries are refused, so any E.164 number is sent.
- ``sender`` (3 to 11 ASCII letters or digits, the doc's "ALPHANUMERIQUES") is omitted when the
  message has none: Primotexto then uses one of its numeric short codes. ``campaignName``
  (from ``sms.campaign_name``) and ``category`` (from ``sms.category``) are omitted when empty.
- ``date`` (epoch milliseconds) is sent only when the adapter hands Primotexto a time still to
  come: ``sms.send_at`` at least ``FUTURE_MARGIN`` (one minute) from now; a naive ``send_at`` is
  read in Django's current time zone. The hub holds a scheduled message until it is due, so its
  ``send_at`` is past when it is sent (and again on retries): it is then sent without ``date``,
  for immediate delivery. What Primotexto does with a past ``date`` is not documented (a real
  provider may well refuse it), so one is never sent; a time less than the margin ahead is sent
  at once too, since the call and clock differences could make it past on arrival.
- Characters: the doc's list of allowed characters is taken verbatim (``DOC_CHARACTERS``).
  Read carefully, it is a strict *subset* of GSM 03.38, not a superset: among others it lacks
  ``€ [ ] É Ç Ä Ö ä ö Æ æ Ø ø ß ¡ ¿ § ¥`` and the Greek capitals. It also lists no whitespace,
  yet the doc's own example ("Code de confirmation: 283951") contains spaces, so whitespace the
  list cannot show is allowed: the space and line breaks (LF, CR; both in GSM 03.38's basic
  table). Anything else is refused (not transliterated) with a message naming the characters.
- No length limit is documented, so none is enforced (the allowed set is all GSM-7, so the hub's
  segment counter gives the cost).
- The notification endpoint forbids marketing content ("LES MESSAGES A CARACTERE MARKETING SONT
  STRICTEMENT INTERDITS ICI"): a message whose category is "marketing" (any case) is refused.
- ``sms.reference`` and ``sms.callback_url`` have no field in this API and are not sent.
- Error bodies are not documented (NOTES.md: classify by status code), so ``errors`` is empty
  and every non-2xx answer is classed by ``providers.http``: 401/403 (the API key refused) and
  402 (payment required: no credits left) are account problems (ProviderAccountError: the
  account is put on hold, no message fails for it); so is 404, since the send path is fixed: a
  404 means the base URL is wrong for every message. 429 is throttling, 5xx and 408 temporary,
  other 4xx (400: this message's fields) a refusal of the message. ``describe_error`` keeps the
  body, prefixed with a sentence for the status (and the ``error``/``message``/``code`` value
  when the body happens to be a JSON object with one, as a public client of this API reads
  ``code`` and ``error``). A 2xx answer without a JSON object carrying ``snapshotId`` is a
  ``ProviderRejected`` holding Primotexto's text (not retried: the message may have gone out).
  A missing or non-numeric ``creditsUsed`` only leaves the cost unknown (logged): the message
  was accepted, so it must not be reported as refused.
- Delivery reports and replies: the doc mentions "callbacks" only as a use of ``category`` and
  documents no callback format, so the base parse hooks (which refuse the webhook) are kept and
  there is no ``status_map`` vocabulary. The status/replies polling endpoints seen in
  Primotexto's own client libraries are not in the doc either and their answers are unknown.
- ``check()``: the doc has no read-only endpoint. It uses ``GET {base}/v2/account/stats`` with the
  same header, the account endpoint of Primotexto's own PHP library (which the doc links to;
  its answer carries ``credits``). It sends no SMS and verifies the key; see ``check``. A 2xx
  there that is not a JSON object is a configuration error (the base URL is not the API).
"""

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import requests
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from providers.base import BaseProvider, ProviderRequest
from providers.events import DeliveryStatus, OutboundSMS, SendResult
from providers.exceptions import ErrorClass, ProviderConfigurationError, ProviderRejected
from providers.options import Credential

logger = logging.getLogger(__name__)

SEND_PATH = "/v2/notification/messages/send"
ACCOUNT_PATH = "/v2/account/stats"

# "Caractères autorisés", verbatim from the doc (é appears twice there).
DOC_CHARACTERS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "@£_!$\"#èé%ù&ìò()*:+;,<-=ÑñÅ.>Üüåé/?à|^¤{}~\\'"
)
# Whitespace the doc's list cannot show: the space (used in the doc's own example) and line breaks.
WHITESPACE_CHARACTERS = " \n\r"
ALLOWED_CHARACTERS = frozenset(DOC_CHARACTERS + WHITESPACE_CHARACTERS)

SENDER_RE = re.compile(r"[A-Za-z0-9]{3,11}")
E164_RE = re.compile(r"\+[1-9][0-9]{6,14}")
MARKETING = "marketing"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A `send_at` nearer than this is sent at once, without `date` (never a date past on arrival).
FUTURE_MARGIN = timedelta(minutes=1)

_STATUS_HINTS = {
    400: "bad request",
    401: "the API key was refused (check the provider account's api_key)",
    402: "payment required (are there credits left on the Primotexto account?)",
    403: "access refused with this API key (check the provider account's api_key and rights)",
    404: "no Primotexto API at this address (check the provider account's base URL)",
    429: "asked to slow down",
}


class PrimotextoProvider(BaseProvider):
    slug = "primotexto"
    display_name = "Primotexto"
    default_base_url = "https://api.primotexto.com"
    required_credentials = ("api_key",)
    secret_credentials = frozenset({"api_key"})
    credentials_help = (
        "api_key: the API key generated in Primotexto's web app (developer keys), "
        "sent in the X-Primotexto-ApiKey header."
    )
    credential_fields = (
        Credential(
            "api_key",
            _("API key"),
            help=_(
                "Generated in Primotexto's web app (developer keys); sent in the "
                "X-Primotexto-ApiKey header."
            ),
            required=True,
            secret=True,
            # An HTTP header carries it: printable ASCII, no spaces.
            pattern=r"[\x21-\x7e]+",
            pattern_message=_("An API key is printable ASCII characters without spaces."),
        ),
    )
    # The doc documents no status words (no delivery report format): nothing to map.
    status_map: ClassVar[dict[str, DeliveryStatus]] = {}
    # Error bodies are not documented: errors are classed by status (401/402/403 are account
    # problems by default). A 404 on the fixed send path means the base URL is wrong.
    http_errors: ClassVar[dict[int, ErrorClass]] = {404: ErrorClass.ACCOUNT}

    # --- sending ------------------------------------------------------------------------
    def validate(self, sms: OutboundSMS) -> None:
        super().validate(sms)
        if sms.category.strip().casefold() == MARKETING:
            raise ProviderRejected(
                "Primotexto's notification API forbids marketing messages; this message's "
                "category is marketing: send it through another provider",
                code="marketing",
            )
        if not E164_RE.fullmatch(sms.to):
            raise ProviderRejected(
                f"the number {sms.to!r} is not in E.164 format (+ and country code, "
                "e.g. +33600000000)",
                code="number",
            )
        if sms.sender and not SENDER_RE.fullmatch(sms.sender):
            raise ProviderRejected(
                f"the sender {sms.sender!r} is not valid for Primotexto: it must be 3 to 11 "
                "letters or digits (no spaces, accents or punctuation)",
                code="sender",
            )
        refused = list(dict.fromkeys(char for char in sms.text if char not in ALLOWED_CHARACTERS))
        if refused:
            shown = ", ".join(repr(char) for char in refused)
            raise ProviderRejected(
                f"the message contains characters Primotexto does not accept: {shown}. "
                "Remove or replace them; allowed are unaccented letters, digits, space, line "
                "breaks, èéùìòàÑñÅåÜü and @£_!$\"#%&()*:+;,<-=.>/?|^¤{}~\\'",
                code="charset",
            )

    def build_request(self, sms: OutboundSMS) -> ProviderRequest:
        body: dict[str, Any] = {"number": sms.to, "message": sms.text}
        if sms.sender:
            body["sender"] = sms.sender
        if sms.campaign_name:
            body["campaignName"] = sms.campaign_name
        if sms.category:
            body["category"] = sms.category
        date = future_date(sms.send_at)
        if date is not None:
            body["date"] = date
        return ProviderRequest(
            "POST",
            f"{self.base_url}{SEND_PATH}",
            headers={**self._headers(), "Content-Type": "application/json"},
            json=body,
        )

    def parse_send_response(self, response: requests.Response, sms: OutboundSMS) -> SendResult:
        body = _json_object(response)
        snapshot_id = body.get("snapshotId") if body is not None else None
        if isinstance(snapshot_id, int) and not isinstance(snapshot_id, bool):
            snapshot_id = str(snapshot_id)
        if not isinstance(snapshot_id, str) or not snapshot_id.strip():
            raise ProviderRejected(
                f"unreadable answer from Primotexto (HTTP {response.status_code}, expected "
                f"JSON with a snapshotId): {response.text[:300] or '(empty body)'}",
                code="answer",
                raw=response.text,
            )
        cost = _credits(body.get("creditsUsed"))
        if cost is None:
            logger.warning(
                "Primotexto accepted message %s (snapshot %s) without a readable creditsUsed: %r",
                sms.reference,
                snapshot_id,
                body.get("creditsUsed"),
            )
        logger.info("Primotexto accepted message %s as snapshot %s", sms.reference, snapshot_id)
        return SendResult(
            provider_message_id=snapshot_id.strip(),
            status=DeliveryStatus.SENT,
            cost=cost,
            raw=body,
        )

    def describe_error(self, response: requests.Response) -> str | None:
        """A sentence for the status code, then Primotexto's own body (error bodies are not
        documented, so the body is always kept as it came)."""
        status = response.status_code
        hint = _STATUS_HINTS.get(status)
        if hint is None:
            hint = "server error" if status >= 500 else "request refused"
        detail = ""
        body = _json_object(response)
        if body is not None:
            for key in ("error", "message", "code"):
                if body.get(key) not in (None, ""):
                    detail = f" ({key}: {body[key]})"
                    break
        text = response.text.strip()[:500] or "(empty body)"
        return f"{hint}{detail}: {text}"

    # --- connection test ----------------------------------------------------------------
    def check(self) -> str:
        """Verify the API key with ``GET {base}/v2/account/stats``, which sends nothing.

        The doc has no read-only endpoint; this is the account endpoint of Primotexto's own PHP
        library (linked from the doc), answered with JSON that carries ``credits``. A 401/403
        means the key is refused, a 404 a wrong base URL (both ``ProviderAccountError``); network
        errors and 5xx are ``ProviderTemporaryError``. A 2xx that is not a JSON object is a
        ``ProviderConfigurationError`` (the base URL points at something that is not the API).
        """
        response = self.call(
            ProviderRequest("GET", f"{self.base_url}{ACCOUNT_PATH}", headers=self._headers())
        )
        body = _json_object(response)
        if body is None:
            raise ProviderConfigurationError(
                f"{self.base_url} does not answer like Primotexto's API (check the base URL): "
                f"unexpected answer from {ACCOUNT_PATH} (HTTP {response.status_code}, not a "
                f"JSON object): {response.text[:300] or '(empty body)'}",
                code="answer",
                raw=response.text,
            )
        credits = _credits(body.get("credits"))
        if credits is None:
            return "Primotexto accepts the API key"
        return f"Primotexto accepts the API key; {credits} credits left"

    # --- helpers ------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        key = self.credential("api_key")
        key = key.strip() if isinstance(key, str) else ""
        if not key:
            raise ProviderConfigurationError(
                "the provider account's api_key is empty", code="config"
            )
        if not key.isascii() or not key.isprintable():
            raise ProviderConfigurationError(
                "the provider account's api_key contains characters an HTTP header cannot carry",
                code="config",
            )
        return {"X-Primotexto-ApiKey": key}


def future_date(send_at: datetime | None, now: datetime | None = None) -> int | None:
    """The ``date`` to send for `send_at`: its epoch milliseconds when it is at least
    `FUTURE_MARGIN` ahead of `now`, else None (send at once, no date in the past)."""
    if send_at is None:
        return None
    date, now_ms = epoch_milliseconds(send_at), epoch_milliseconds(now or timezone.now())
    return date if date - now_ms >= FUTURE_MARGIN // timedelta(milliseconds=1) else None


def epoch_milliseconds(moment: datetime) -> int:
    """``moment`` as Unix epoch milliseconds (the doc's ``date``); naive means current zone."""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = json.loads(response.text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _credits(value: Any) -> Decimal | None:
    """A number of credits as a Decimal (1.0 → Decimal("1.0")), or None when unreadable."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None
