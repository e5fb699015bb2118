"""Staff forms. Every choice is limited to the current account's own objects."""

import hashlib
import json
import string
from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import phone, timerange
from .contacts.models import ContactList, Segment, Template
from .models import Account, Category, SenderName
from .services.bulk import CsvInfo

# Ten segments of GSM-7 text: longer than this is almost always a mistake.
MAX_TEXT_LENGTH = 1530
# A pasted list: about ten thousand numbers. More goes in a CSV file.
MAX_PASTED_LENGTH = 200_000
RECIPIENTS_HELP = _("One number, or a list: one per line, or separated by commas or semicolons.")
# Columns offered by the column picker.
MAX_COLUMNS = 100
# Typing "now" into a time field gives a time already a little in the past.
PAST_SLACK = timedelta(minutes=1)


def column_letter(index: int) -> str:
    """Spreadsheet-style column name: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = string.ascii_uppercase[rest] + letters
    return letters


class ComposeForm(forms.Form):
    """One SMS to one number, a pasted list or a CSV column; now, at a time or in a window."""

    WHEN_CHOICES = [
        ("now", _("Now")),
        ("at", _("At a time")),
        ("window", _("Within a window")),
    ]

    recipients = forms.CharField(
        label=_("To"),
        required=False,
        max_length=MAX_PASTED_LENGTH,
        help_text=RECIPIENTS_HELP,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
    )
    csv_file = forms.FileField(
        label=_("Or a CSV file"),
        required=False,
        help_text=_(
            "UTF-8 CSV, one row per recipient. You choose the column with the numbers "
            "next; bad rows are listed with their line numbers."
        ),
        widget=forms.FileInput(attrs={"accept": ".csv,.txt,text/csv,text/plain"}),
    )
    # An uploaded file kept on the server between the preview and the confirmation.
    upload = forms.CharField(required=False, widget=forms.HiddenInput)
    column = forms.TypedChoiceField(
        label=_("Column with the numbers"), coerce=int, required=False, empty_value=None
    )
    has_header = forms.BooleanField(label=_("Line 1 is a header (not a recipient)"), required=False)
    lists = forms.ModelMultipleChoiceField(
        label=_("Contact lists"),
        queryset=ContactList.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    segments = forms.ModelMultipleChoiceField(
        label=_("Segments"),
        queryset=Segment.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    template = forms.ModelChoiceField(
        label=_("Template"),
        queryset=Template.objects.none(),
        required=False,
        empty_label=_("None: write the text"),
        help_text=_("Fills the message with a saved text, which you can still change."),
    )
    name = forms.CharField(
        label=_("Campaign name"),
        max_length=200,
        required=False,
        help_text=_("Required for more than one recipient, e.g. “Flu jabs, October”."),
    )
    text = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=MAX_TEXT_LENGTH,
        strip=False,
        help_text=_(
            "Merge fields such as {first_name} or {city|our shop} (after | what to write "
            "when a recipient has no value) are filled in for each recipient from their contact "
            "or their CSV columns."
        ),
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    sender = forms.ChoiceField(
        label=_("Sender name"),
        required=False,
        help_text=_("Only approved sender names can be used."),
    )
    category = forms.ModelChoiceField(
        label=_("Category"),
        queryset=Category.objects.none(),
        required=False,
        empty_label=_("None"),
    )
    when = forms.ChoiceField(
        label=_("Send"), choices=WHEN_CHOICES, initial="now", widget=forms.RadioSelect
    )
    send_at = forms.DateTimeField(
        label=_("Send at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    window_end = forms.DateTimeField(
        label=_("Not after"),
        required=False,
        help_text=_("What cannot go out by then expires instead of arriving late."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    # Ties the progress bar to this form, and a confirmation to the preview it confirms.
    compose_id = forms.CharField(required=False, widget=forms.HiddenInput)
    previewed = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(
        self,
        *args,
        account: Account,
        upload_info: CsvInfo | None = None,
        upload_error: str = "",
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        self.upload_info = upload_info
        self.upload_error = upload_error
        approved = SenderName.objects.filter(account=account, status=SenderName.Status.APPROVED)
        self.fields["sender"].choices = [("", _("Provider default"))] + [
            (s.name, s.name) for s in approved
        ]
        self.fields["category"].queryset = Category.objects.filter(account=account)
        self.fields["lists"].queryset = ContactList.objects.filter(account=account)
        self.fields["segments"].queryset = Segment.objects.filter(account=account)
        self.fields["template"].queryset = Template.objects.filter(account=account)
        self.fields["recipients"].help_text = f"{RECIPIENTS_HELP} {phone.help_text(account.region)}"
        tz = account.timezone
        self.fields["send_at"].help_text = gettext(
            "In %(tz)s. In a window, empty means from now."
        ) % {"tz": tz}
        self.fields["window_end"].help_text = gettext(
            "In %(tz)s. What cannot go out by then expires instead of arriving late."
        ) % {"tz": tz}
        if upload_info is not None:
            self.fields["csv_file"].label = _("Or another CSV file")
            self.fields["column"].help_text = _("Changed it? Preview again to check that column.")
            self.fields["column"].choices = [
                (index, self.column_label(index))
                for index in range(min(upload_info.columns, MAX_COLUMNS))
            ]

    def column_label(self, index: int) -> str:
        info = self.upload_info
        header = info.headers[index].strip() if index < len(info.headers) else ""
        sample = info.sample[index].strip() if index < len(info.sample) else ""
        label = column_letter(index)
        if info.has_header and header:
            label += f": {header[:40]}"
        if sample:
            label += " " + gettext("(e.g. %(sample)s)") % {"sample": sample[:30]}
        return label

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()

    def clean(self):
        cleaned = super().clean()
        if "text" in cleaned and not cleaned["text"].strip():
            if cleaned.get("template") is not None:
                cleaned["text"] = cleaned["template"].text
                if getattr(self.data, "_mutable", True):  # shown in the form from now on
                    self.data["text"] = cleaned["text"]
            else:
                self.add_error("text", gettext("Write the message to send, or choose a template."))
        self._clean_recipients(cleaned)
        self._clean_schedule(cleaned)
        return cleaned

    def _clean_recipients(self, cleaned: dict) -> None:
        pasted = (cleaned.get("recipients") or "").strip()
        if self.upload_error:
            self.add_error("csv_file", self.upload_error)
        if self.upload_info is not None:
            if pasted:
                self.add_error(
                    "recipients",
                    gettext(
                        "Give the numbers here or in a CSV file, not both: remove the file to "
                        "use this list."
                    ),
                )
            if cleaned.get("column") is None and "column" not in self.errors:
                self.add_error("column", gettext("Choose the column that holds the numbers."))
            if not cleaned.get("name") and "name" not in self.errors:
                self.add_error("name", gettext("Name the campaign: an upload sends to a list."))
        elif (
            not pasted
            and not cleaned.get("lists")
            and not cleaned.get("segments")
            and "recipients" not in self.errors
            and "csv_file" not in self.errors
        ):
            self.add_error(
                "recipients",
                gettext("Enter at least one number, choose a list, or upload a CSV file."),
            )

    def _clean_schedule(self, cleaned: dict) -> None:
        when = cleaned.get("when")
        now = timezone.now()
        if when == "now":
            cleaned["send_at"] = cleaned["window_end"] = None
            return
        for name in ("send_at", "window_end"):
            if cleaned.get(name) is not None and timerange.too_far(cleaned[name], now):
                self.add_error(name, timerange.TOO_FAR)  # which takes it out of `cleaned`
        send_at, window_end = cleaned.get("send_at"), cleaned.get("window_end")
        if when == "at":
            cleaned["window_end"] = None
            if send_at is None:
                if "send_at" not in self.errors:
                    self.add_error("send_at", gettext("Choose when to send."))
            elif send_at < now - PAST_SLACK:
                self.add_error(
                    "send_at", gettext("This time has passed: choose a later one, or Now.")
                )
        elif when == "window":
            if send_at is not None and send_at < now - PAST_SLACK:
                self.add_error(
                    "send_at", gettext("This time has passed: leave it empty to start now.")
                )
            if window_end is None:
                if "window_end" not in self.errors:
                    self.add_error("window_end", gettext("Choose the latest time to send."))
            elif window_end <= now:
                self.add_error("window_end", gettext("This time has already passed."))
            elif send_at is not None and window_end <= send_at:
                self.add_error("window_end", gettext("Must be after the time to send."))

    def fingerprint(self) -> str:
        """A digest of everything the preview showed: a confirmation must match it."""
        data = self.cleaned_data
        parts = [
            data.get("recipients", ""),
            data.get("upload", ""),
            data.get("column"),
            data.get("has_header"),
            sorted(item.pk for item in data.get("lists") or ()),
            sorted(item.pk for item in data.get("segments") or ()),
            data.get("name", ""),
            data.get("text", ""),
            data.get("sender", ""),
            data["category"].pk if data.get("category") else None,
            data.get("when"),
            data["send_at"].isoformat() if data.get("send_at") else None,
            data["window_end"].isoformat() if data.get("window_end") else None,
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]
