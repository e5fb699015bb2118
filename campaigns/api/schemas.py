"""What the API takes and gives, as pydantic models: the OpenAPI schema is derived from them."""

from datetime import datetime
from typing import Annotated, Literal

from ninja import HeaderEx, P, PathEx, Schema
from pydantic import AfterValidator, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from campaigns.api.models import OneTimeCode
from campaigns.forms import MAX_TEXT_LENGTH
from campaigns.models import Campaign, Message, Reply

# Numbers one request may send to; more go in several requests.
MAX_RECIPIENTS = 10_000
# The largest id a database row can have (a signed 64-bit integer).
MAX_ID = 2**63 - 1

PathId = PathEx[int, P(ge=1, le=MAX_ID)]
IdempotencyKey = HeaderEx[
    str | None,
    P(
        alias="Idempotency-Key",
        max_length=255,
        description="Any unique string (e.g. a UUID): the same key with the same request within "
        "24 hours returns the first answer and does nothing new.",
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


Text = Annotated[str, AfterValidator(_storable)]
Number = Annotated[
    Text,
    Field(
        max_length=32,
        description="A mobile number in international form: + and the country code.",
        examples=["+33612345678"],
    ),
]


class Input(Schema):
    """Unknown fields are refused, so that a misspelt field is not silently ignored."""

    model_config = ConfigDict(extra="forbid")


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


class MessageIn(Input):
    to: Recipients = Field(
        description="One number, or a list of up to 10,000. Several numbers (or a `campaign` "
        "name) make a campaign; numbers given twice are sent to once."
    )
    text: Text = Field(
        min_length=1,
        max_length=MAX_TEXT_LENGTH,
        description="The SMS text. Any character outside GSM-7 makes it UCS-2 (70 per segment).",
    )
    sender: Text = Field(
        "",
        max_length=15,
        description="One of the account's approved sender names; empty: the provider's default.",
    )
    category: Text | None = Field(
        None, max_length=50, description="The tag of one of the account's categories."
    )
    campaign: Text | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Campaign name: the messages become a campaign under this name.",
    )
    send_at: datetime | None = Field(
        None,
        description="When to send; empty or past: now. Without an offset, the account's time zone.",
    )
    window_end: datetime | None = Field(
        None, description="Not after this time: a message not sent by then expires."
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
        return cls(
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


class MessageFilters(Input):
    status: MessageStatus | None = None
    since: datetime | None = Field(None, description="Only messages created at or after this time.")
    campaign_id: int | None = Field(None, ge=1, le=MAX_ID)
    cursor: Text | None = Field(None, max_length=40, description="`next_cursor` of a page.")
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
    since: datetime | None = Field(None, description="Only replies received at or after this.")
    from_number: Text | None = Field(None, max_length=32, description="Only from this number.")
    cursor: Text | None = Field(None, max_length=40)
    limit: int = Field(50, ge=1, le=200)


class OtpIn(Input):
    to: Number
    text: Text = Field(
        "Your code is {code}",
        min_length=1,
        max_length=MAX_TEXT_LENGTH,
        description="The SMS, with {code} where the code goes. Through Ogangi, Ogangi writes "
        "the code into its own SMS and the text is sent without {code}.",
    )
    length: int = Field(6, ge=4, le=10, description="Digits in the code.")
    sender: Text = Field("", max_length=15, description="An approved sender name.")
    category: Text | None = Field(None, max_length=50, description="A category's tag.")


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
