"""SMSAdvert: raw token in ``Authorization``, JSON in and out, delivery reports per message.

What the fake accepts and answers (``smsadvert.txt`` and NOTES.md):

- ``POST /api/sms/`` (with its trailing slash) with ``Authorization: <token>`` (the raw token,
  no scheme word; default ``smsadvert-token``) and JSON::

      {"phone": "+40740123456,+40740123457", "shortTextMessage": "...", "sendAsShort"?: true,
       "failover"?: "short", "startDate"?: 1486883578036, "endDate"?: 1486889778036,
       "callback"?: "https://hub.example/hooks/..."}

  → 200 ``{"successMessage": "Your message has been successfully submitted!",
  "msgId": "<24 hex>"}``: one ``msgId`` for the whole submission.
- Refusals, in the doc's two shapes: a missing or wrong token → 401 ``{"errorMessage":
  "Invalid authentication token!"}``; a body that is not a JSON object → 400
  ``{"errorMessage": "..."}``; invalid fields → 400 ``{"errors": {field: text, ...}}``, every
  invalid field at once, with the doc's own texts where it has them (``"Numéro de téléphone
  invalide!"``, ``"Saisissez un minimum de caractères 3!"``). Field rules: ``phone`` a string
  of E.164 numbers separated by commas (no spaces, no empty item, no trailing comma), at most
  1000 numbers as written; ``shortTextMessage`` 3 to 480 characters; ``sendAsShort`` a boolean;
  ``failover`` only ``"short"``; ``startDate``/``endDate`` non-negative integers (milliseconds),
  ``endDate`` after ``startDate``; ``callback`` an absolute http(s) URL.
- Delivery reports: when ``callback`` is given, ``dlr_delay`` seconds later the fake POSTs JSON
  ``{"status": "delivered"|"failed", "msgId": "<msgId>"}`` to it (retried on failure):
  ``failed`` for a number ending in 0000, ``delivered`` otherwise. The report carries exactly
  the doc's two fields. A submission to one number gets its report. For a submission to several
  distinct numbers (duplicates are dropped, as the doc says) the doc does not say what comes,
  and a report naming only the shared ``msgId`` could not tell which recipient it is about; so
  it is a reading, the credential ``multi_recipient_reports`` (settable per run with ``POST
  /_simulator/config {"credentials": {"smsadvert": {"multi_recipient_reports": ...}}}``):
  ``none`` (the default: no report at all for such a submission) or ``per_recipient`` (one
  report per distinct recipient, in the order written, all carrying the same ``msgId``).

Faults answer in the doc's shapes: a 5xx (``error_rate``) with the doc's own ``{"errorMessage":
"There was a database error!"}`` (a temporary error on SMSAdvert's side), an ``error_status`` of
401 or 403 exactly as a refused token, any other status with ``{"errorMessage": "..."}``; a
revoked token is also simulated by changing the ``token`` credential at run time.

Choices where the doc is silent: the HTTP statuses of errors (400 for the request, 401 for the
token, 5xx for faults); the ``msgId`` format (the doc
writes ``xxxxxx``); lengths counted in characters (Python ``len``); more than 1000 numbers is
counted before duplicates are dropped; ``sendAsShort`` (their network or the customer's own
devices), ``failover`` and the send window change nothing in the fake (the report still comes
after ``dlr_delay``). The doc documents no replies: injected replies are refused.
"""

from __future__ import annotations

import functools
import hmac
import uuid
from typing import Any

from ..server import (
    E164_RE,
    UNREACHABLE_SUFFIX,
    Fake,
    SentMessage,
    SimRequest,
    SimResponse,
    is_http_url,
)

MAX_RECIPIENTS = 1000
MIN_TEXT, MAX_TEXT = 3, 480
SUCCESS_MESSAGE = "Your message has been successfully submitted!"
DATABASE_ERROR = "There was a database error!"  # the doc's own error example
REFUSAL = "Invalid authentication token!"  # the answer to a missing or wrong token


def _error_message(status: int, message: str) -> SimResponse:
    return SimResponse(status, {"errorMessage": message})


def _is_millis(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# What a multi-recipient submission's callback gets (the doc is silent): see the docstring.
MULTI_RECIPIENT_REPORTS = ("none", "per_recipient")


class SmsAdvertFake(Fake):
    slug = "smsadvert"
    default_credentials = {"token": "smsadvert-token", "multi_recipient_reports": "none"}
    secret_credentials = frozenset({"token"})
    credential_aliases = {"api_token": "token", "auth_token": "token", "api_key": "token"}

    def check_credential(self, key: str, value: str) -> str:
        if key == "multi_recipient_reports" and value not in MULTI_RECIPIENT_REPORTS:
            raise ValueError(
                f"smsadvert multi_recipient_reports must be one of {MULTI_RECIPIENT_REPORTS}"
            )
        return value

    def register(self) -> None:
        self.route("POST", "/api/sms/", self._send)

    def fault_response(self, request: SimRequest, status: int, message: str) -> SimResponse:
        if status in (401, 403):
            return _error_message(status, REFUSAL)
        return _error_message(status, DATABASE_ERROR if status >= 500 else message)

    def _send(self, request: SimRequest) -> SimResponse:
        token = request.headers.get("Authorization", "").strip()
        if not token or not hmac.compare_digest(token.encode(), self.credentials["token"].encode()):
            return _error_message(401, REFUSAL)
        try:
            data = request.json()
        except ValueError:
            return _error_message(400, "The request body must be valid JSON!")
        if not isinstance(data, dict):
            return _error_message(400, "The request body must be a JSON object!")

        errors: dict[str, str] = {}
        phones = self._phones(data.get("phone"), errors)
        text = data.get("shortTextMessage")
        if not isinstance(text, str) or len(text) < MIN_TEXT:
            errors["shortTextMessage"] = f"Saisissez un minimum de caractères {MIN_TEXT}!"
        elif len(text) > MAX_TEXT:
            errors["shortTextMessage"] = f"Saisissez un maximum de caractères {MAX_TEXT}!"
        if "sendAsShort" in data and not isinstance(data["sendAsShort"], bool):
            errors["sendAsShort"] = "La valeur doit être true ou false!"
        if "failover" in data and data["failover"] != "short":
            errors["failover"] = 'La seule valeur acceptée est "short"!'
        for name in ("startDate", "endDate"):
            if name in data and not _is_millis(data[name]):
                errors[name] = "La date doit être une heure UNIX en millisecondes!"
        start, end = data.get("startDate"), data.get("endDate")
        if _is_millis(start) and _is_millis(end) and end <= start:
            errors["endDate"] = "La date de fin doit être postérieure à la date de début!"
        callback = data.get("callback")
        if "callback" in data and not is_http_url(callback):
            errors["callback"] = "Adresse de rappel (URL) invalide!"
        if errors:
            return SimResponse(400, {"errors": errors})

        msg_id = uuid.uuid4().hex[:24]
        for phone in phones:
            self.accepted(SentMessage(msg_id, phone, None))
        response = SimResponse(200, {"successMessage": SUCCESS_MESSAGE, "msgId": msg_id})
        reported = len(phones) == 1 or (
            self.credentials["multi_recipient_reports"] == "per_recipient"
        )
        if callback and reported:
            response.after = functools.partial(self._report_all, callback, msg_id, phones)
        return response

    @staticmethod
    def _phones(value: Any, errors: dict[str, str]) -> list[str]:
        """The distinct recipients in order; records an error in ``errors`` when invalid."""
        if not isinstance(value, str) or not value:
            errors["phone"] = "Numéro de téléphone invalide!"
            return []
        if value.endswith(","):
            errors["phone"] = "La virgule n'est pas acceptée à la fin de la liste!"
            return []
        numbers = value.split(",")
        if len(numbers) > MAX_RECIPIENTS:
            errors["phone"] = f"Jusqu'à {MAX_RECIPIENTS} numéros de téléphone!"
            return []
        if not all(E164_RE.fullmatch(number) for number in numbers):
            errors["phone"] = "Numéro de téléphone invalide!"
            return []
        return list(dict.fromkeys(numbers))

    def _report_all(self, callback: str, msg_id: str, phones: list[str]) -> None:
        """One timer that reports every recipient in turn, in the order written."""

        def report() -> None:
            for phone in phones:
                status = "failed" if phone.endswith(UNREACHABLE_SUFFIX) else "delivered"
                self.server.post_callback(
                    callback,
                    {"status": status, "msgId": msg_id},
                    provider=self.slug,
                    label=f"{msg_id} {status}",
                )

        self.server.schedule(self.server.dlr_delay, report, f"simulator-smsadvert-{msg_id}")
