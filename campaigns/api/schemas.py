"""What the API takes and gives, as pydantic models: the OpenAPI schema is derived from them.

Every rule on the shape of an input is a constraint of its field (length, pattern, range), so
that the schema shows exactly what the server applies. What a schema cannot say is checked
afterwards (`validation`): whether a number is valid for its country, a sender approved, a
category the account's, a time not past or too far ahead.
"""

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from ninja import HeaderEx, P, PathEx, Schema
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    Tag,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError

from campaigns.api.models import OneTimeCode
from campaigns.forms import MAX_TEXT_LENGTH
from campaigns.models import Campaign, Message, Reply

# Numbers one request may send to; more go in several requests.
MAX_RECIPIENTS = 10_000
# Lists or segments in one send.
MAX_AUDIENCES = 20
# The largest id a database row can have (a signed 64-bit integer).
MAX_ID = 2**63 - 1

# Patterns, written so that JSON Schema (ECMA 262) and pydantic read them alike.
# Not empty, not only white space (what str.isspace() calls space), no NUL.
SPACE = r"\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"^[^\x00]*[^\x00{SPACE}][^\x00]*$"
NO_NUL = r"^[^\x00]*$"
OTP_TEXT = r"^[^\x00]*\{code\}[^\x00]*$"
# + (or 00) and the country code, then digits and the usual separators.
PHONE = r"^\+?[0-9][0-9 ().-]*$"
TAG = r"^[-a-zA-Z0-9_]+$"
# A cursor is the id of a row; 18 digits are far more than any table holds.
CURSOR = r"^[1-9][0-9]{0,17}$"
# Printable ASCII, not only spaces.
IDEMPOTENCY_KEY = r"^[ -~]*[!-~][ -~]*$"
# Why an input does not match its pattern, for the error's `fields`.
PATTERN_ERRORS = {
    NOT_BLANK: "Write something: not only spaces (and no NUL character).",
    NO_NUL: "The NUL character (\\u0000) is not allowed.",
    OTP_TEXT: "Put {code} where the code goes (and no NUL character).",
    PHONE: "Give a phone number: digits, spaces, dots, dashes or brackets, with + (or 00) and "
    "the country code (+33612345678), or a national number of the account's country.",
    TAG: "A category tag is letters, digits, - and _.",
    CURSOR: "Not a cursor this API gave: pass `next_cursor` as is.",
    IDEMPOTENCY_KEY: "Use 1 to 255 printable ASCII characters, e.g. a UUID.",
}
# Inputs whose every refusal is best said in one sentence.
FIELD_ERRORS = {"Idempotency-Key": PATTERN_ERRORS[IDEMPOTENCY_KEY]}

PathId = PathEx[int, P(ge=1, le=MAX_ID)]
IdempotencyKey = HeaderEx[
    str,
    P(
        alias="Idempotency-Key",
        max_length=255,
        pattern=IDEMPOTENCY_KEY,
        description="Any unique string of printable ASCII (e.g. a UUID): the same key with the "
        "same request within 24 hours returns the first answer and does nothing new.",
    ),
]
MessageStatus = Literal[tuple(Message.Status.values)]  # type: ignore[valid-type]
CampaignStatus = Literal[tuple(Campaign.Status.values)]  # type: ignore[valid-type]


def _storable(value: str) -> str:
    """Text a database can keep: no NUL character, no lone UTF-16 surrogate."""
    if "\x00" in value:
        raise PydanticCustomError("nul", "The NUL character (\\u0000) is not allowed.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("surrogate", "Not valid Unicode text (lone surrogate).") from None
    return value


def text_type(pattern: str = NO_NUL, **constraints: int) -> object:
    """A string type: its constraints first (pydantic shows them in the schema only there),
    then the check that it is storable."""
    constraint = StringConstraints(pattern=pattern, **constraints)
    return Annotated[str, constraint, AfterValidator(_storable)]


Number = Annotated[
    text_type(PHONE, max_length=32),
    Field(
        description="A mobile number in international form, + (or 00) and the country code, or "
        "a national number of the account's default country (`06 12 34 56 78` for France).",
        examples=["+33612345678"],
    ),
]
MessageText = text_type(NOT_BLANK, min_length=1, max_length=MAX_TEXT_LENGTH)
SenderName = text_type(max_length=15)
CategoryTag = text_type(TAG, max_length=50)
CampaignName = text_type(NOT_BLANK, min_length=1, max_length=200)

# RFC 3339 (`T` and `Z` in either case), seconds optional, the offset too; ASCII digits only.
_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?([Zz]|[+-]\d\d:\d\d)?",
    re.ASCII,
)
TIME_FORMAT = (
    "Give a time as 2030-05-01T09:00:00+02:00 (RFC 3339), or without the offset for the "
    "account's time zone."
)


def _time(value: object) -> datetime:
    """A time as RFC 3339 writes it, or without its offset (naive); nothing else: no date
    alone, no count of seconds since 1970 (pydantic alone takes both)."""
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PydanticCustomError("time", TIME_FORMAT)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        tz = None
        if offset in ("Z", "z"):
            tz = UTC
        elif offset:
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if minutes > 59:
                raise ValueError(offset)
            sign = -1 if offset[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tz
        )
    except ValueError:
        raise PydanticCustomError("time", f"Not a valid date and time. {TIME_FORMAT}") from None


def _integer(value: object) -> object:
    """A JSON integer (5, or 5.0), not a string or a boolean (pydantic alone takes both)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("integer", "Give a whole number, e.g. 6.")
    return value


Integer = Annotated[int, BeforeValidator(_integer)]
Time = Annotated[
    datetime,
    BeforeValidator(_time),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339; also without its offset (in the account's time zone) and "
            "without seconds.",
            "examples": ["2030-05-01T09:00:00+02:00"],
        }
    ),
]


class Input(Schema):
    """Unknown fields are refused, so that a misspelt field is not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _run_root_validator(cls, values: Any, handler: ModelWrapValidatorHandler, info):
        # Validated as given, once. An input comes from JSON, a query string or headers, never
        # from an object to read attributes of: ninja's own version of this validator wraps it
        # for that (`DjangoGetter`), and with `extra="forbid"` validates it twice (a single
        # send's input: 20 µs so, 6 µs once).
        return handler(values)


def _one_or_many(value: object) -> str | None:
    if isinstance(value, str):
        return "one"
    if isinstance(value, list):
        return "many"
    return None


# The tags of a "one or many" union: error locations leave them out (`to.many.2` is `to.2`).
UNION_TAGS = frozenset({"one", "many"})
Recipients = Annotated[
    Annotated[Number, Tag("one")]
    | Annotated[list[Number], Field(min_length=1, max_length=MAX_RECIPIENTS), Tag("many")],
    Discriminator(
        _one_or_many,
        custom_error_type="one_or_many",
        custom_error_message="Give one number (a string) or a list of numbers.",
    ),
]


Ids = Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(max_length=MAX_AUDIENCES)]
MergeValue = (
    Annotated[str, StringConstraints(max_length=500), AfterValidator(_storable)]
    | Annotated[int, Field(ge=-(10**15), le=10**15)]
    | Annotated[float, Field(allow_inf_nan=False)]
)


class MessageIn(Input):
    to: Recipients | None = Field(
        None,
        description="One number, or a list of up to 10,000. Several numbers (or a `campaign` "
        "name, or `lists` or `segments`) make a campaign; a number given twice, or met again "
        "in a list or segment, is sent to once.",
    )
    lists: Ids = Field(
        [], description="Ids of the account's contact lists: their contacts are sent to."
    )
    segments: Ids = Field(
        [], description="Ids of the account's segments: their contacts (as of now) are sent to."
    )
    text: MessageText | None = Field(
        None,
        description="The SMS text (or `template`). Any character outside GSM-7 makes it UCS-2 "
        "(70 per segment). Merge fields (`{first_name}`, `{city|our shop}`) are filled in for "
        "each recipient from `values`, then from its contact.",
    )
    template: text_type(min_length=1, max_length=100) | None = Field(
        None, description="The name of one of the account's templates: its text is sent."
    )
    values: Annotated[dict[str, MergeValue], Field(max_length=100)] = Field(
        {},
        description='Merge field values for every recipient (`{"first_name": "Ann"}`), '
        "before those of its contact.",
    )
    sender: SenderName = Field(
        "",
        description="One of the account's approved sender names; empty: the provider's default.",
    )
    category: CategoryTag | None = Field(
        None, description="The tag of one of the account's categories."
    )
    campaign: CampaignName | None = Field(
        None, description="Campaign name: the messages become a campaign under this name."
    )
    send_at: Time | None = Field(
        None,
        description="When to send, at most a year ahead; empty or past: now. Without an "
        "offset, in the account's time zone.",
    )
    window_end: Time | None = Field(
        None,
        description="Not after this time (ahead, after `send_at`, at most a year ahead): a "
        "message not sent by then expires.",
    )


class MessageOut(Schema):
    id: int
    to: str
    sender: str
    text: str
    status: MessageStatus
    category: str | None = Field(description="The category's tag.")
    campaign_id: int | None
    encoding: Literal["GSM-7", "UCS-2"]
    segments: int
    scheduled_at: datetime | None
    window_end: datetime | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    error_code: str
    error_reason: str

    @classmethod
    def of(cls, message: Message) -> "MessageOut":
        # Built without validation: every value comes from a saved message, as the schema says
        # (validating it cost a tenth of an API send's CPU).
        return cls.model_construct(
            id=message.pk,
            to=message.recipient,
            sender=message.sender,
            text=message.text,
            status=message.status,
            category=message.category.tag if message.category_id else None,
            campaign_id=message.campaign_id,
            encoding=message.encoding,
            segments=message.segments,
            scheduled_at=message.scheduled_at,
            window_end=message.window_end,
            created_at=message.created_at,
            sent_at=message.sent_at,
            delivered_at=message.delivered_at,
            error_code=message.error_code,
            error_reason=message.error_reason,
        )


class CampaignOut(Schema):
    id: int
    name: str
    status: CampaignStatus
    text: str
    sender: str
    category: str | None = Field(description="The category's tag.")
    created_at: datetime
    counts: dict[str, int] = Field(
        description="Its messages by status (every status, 0 when none), and `total`."
    )


class SendOut(Schema):
    message: MessageOut | None = Field(
        description="The message, when one number was given without a campaign name."
    )
    campaign: CampaignOut | None = Field(
        description="The campaign, when several numbers or a campaign name were given."
    )
    queued: int = Field(description="Messages created (queued, or scheduled).")
    duplicates: int = Field(description="Numbers given more than once, sent to once.")
    opted_out: int = Field(description="Numbers that opted out of the account: not sent to.")


class MessagePage(Schema):
    results: list[MessageOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


# Query parameters are left out rather than null: their type has no None (a union would also
# name its branches in error locations), and their default None is never validated.
SINCE = "Only those at or after this time (before 2000 or after 2999: as if then)."


class MessageFilters(Input):
    status: MessageStatus = None
    since: Time = Field(None, description=f"{SINCE} Created.")
    campaign_id: int = Field(None, ge=1, le=MAX_ID)
    cursor: str = Field(None, pattern=CURSOR, description="`next_cursor` of a page.")
    limit: int = Field(50, ge=1, le=200)


class ReplyOut(Schema):
    id: int
    from_number: str
    to_number: str
    text: str
    received_at: datetime
    message_id: int | None = Field(description="The message it answers, when known.")

    @classmethod
    def of(cls, reply: Reply) -> "ReplyOut":
        return cls(
            id=reply.pk,
            from_number=reply.from_number,
            to_number=reply.to_number,
            text=reply.text,
            received_at=reply.received_at,
            message_id=reply.message_id,
        )


class ReplyPage(Schema):
    results: list[ReplyOut]
    next_cursor: str | None


class ReplyFilters(Input):
    since: Time = Field(None, description=f"{SINCE} Received.")
    from_number: Number = Field(None, description="Only from this number.")
    cursor: str = Field(None, pattern=CURSOR, description="`next_cursor` of a page.")
    limit: int = Field(50, ge=1, le=200)


class OtpIn(Input):
    to: Number
    text: text_type(OTP_TEXT, max_length=MAX_TEXT_LENGTH) = Field(
        "Your code is {code}",
        description="The SMS, with {code} where the code goes. Through Ogangi, Ogangi writes "
        "the code into its own SMS and the text is sent without {code}.",
    )
    length: Integer = Field(6, ge=4, le=10, description="Digits in the code.")
    sender: SenderName = Field("", description="An approved sender name.")
    category: CategoryTag | None = Field(None, description="A category's tag.")


class OtpOut(Schema):
    id: int
    to: str
    channel: Literal[tuple(OneTimeCode.Channel.values)]  # type: ignore[valid-type]
    expires_at: datetime
    max_attempts: int
    message_id: int | None = Field(description="The SMS that carries the code.")


class OtpVerifyIn(Input):
    to: Number
    code: str = Field(pattern=r"^[0-9]{4,10}$", description="The digits the person typed.")


class OtpVerifyOut(Schema):
    verified: bool
    to: str
    verified_at: datetime
