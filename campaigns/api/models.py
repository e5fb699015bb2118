"""What the JSON API keeps: API keys, answers kept for idempotent retries, one-time codes."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models import Account, Message
from campaigns.phone import PhoneNumberField


class ApiKey(models.Model):
    """A key another application sends as `Authorization: Bearer <key>` to act for one account.

    Only the SHA-256 of the key is stored: the key itself is shown once, when it is created.
    `prefix` (its first characters) tells keys apart in lists and logs.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text=_("What uses this key, e.g. “Booking site”."))
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("Updated at most once a minute.")
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("API key")
        indexes = [models.Index(fields=["account", "-id"], name="api_key_account_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyRecord(models.Model):
    """The answer given to a request sent with an `Idempotency-Key` header, replayed when the
    same key comes again with the same request within 24 hours. One per (API key, key): the
    unique constraint makes a concurrent duplicate wait for the first and then replay it."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text=_("SHA-256 of method, path and body."))
    status_code = models.PositiveSmallIntegerField(default=0)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_unique_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code})"


class OneTimeCode(models.Model):
    """A code sent to a number, to be typed back. Only an HMAC of the code is stored."""

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS from the hub")
        OGANGI_PIN = "ogangi_pin", _("Ogangi PIN")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recipient = PhoneNumberField()
    channel = models.CharField(max_length=12, choices=Channel.choices)
    salt = models.CharField(max_length=32)
    code_hash = models.CharField(max_length=64)
    length = models.PositiveSmallIntegerField()
    template = models.TextField(help_text=_("The text with {code} where the code went."))
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField()
    verified_at = models.DateTimeField(null=True, blank=True)
    redacted = models.BooleanField(
        default=False, help_text=_("Whether the code was masked in its message's text.")
    )

    class Meta:
        ordering = ["-id"]
        verbose_name = _("one-time code")
        indexes = [
            models.Index(fields=["account", "recipient", "-id"], name="otp_number_idx"),
            models.Index(fields=["expires_at"], condition=Q(redacted=False), name="otp_redact_idx"),
        ]

    def __str__(self) -> str:
        return f"Code to {self.recipient}"
