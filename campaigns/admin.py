"""The messaging domain in the admin. Messages, their events and replies are read-only here:
what happens to a message goes through the app, which records it in the timeline."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from providers.errors import meaning
from providers.models import mask
from smshub.admin_lists import DateSafeMixin

from .audit import recorder as audit
from .audit.admin import trail_link
from .models import (
    Account,
    Campaign,
    Category,
    Forward,
    ForwardAttempt,
    Membership,
    Message,
    MessageEvent,
    OptOut,
    PendingDeliveryReport,
    Reply,
    RouteEntry,
    SenderName,
    UserPreference,
    WebhookRequest,
    new_secret,
)
from .phone import normalize
from .services import campaign_control, webhook_log
from .services.dispatch import resend


def translate_labels(model: type[Model], name=None, plural=None, /, **fields) -> None:
    """Give the names Django derives (a field's from its attribute, "created_at": "created at";
    a model's from its class) translatable text, in the admin and in the model's forms.

    Written in the model, even the same English text would be a migration (a derived name is
    not part of the migration state): they are set here, once, when the admin loads. The
    English text is the derived one."""
    options = model._meta
    if name is not None:
        options.verbose_name = name
    if plural is not None:
        options.verbose_name_plural = plural
    for field, label in fields.items():
        options.get_field(field).verbose_name = label


translate_labels(
    Account,
    _("account"),
    _("accounts"),
    name=_("name"),
    timezone=_("timezone"),
    flood_limit_per_minute=_("flood limit per minute"),
    flood_limit_per_hour=_("flood limit per hour"),
    quiet_hours_start=_("quiet hours start"),
    quiet_hours_end=_("quiet hours end"),
    reply_window_hours=_("reply window hours"),
    forward_secret=_("forward secret"),
    created_at=_("created at"),
    default_route=_("default route"),
)
translate_labels(
    RouteEntry,
    _("route entry"),
    account=_("account"),
    category=_("category"),
    provider_account=_("provider account"),
    position=_("position"),
)
translate_labels(
    Membership,
    _("membership"),
    _("memberships"),
    user=_("user"),
    account=_("account"),
    role=_("role"),
)
translate_labels(
    SenderName,
    _("sender name"),
    _("sender names"),
    account=_("account"),
    name=_("name"),
    status=_("status"),
    created_at=_("created at"),
)
translate_labels(Category, _("category"), account=_("account"), name=_("name"), tag=_("tag"))
translate_labels(
    Campaign,
    _("campaign"),
    _("campaigns"),
    account=_("account"),
    name=_("name"),
    category=_("category"),
    sender=_("sender"),
    text=_("text"),
    status=_("status"),
    created_by=_("created by"),
    created_at=_("created at"),
    archived_counts=_("archived counts"),
)
translate_labels(
    Message,
    _("message"),
    _("messages"),
    id=_("ID"),
    account=_("account"),
    campaign=_("campaign"),
    category=_("category"),
    recipient=_("recipient"),
    sender=_("sender"),
    text=_("text"),
    secret_text=_("secret text"),
    encoding=_("encoding"),
    segments=_("segments"),
    status=_("status"),
    provider_account=_("provider account"),
    provider_message_id=_("provider message id"),
    attempts=_("attempts"),
    route_step=_("route step"),
    step_attempts=_("step attempts"),
    next_attempt_at=_("next attempt at"),
    claimed_at=_("claimed at"),
    claim_token=_("claim token"),
    scheduled_at=_("scheduled at"),
    window_start=_("window start"),
    window_end=_("window end"),
    sent_at=_("sent at"),
    delivered_at=_("delivered at"),
    error_code=_("error code"),
    error_reason=_("error reason"),
    cost=_("cost"),
    created_by=_("created by"),
    created_at=_("created at"),
    updated_at=_("updated at"),
)
translate_labels(
    MessageEvent,
    _("message event"),
    _("message events"),
    message=_("message"),
    at=_("at"),
    from_status=_("from status"),
    to_status=_("to status"),
    source=_("source"),
    detail=_("detail"),
    payload=_("payload"),
)
translate_labels(
    Reply,
    _("reply"),
    account=_("account"),
    message=_("message"),
    provider_account=_("provider account"),
    provider_message_id=_("provider message id"),
    from_number=_("from number"),
    to_number=_("to number"),
    text=_("text"),
    received_at=_("received at"),
    raw=_("raw"),
    read_at=_("read at"),
)
translate_labels(
    OptOut,
    None,
    _("opt-outs"),
    account=_("account"),
    number=_("number"),
    source=_("source"),
    keyword=_("keyword"),
    created_at=_("created at"),
)
translate_labels(
    WebhookRequest,
    _("webhook request"),
    _("webhook requests"),
    id=_("ID"),
    provider_account=_("provider account"),
    kind=_("kind"),
    received_at=_("received at"),
    method=_("method"),
    content_type=_("content type"),
    headers=_("headers"),
    body=_("body"),
    status=_("status"),
    error=_("error"),
    events=_("events"),
    applied=_("applied"),
    processed_at=_("processed at"),
    replays=_("replays"),
)
translate_labels(
    PendingDeliveryReport,
    None,
    _("unmatched delivery reports"),
    provider_account=_("provider account"),
    provider_message_id=_("provider message id"),
    recipient=_("recipient"),
    status=_("status"),
    occurred_at=_("occurred at"),
    error_code=_("error code"),
    error_reason=_("error reason"),
    raw=_("raw"),
    webhook_request=_("webhook request"),
    received_at=_("received at"),
)
translate_labels(
    Forward,
    _("forward"),
    _("forwards"),
    id=_("ID"),
    account=_("account"),
    event=_("event"),
    payload=_("payload"),
    status=_("status"),
    attempts=_("attempts"),
    next_attempt_at=_("next attempt at"),
    created_at=_("created at"),
    delivered_at=_("delivered at"),
)
translate_labels(
    ForwardAttempt,
    _("forward attempt"),
    _("forward attempts"),
    forward=_("forward"),
    at=_("at"),
    url=_("URL"),
    response_status=_("response status"),
    error=_("error"),
    duration_ms=_("duration ms"),
)
translate_labels(
    UserPreference,
    _("user preference"),
    _("user preferences"),
    user=_("user"),
    language=_("language"),
)


def _message_link(message_id: int | None) -> str:
    if message_id is None:
        return "—"
    url = reverse("admin:campaigns_message_change", args=[message_id])
    return format_html('<a href="{}">SMS {}</a>', url, message_id)


class ReadOnlyMixin:
    """Viewable, never added nor changed from the admin; superusers may delete."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]


class PhoneSearchMixin:
    """Searching "+33 6 12 34 56 78" or "0033612345678" also finds the number stored as E.164."""

    phone_search_field: str

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            number = normalize(search_term)
        except ValidationError:
            return results, may_have_duplicates
        if number != search_term.strip():
            results |= queryset.filter(**{self.phone_search_field: number})
        return results, may_have_duplicates


class RouteEntryInline(admin.TabularInline):
    """The account's routes: entries without a category make the default route; entries with
    one make that category's own route. Each is tried in `position` order."""

    model = RouteEntry
    fields = ["position", "provider_account", "category"]
    ordering = ["category", "position", "id"]
    autocomplete_fields = ["provider_account"]
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        category = formset.form.base_fields["category"]
        category.queryset = Category.objects.filter(account=obj) if obj else Category.objects.none()
        category.empty_label = gettext("— default route —")
        return formset


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ["user", "role"]
    autocomplete_fields = ["user"]
    extra = 0


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "timezone",
        "country",
        "flood_limit_per_minute",
        "flood_limit_per_hour",
        "created_at",
    ]
    search_fields = ["name"]
    inlines = [RouteEntryInline, MembershipInline]
    readonly_fields = ["forward_secret_masked", "audit_trail"]
    actions = ["rotate_forward_secret"]

    @admin.display(description=_("audit trail"))
    def audit_trail(self, obj: Account) -> str:
        """Every recorded change to the account and its routes, sender names and opt-outs."""
        return trail_link(obj, whole_account=True)

    @admin.display(description=_("forwarding signature key"))
    def forward_secret_masked(self, obj: Account) -> str:
        return mask(obj.forward_secret) if obj.pk else gettext("Created when the account is saved.")

    @admin.action(description=_("Rotate forwarding signature key"), permissions=["change"])
    def rotate_forward_secret(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        for account in queryset:
            account.forward_secret = new_secret()
            account.save(update_fields=["forward_secret"])
            self.log_change(request, account, "Rotated the forwarding signature key.")
            # Shown this once, so that it can be given to the receiver; never again.
            self.message_user(
                request,
                gettext(
                    "%(account)s: new forwarding signature key %(key)s "
                    "(copy it now: it will not be shown again)."
                )
                % {"account": account, "key": account.forward_secret},
                messages.WARNING,
            )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "account", "role"]
    list_filter = ["role", "account"]
    search_fields = ["user__username", "user__email", "account__name"]
    list_select_related = ["user", "account"]
    autocomplete_fields = ["user", "account"]


@admin.register(SenderName)
class SenderNameAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "account__name"]
    list_select_related = ["account"]
    autocomplete_fields = ["account"]
    actions = ["approve", "reject"]

    def _set_status(
        self, request: HttpRequest, queryset: QuerySet[SenderName], status: SenderName.Status
    ) -> None:
        total = queryset.count()
        changed = audit.update(queryset.exclude(status=status), status=status)
        if status == SenderName.Status.APPROVED:
            text = ngettext(
                "%(count)d sender name approved.", "%(count)d sender names approved.", changed
            )
        else:
            text = ngettext(
                "%(count)d sender name rejected.", "%(count)d sender names rejected.", changed
            )
        text %= {"count": changed}
        if changed < total:
            unchanged = total - changed
            text += " " + ngettext(
                "%(count)d already was.", "%(count)d already were.", unchanged
            ) % {"count": unchanged}
        self.message_user(request, text, messages.SUCCESS)

    @admin.action(description=_("Approve selected sender names"), permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[SenderName]) -> None:
        self._set_status(request, queryset, SenderName.Status.APPROVED)

    @admin.action(description=_("Reject selected sender names"), permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[SenderName]) -> None:
        self._set_status(request, queryset, SenderName.Status.REJECTED)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "tag", "account"]
    list_filter = ["account"]
    search_fields = ["name", "tag"]
    list_select_related = ["account"]
    autocomplete_fields = ["account"]
    prepopulated_fields = {"tag": ["name"]}


@admin.register(Campaign)
class CampaignAdmin(DateSafeMixin, admin.ModelAdmin):
    list_display = ["name", "account", "status", "category", "created_at"]
    list_filter = ["status", "account"]
    search_fields = ["name"]
    date_hierarchy = "created_at"
    list_select_related = ["account", "category"]
    autocomplete_fields = ["account", "category", "created_by"]
    # Pausing, resuming and canceling act on the campaign's messages: they go through the app.
    readonly_fields = ["status", "messages_by_status", "created_at"]
    actions = ["pause", "resume", "cancel"]

    def save_model(self, request: HttpRequest, obj: Campaign, form, change: bool) -> None:
        if not change and obj.created_by is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=_("messages by status"))
    def messages_by_status(self, obj: Campaign) -> str:
        if not obj.pk:
            return "—"
        counts = campaign_control.counts(obj)
        total = counts.pop("total")
        if not total:
            return gettext("No messages.")
        labels = dict(Message.Status.choices)
        parts = [f"{n} {str(labels[status]).lower()}" for status, n in counts.items() if n]
        return gettext("%(counts)s (%(total)s)") % {
            "counts": ", ".join(parts),
            "total": ngettext("%(count)d message", "%(count)d messages", total) % {"count": total},
        }

    def _control(self, request: HttpRequest, queryset: QuerySet[Campaign], verb, done) -> None:
        """Apply `verb` to each campaign; report each one's outcome, refusals included."""
        for campaign in queryset:
            try:
                result = verb(campaign, by=request.user)
            except campaign_control.CampaignStateError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            text = done(campaign, result)
            with translation.override("en"):  # the history keeps one language
                self.log_change(request, campaign, done(campaign, result))
            self.message_user(
                request,
                gettext("%(campaign)s: %(done)s") % {"campaign": campaign, "done": text},
                messages.SUCCESS,
            )

    @admin.action(description=_("Pause"), permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._control(
            request,
            queryset,
            campaign_control.pause,
            lambda campaign, _result: gettext(
                "paused; its waiting messages wait until it is resumed."
            ),
        )

    @admin.action(description=_("Resume"), permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        def done(campaign: Campaign, _result) -> str:
            if campaign.status == Campaign.Status.COMPLETED:
                return gettext("resumed; nothing was left to send, so it is completed.")
            return gettext("resumed; its waiting messages are being sent.")

        self._control(request, queryset, campaign_control.resume, done)

    @admin.action(description=_("Cancel (remaining messages canceled)"), permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._control(
            request,
            queryset,
            campaign_control.cancel,
            lambda campaign, canceled: (
                ngettext(
                    "canceled; %(count)d message will not be sent.",
                    "canceled; %(count)d messages will not be sent.",
                    canceled,
                )
                % {"count": canceled}
            ),
        )


class MessageEventInline(admin.TabularInline):
    """The message's timeline."""

    model = MessageEvent
    fields = readonly_fields = ["at", "from_status", "to_status", "source", "detail", "payload"]
    ordering = ["at", "id"]
    can_delete = False
    extra = max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(DateSafeMixin, ReadOnlyMixin, PhoneSearchMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "recipient",
        "account",
        "status",
        "provider_account",
        "segments",
        "created_at",
        "sent_at",
        "delivered_at",
    ]
    list_filter = ["status", "encoding", "provider_account", "account"]
    # Exact lookups: `=field` would be iexact, which no plain index serves.
    search_fields = ["recipient__exact", "provider_message_id__exact"]
    phone_search_field = "recipient"
    date_hierarchy = "created_at"
    list_select_related = ["account", "provider_account"]
    show_full_result_count = False
    raw_id_fields = ["account", "campaign", "category", "created_by", "provider_account"]
    inlines = [MessageEventInline]
    actions = ["resend_unknown"]

    @admin.action(description=_("Send again (messages whose outcome is unknown)"))
    def resend_unknown(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        """Explicit only: an `unknown` message may have reached the phone already."""
        sent, skipped = 0, 0
        for message in queryset:
            if resend(message, by=request.user):
                sent += 1
            else:
                skipped += 1
        text = ngettext(
            "%(count)d message queued to send again.",
            "%(count)d messages queued to send again.",
            sent,
        ) % {"count": sent}
        if skipped:
            text += " " + ngettext(
                "%(count)d skipped: only messages whose outcome is unknown can be resent.",
                "%(count)d skipped: only messages whose outcome is unknown can be resent.",
                skipped,
            ) % {"count": skipped}
        self.message_user(request, text, messages.SUCCESS if sent else messages.WARNING)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.is_superuser

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), "error_meaning"]

    @admin.display(description=_("Error meaning"))
    def error_meaning(self, obj: Message) -> str | None:
        return meaning(obj.error_code) or self.get_empty_value_display()

    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "account",
                    "campaign",
                    "category",
                    "recipient",
                    "sender",
                    "text",
                    "encoding",
                    "segments",
                    "status",
                    "created_by",
                ]
            },
        ),
        (
            _("Sending"),
            {
                "fields": [
                    "provider_account",
                    "provider_message_id",
                    "attempts",
                    "next_attempt_at",
                    "claimed_at",
                    "claim_token",
                    "error_code",
                    "error_meaning",
                    "error_reason",
                    "cost",
                ]
            },
        ),
        (
            _("Times"),
            {
                "fields": [
                    "scheduled_at",
                    "window_start",
                    "window_end",
                    "created_at",
                    "sent_at",
                    "delivered_at",
                    "updated_at",
                ]
            },
        ),
    ]


@admin.register(MessageEvent)
class MessageEventAdmin(DateSafeMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["message_link", "at", "from_status", "to_status", "source"]
    list_filter = ["source"]
    search_fields = ["message__id__exact"]
    date_hierarchy = "at"
    raw_id_fields = ["message"]
    show_full_result_count = False

    @admin.display(description=_("message"), ordering="message_id")
    def message_link(self, obj: MessageEvent) -> str:
        return _message_link(obj.message_id)


@admin.register(Reply)
class ReplyAdmin(DateSafeMixin, ReadOnlyMixin, PhoneSearchMixin, admin.ModelAdmin):
    list_display = ["from_number", "account", "message_link", "received_at", "excerpt"]
    list_filter = ["account"]
    search_fields = ["from_number__exact"]
    phone_search_field = "from_number"
    date_hierarchy = "received_at"
    list_select_related = ["account"]
    raw_id_fields = ["account", "message", "provider_account"]
    show_full_result_count = False

    @admin.display(description=_("message"), ordering="message_id")
    def message_link(self, obj: Reply) -> str:
        return _message_link(obj.message_id)

    @admin.display(description=_("text"))
    def excerpt(self, obj: Reply) -> str:
        return Truncator(obj.text).chars(60)


@admin.register(OptOut)
class OptOutAdmin(PhoneSearchMixin, admin.ModelAdmin):
    list_display = ["number", "account", "source", "keyword", "created_at"]
    list_filter = ["source", "account"]
    search_fields = ["number__exact"]
    phone_search_field = "number"
    list_select_related = ["account"]
    autocomplete_fields = ["account"]


@admin.register(WebhookRequest)
class WebhookRequestAdmin(DateSafeMixin, ReadOnlyMixin, admin.ModelAdmin):
    """Every request providers made to the webhooks, as received; failed ones can be replayed."""

    list_display = ["id", "provider_account", "kind", "status", "events", "applied", "received_at"]
    list_filter = ["status", "kind", "provider_account"]
    search_fields = ["id__exact"]
    date_hierarchy = "received_at"
    list_select_related = ["provider_account"]
    show_full_result_count = False
    actions = ["replay"]

    @admin.action(description=_("Replay (parse and apply again)"), permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookRequest]) -> None:
        for log in queryset.select_related("provider_account"):
            result = webhook_log.replay(log)
            if result.error:
                self.message_user(request, f"#{log.pk}: {result.error}", messages.ERROR)
            else:
                numbers = {
                    "id": log.pk,
                    "read": result.events,
                    "applied": result.applied,
                    "waiting": result.pending,
                }
                text = (
                    gettext(
                        "#%(id)s: %(read)d read, %(applied)d applied, %(waiting)d waiting for "
                        "their message."
                    )
                    if result.pending
                    else gettext("#%(id)s: %(read)d read, %(applied)d applied.")
                )
                self.message_user(request, text % numbers, messages.SUCCESS)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser


@admin.register(PendingDeliveryReport)
class PendingDeliveryReportAdmin(DateSafeMixin, ReadOnlyMixin, admin.ModelAdmin):
    """Delivery reports whose message is not known (yet): applied when a message gets the id.
    Reports matched by number (no id) that found no message awaiting one stay here."""

    list_display = [
        "provider_message_id",
        "recipient",
        "provider_account",
        "status",
        "error_code",
        "received_at",
    ]
    list_filter = ["status", "provider_account"]
    search_fields = ["provider_message_id__exact", "recipient__exact"]
    date_hierarchy = "received_at"
    list_select_related = ["provider_account"]


class ForwardAttemptInline(admin.TabularInline):
    model = ForwardAttempt
    fields = readonly_fields = ["at", "url", "response_status", "error", "duration_ms"]
    can_delete = False
    extra = max_num = 0


@admin.register(Forward)
class ForwardAdmin(DateSafeMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "account", "event", "status", "attempts", "next_attempt_at", "created_at"]
    list_filter = ["status", "event", "account"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    inlines = [ForwardAttemptInline]


@admin.register(UserPreference)
class UserPreferenceAdmin(admin.ModelAdmin):
    """A staff user's own choices (the language of the pages; empty: the browser's)."""

    list_display = ["user", "language"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
