"""The messaging domain: accounts and their people, senders, campaigns, messages and replies."""

import re
import secrets
import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

from providers.models import ProviderAccount
from smshub.crypto import EncryptedTextField

from . import statuses
from .phone import PhoneNumberField, country_choices


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            "“%(value)s” is not a time zone name such as Europe/Paris.", params={"value": value}
        )


class Account(models.Model):
    """A tenant: an organisation whose staff send SMS. Nothing of one account is seen by another."""

    name = models.CharField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    country = models.CharField(
        gettext_lazy("default country"),
        max_length=2,
        blank=True,
        choices=country_choices,
        help_text=gettext_lazy(
            "Numbers typed without + and a country code (06 12 34 56 78) are read as "
            "numbers of this country, wherever they come in. Empty: every number needs its + "
            "and country code."
        ),
    )
    flood_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=gettext_lazy("SMS segments per minute for the whole account. Empty: no limit."),
    )
    flood_limit_per_hour = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=gettext_lazy("SMS segments per hour for the whole account. Empty: no limit."),
    )
    default_route = models.ManyToManyField(
        ProviderAccount, through="RouteEntry", blank=True, related_name="routed_accounts"
    )
    quiet_hours_start = models.TimeField(
        null=True,
        blank=True,
        help_text=gettext_lazy("No sends from this local time (e.g. 21:00)…"),
    )
    quiet_hours_end = models.TimeField(
        null=True,
        blank=True,
        help_text=gettext_lazy("…until this local time (e.g. 08:00): messages wait."),
    )
    reply_window_hours = models.PositiveIntegerField(
        default=72,
        help_text=gettext_lazy(
            "A reply without the provider's reference is linked to the latest message sent "
            "to that number within this many hours."
        ),
    )
    price_per_segment = models.DecimalField(
        gettext_lazy("price per SMS segment"),
        max_digits=8,
        decimal_places=4,
        null=True,
        blank=True,
        help_text=gettext_lazy(
            "What one SMS segment costs this account, for the estimate shown before "
            "sending. Empty: no estimate (segments only)."
        ),
    )
    price_currency = models.CharField(
        gettext_lazy("currency"),
        max_length=3,
        blank=True,
        default="EUR",
        help_text=gettext_lazy("e.g. EUR, RON, USD."),
    )
    forward_url = models.URLField(
        gettext_lazy("forwarding URL"),
        max_length=500,
        blank=True,
        help_text=gettext_lazy(
            "Every reply and every final status is POSTed here as JSON, signed. Empty: off."
        ),
    )
    forward_secret = EncryptedTextField(
        default=new_secret,
        editable=False,
        help_text=gettext_lazy(
            "Key of the HMAC-SHA256 signature in the X-SMSHub-Signature header."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def region(self) -> str | None:
        """The country national numbers are read in (`phone.normalize`), if any."""
        return self.country or None

    def in_quiet_hours(self, now: datetime) -> datetime | None:
        """When quiet hours are on at `now`, the moment they end (else None)."""
        if self.quiet_hours_start is None or self.quiet_hours_end is None:
            return None
        local = now.astimezone(zoneinfo.ZoneInfo(self.timezone))
        start, end, clock = self.quiet_hours_start, self.quiet_hours_end, local.time()
        quiet = start <= clock < end if start < end else clock >= start or clock < end
        if not quiet:
            return None
        ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if ends <= local:
            ends += timedelta(days=1)
        return ends

    def routes(self) -> dict[int | None, list[ProviderAccount]]:
        """Every route of the account, enabled provider accounts only, first choice first: the
        default route under None, each category's own route under its id (one query)."""
        routes: dict[int | None, list[ProviderAccount]] = {None: []}
        for entry in self.route_entries.select_related("provider_account"):
            if entry.provider_account.enabled:
                routes.setdefault(entry.category_id, []).append(entry.provider_account)
        return routes

    def route(self, category_id: int | None = None) -> list[ProviderAccount]:
        """The enabled provider accounts to send a message of this category through: the
        category's own route when it has one, else the account's default route."""
        routes = self.routes()
        return routes.get(category_id) or routes[None]


class RouteEntry(models.Model):
    """One step of a route: provider accounts are tried in `position` order. Without a category
    it belongs to the account's default route; with one, to that category's own route."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="route_entries")
    category = models.ForeignKey(
        "Category",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="route_entries",
        help_text=gettext_lazy(
            "Empty: the account's default route. Set: the route of this category's "
            "messages (the default route serves a category that has none)."
        ),
    )
    provider_account = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name_plural = gettext_lazy("route entries")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "provider_account"],
                condition=Q(category__isnull=True),
                name="route_entry_unique_provider",
            ),
            models.UniqueConstraint(
                fields=["account", "category", "provider_account"],
                condition=Q(category__isnull=False),
                name="route_entry_unique_category_provider",
            ),
        ]

    def __str__(self) -> str:
        route = f" ({self.category})" if self.category_id else ""
        return f"{self.position}. {self.provider_account}{route}"

    def clean(self) -> None:
        if self.category_id and self.account_id and self.category.account_id != self.account_id:
            raise ValidationError({"category": "This category belongs to another account."})


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", gettext_lazy("Account admin")
        OPERATOR = "operator", gettext_lazy("Operator")
        VIEWER = "viewer", gettext_lazy("Viewer")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.OPERATOR)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "account"], name="membership_unique_user_account"
            )
        ]

    def __str__(self) -> str:
        return gettext("%(user)s in %(account)s (%(role)s)") % {
            "user": self.user,
            "account": self.account,
            "role": self.get_role_display(),
        }

    @property
    def can_send(self) -> bool:
        return self.role in (self.Role.ADMIN, self.Role.OPERATOR)


SENDER_NAME_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9]{3,11}$|^\+?[0-9]{3,15}$")


def validate_sender_name(value: str) -> None:
    if not SENDER_NAME_RE.match(value):
        raise ValidationError(
            "A sender name is 3 to 11 letters and digits (no spaces or accents), "
            "or a phone number of up to 15 digits."
        )


class SenderName(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("sender name status", "Pending approval")
        APPROVED = "approved", pgettext_lazy("sender name status", "Approved")
        REJECTED = "rejected", pgettext_lazy("sender name status", "Rejected")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sender_names")
    name = models.CharField(max_length=15, validators=[validate_sender_name])
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"], name="sender_name_unique_per_account"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    """What a message is about (appointments, marketing, ...): statistics, routes, provider tags."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="categories")
    name = models.CharField(max_length=100)
    tag = models.SlugField(
        max_length=50, help_text=gettext_lazy("Short tag passed to providers that take one.")
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = gettext_lazy("categories")
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="category_unique_name"),
            models.UniqueConstraint(fields=["account", "tag"], name="category_unique_tag"),
        ]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    """A batch of messages sent together, with one text, for statistics and control."""

    class Status(models.TextChoices):
        DRAFT = "draft", pgettext_lazy("campaign status", "Draft")
        # Its messages are being written: nothing is sent and nothing can be done to it yet.
        IMPORTING = "importing", pgettext_lazy("campaign status", "Importing")
        SCHEDULED = "scheduled", pgettext_lazy("campaign status", "Scheduled")
        RUNNING = "running", pgettext_lazy("campaign status", "Running")
        PAUSED = "paused", pgettext_lazy("campaign status", "Paused")
        COMPLETED = "completed", pgettext_lazy("campaign status", "Completed")
        CANCELED = "canceled", pgettext_lazy("campaign status", "Canceled")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    category = models.ForeignKey(Category, on_delete=models.SET_NULL, null=True, blank=True)
    sender = models.CharField(max_length=15, blank=True)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    archived_counts = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text=gettext_lazy(
            "Messages purged by retention, by status: campaign counts add them."
        ),
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "-id"], name="campaign_account_idx")]

    def __str__(self) -> str:
        return self.name


class Message(models.Model):
    """One SMS to one number, and everything that happened to it.

    Its status moves as `campaigns.statuses` allows, only through
    `campaigns.services.lifecycle` (every change is a `MessageEvent`: the timeline). A message
    is sent only from `queued`, by the worker that claimed it.
    """

    Status = statuses.Status

    class Encoding(models.TextChoices):
        GSM7 = "GSM-7", "GSM-7"
        UCS2 = "UCS-2", "UCS-2"

    # No index of their own on account, campaign and provider account: Meta's indexes lead with
    # each (message_account_idx, message_campaign_status_idx, message_provider_claimed_idx), and
    # every status move rewrites every index of the row.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="messages",
        db_index=False,
    )
    category = models.ForeignKey(Category, on_delete=models.SET_NULL, null=True, blank=True)
    recipient = PhoneNumberField()
    sender = models.CharField(max_length=15, blank=True)
    text = models.TextField()
    # The text to send when it holds a secret (a one-time code): stored encrypted, read only by
    # the dispatcher, cleared once the message is done with. `text` then shows it masked.
    secret_text = EncryptedTextField(null=True, blank=True, editable=False)
    encoding = models.CharField(max_length=5, choices=Encoding.choices, default=Encoding.GSM7)
    segments = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)

    provider_account = models.ForeignKey(
        ProviderAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="messages",
        db_index=False,
    )
    provider_message_id = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Failover: which provider account of the route this message is on, and tries there.
    route_step = models.PositiveSmallIntegerField(default=0)
    step_attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)

    scheduled_at = models.DateTimeField(null=True, blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    error_code = models.CharField(max_length=50, blank=True)
    error_reason = models.TextField(blank=True)
    cost = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(recipient__startswith="+"), name="message_recipient_e164"
            ),
            models.CheckConstraint(condition=Q(segments__gte=1), name="message_segments_positive"),
            # A campaign never sends twice to the same number.
            models.UniqueConstraint(
                fields=["campaign", "recipient"],
                condition=Q(campaign__isnull=False),
                name="message_unique_campaign_recipient",
            ),
            models.CheckConstraint(
                condition=Q(window_end__isnull=True)
                | Q(window_start__isnull=True)
                | Q(window_end__gt=models.F("window_start")),
                name="message_window_ordered",
            ),
        ]
        indexes = [
            # The dispatcher's claim: due queued messages, oldest first.
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status="queued"),
                name="message_due_idx",
            ),
            models.Index(
                fields=["scheduled_at"],
                condition=Q(status="scheduled"),
                name="message_scheduled_idx",
            ),
            # Delivery reports find their message by the provider's id, which is not unique:
            # providers reuse ids (Primotexto's snapshotId has 6 digits).
            models.Index(
                fields=["provider_account", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="message_provider_id_idx",
            ),
            models.Index(
                fields=["claimed_at"], condition=Q(status="sending"), name="message_sending_idx"
            ),
            # The staff UI: an account's messages, newest first, optionally by status.
            models.Index(fields=["account", "-id"], name="message_account_idx"),
            models.Index(fields=["account", "status", "-id"], name="message_account_status_idx"),
            # Threading replies: the latest message an account sent to a number.
            models.Index(fields=["account", "recipient", "-id"], name="message_recipient_idx"),
            # Delivery reports matched by number (providers whose send gives no id): the oldest
            # message to a number awaiting its report (`delivery.by_number`, `BY_NUMBER`).
            models.Index(
                fields=["provider_account", "recipient", "claimed_at"],
                # `OR`, not `IN`: SQLite proves a partial index from `=` terms with parameters.
                condition=Q(provider_message_id="") & (Q(status="sent") | Q(status="unknown")),
                name="message_awaiting_number_idx",
            ),
            models.Index(fields=["campaign", "status"], name="message_campaign_status_idx"),
            # Flood limits: what an account, and a provider account, sent in the last minutes.
            models.Index(fields=["account", "claimed_at"], name="message_account_claimed_idx"),
            models.Index(
                fields=["provider_account", "claimed_at"], name="message_provider_claimed_idx"
            ),
            # Admin date navigation and, later, retention by age.
            models.Index(fields=["created_at"], name="message_created_idx"),
            # The staff UI by date: the dashboard's last days, the messages list's date filters.
            models.Index(
                fields=["account", "created_at", "id"], name="message_account_created_idx"
            ),
        ]

    def __str__(self) -> str:
        return gettext("SMS %(id)s to %(number)s") % {"id": self.pk, "number": self.recipient}

    @property
    def is_final(self) -> bool:
        return self.status in statuses.FINAL

    @property
    def is_on_its_way(self) -> bool:
        return self.status in statuses.ON_ITS_WAY


class MessageEvent(models.Model):
    """One step of a message's timeline: a status change or something worth knowing."""

    class Source(models.TextChoices):
        STAFF = "staff", pgettext_lazy("event source", "Staff")
        API = "api", pgettext_lazy("event source", "API")
        DISPATCH = "dispatch", pgettext_lazy("event source", "Dispatch")
        PROVIDER = "provider", pgettext_lazy("event source", "Provider")
        WEBHOOK = "webhook", pgettext_lazy("event source", "Webhook")
        SYSTEM = "system", pgettext_lazy("event source", "System")

    # No index of its own: event_message_idx leads with it, and a message gets an event at
    # every status move.
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    at = models.DateTimeField(default=timezone.now)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    detail = models.TextField(blank=True)
    payload = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["message", "at"], name="event_message_idx")]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status or '∅'}"


# The inbox conversation of replies whose number the provider did not give (in its URL).
UNKNOWN_NUMBER = "unknown"


UNREAD_SHOWN_AT_MOST = 99  # more unread conversations than this show as "99+"


class ReplyQuerySet(models.QuerySet):
    def unread(self) -> "ReplyQuerySet":
        return self.filter(read_at__isnull=True)

    def unread_conversations(self) -> int:
        """How many conversations (numbers) have a reply nobody opened, counted up to
        `UNREAD_SHOWN_AT_MOST + 1` (the partial index `reply_unread_idx` keeps it cheap).
        Called from templates as `account.replies.unread_conversations`."""
        numbers = self.unread().order_by().values("from_number").distinct()
        return len(numbers[: UNREAD_SHOWN_AT_MOST + 1])


class Reply(models.Model):
    """An SMS a recipient sent back (MO), linked to the message it answers when known.

    Unread (`read_at` empty) until someone on the account opens its conversation: staff share
    an account's inbox, so one person reading a reply reads it for all."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="replies")
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    provider_account = models.ForeignKey(
        ProviderAccount, on_delete=models.SET_NULL, null=True, blank=True
    )
    provider_message_id = models.CharField(max_length=100, blank=True)
    # Empty when the provider named neither the number nor the message (an unknown number).
    from_number = PhoneNumberField(blank=True)
    to_number = models.CharField(max_length=32, blank=True)
    text = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    raw = models.JSONField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)  # empty: nobody opened it yet

    objects = ReplyQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = gettext_lazy("replies")
        constraints = [
            models.UniqueConstraint(
                fields=["provider_account", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="reply_unique_provider_id",
            )
        ]
        indexes = [
            models.Index(fields=["account", "-received_at"], name="reply_account_idx"),
            models.Index(
                fields=["account", "from_number", "-received_at"], name="reply_number_idx"
            ),
            models.Index(fields=["received_at"], name="reply_received_idx"),  # retention
            models.Index(fields=["account", "-id"], name="reply_account_id_idx"),  # keyset pages
            # Unread counts (nav badge, inbox heading): only the few unread rows are indexed.
            models.Index(
                fields=["account", "from_number"],
                condition=Q(read_at__isnull=True),
                name="reply_unread_idx",
            ),
        ]

    def __str__(self) -> str:
        if not self.from_number:
            return gettext("Reply from an unknown number")
        return gettext("Reply from %(number)s") % {"number": self.from_number}

    @property
    def conversation(self) -> str:
        """The inbox conversation it belongs to: its number, or `UNKNOWN_NUMBER`."""
        return self.from_number or UNKNOWN_NUMBER


class OptOut(models.Model):
    """A number that asked not to be sent to again by this account."""

    class Source(models.TextChoices):
        REPLY = "reply", pgettext_lazy("opt-out source", "Reply keyword")
        STAFF = "staff", pgettext_lazy("opt-out source", "Staff")
        API = "api", pgettext_lazy("opt-out source", "API")
        IMPORT = "import", pgettext_lazy("opt-out source", "Import")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="opt_outs")
    number = PhoneNumberField()
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.STAFF)
    keyword = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = gettext_lazy("opt-out")
        constraints = [
            models.UniqueConstraint(fields=["account", "number"], name="opt_out_unique_number")
        ]
        indexes = [models.Index(fields=["account", "-id"], name="opt_out_account_id_idx")]

    def __str__(self) -> str:
        return self.number


class WebhookRequest(models.Model):
    """A request a provider made to a webhook, stored as received before anything is parsed.

    Parsing or applying may fail (a bug, an unknown format): the request stays here with its error
    and can be replayed from the admin once the cause is fixed. Nothing a provider sent is lost.
    """

    class Kind(models.TextChoices):
        DLR = "dlr", gettext_lazy("Delivery report")
        INBOUND = "inbound", pgettext_lazy("webhook kind", "Reply")
        QUEUE = "queue", gettext_lazy("Queue delivery report")
        POLL = "poll", gettext_lazy("Polled replies")

    class Status(models.TextChoices):
        RECEIVED = "received", pgettext_lazy("webhook status", "Received")
        APPLIED = "applied", pgettext_lazy("webhook status", "Applied")
        UNMATCHED = "unmatched", gettext_lazy("Waiting for its message")
        FAILED = "failed", pgettext_lazy("webhook status", "Failed")

    provider_account = models.ForeignKey(
        ProviderAccount, on_delete=models.CASCADE, related_name="webhook_requests"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    received_at = models.DateTimeField(default=timezone.now)
    method = models.CharField(max_length=10, default="POST")
    content_type = models.CharField(max_length=200, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    error = models.TextField(blank=True)
    events = models.PositiveIntegerField(
        default=0, help_text=gettext_lazy("Reports or replies it carried.")
    )
    applied = models.PositiveIntegerField(
        default=0, help_text=gettext_lazy("How many changed something.")
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    replays = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "-id"], name="webhook_status_idx"),
            models.Index(fields=["provider_account", "-id"], name="webhook_provider_idx"),
            models.Index(fields=["received_at"], name="webhook_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} from {self.provider_account}"


class PendingDeliveryReport(models.Model):
    """A delivery report whose message is not known yet (it can arrive before the send result is
    recorded). Applied as soon as a message gets that provider id; visible in admin meanwhile.
    One matched by number that found no message awaiting a report stays unmatched: shown in
    admin and on the dashboard until retention purges it."""

    provider_account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE)
    provider_message_id = models.CharField(max_length=100, blank=True)
    # The number the report names (a provider whose reports are matched by number).
    recipient = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=12)
    occurred_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    error_reason = models.TextField(blank=True)
    raw = models.JSONField(null=True, blank=True)
    webhook_request = models.ForeignKey(
        WebhookRequest, on_delete=models.SET_NULL, null=True, blank=True
    )
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name = gettext_lazy("unmatched delivery report")
        indexes = [
            models.Index(
                fields=["provider_account", "provider_message_id"], name="pending_dlr_lookup_idx"
            ),
            models.Index(fields=["received_at"], name="pending_dlr_received_idx"),  # retention
        ]

    def __str__(self) -> str:
        return f"{self.status} for {self.provider_message_id or self.recipient or 'no message'}"


class Forward(models.Model):
    """A reply or a final status to POST to the account's forwarding URL, until it is taken."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("forward status", "Pending")
        DELIVERED = "delivered", pgettext_lazy("forward status", "Delivered")
        FAILED = "failed", gettext_lazy("Gave up")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="forwards")
    event = models.CharField(max_length=20)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="forward_due_idx"
            ),
            models.Index(fields=["created_at"], name="forward_created_idx"),  # retention
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk} to {self.account}"


class ForwardAttempt(models.Model):
    forward = models.ForeignKey(Forward, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    url = models.URLField(max_length=500)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.response_status or self.error[:40]} at {self.at:%Y-%m-%d %H:%M:%S}"


class UserPreference(models.Model):
    """A staff user's own choices. `language`: a code of settings.LANGUAGES, or "" for the
    browser's (Accept-Language); applied by campaigns.language.UserLanguageMiddleware."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    language = models.CharField(max_length=10, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.user} ({self.language or 'browser'})"
