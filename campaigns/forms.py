"""Staff forms. Every choice is limited to the current account's own objects."""

from django import forms
from django.utils import timezone

from providers import gsm

from .models import Account, Category, SenderName
from .phone import PhoneNumberFormField

# Ten segments of GSM-7 text: longer than this is almost always a mistake.
MAX_TEXT_LENGTH = 1530


class ComposeForm(forms.Form):
    recipient = PhoneNumberFormField(
        label="To",
        help_text="A mobile number with its country code, e.g. +33 6 12 34 56 78.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "tel"}),
    )
    text = forms.CharField(
        label="Message",
        max_length=MAX_TEXT_LENGTH,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    sender = forms.ChoiceField(
        label="Sender name",
        required=False,
        help_text="Only approved sender names can be used.",
    )
    category = forms.ModelChoiceField(
        label="Category", queryset=Category.objects.none(), required=False, empty_label="None"
    )

    def __init__(self, *args, account: Account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        approved = SenderName.objects.filter(account=account, status=SenderName.Status.APPROVED)
        self.fields["sender"].choices = [("", "Provider default")] + [
            (s.name, s.name) for s in approved
        ]
        self.fields["category"].queryset = Category.objects.filter(account=account)
        self.fields["send_at"].help_text = f"Empty: now. Time in {account.timezone}."

    send_at = forms.DateTimeField(
        label="Send at",
        required=False,
        help_text="Empty: now. In the account's time zone.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    window_end = forms.DateTimeField(
        label="Not after",
        required=False,
        help_text="If it cannot go out by then, it expires instead of arriving late.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean(self):
        cleaned = super().clean()
        send_at, window_end = cleaned.get("send_at"), cleaned.get("window_end")
        if window_end is not None:
            if window_end <= timezone.now():
                self.add_error("window_end", "This time has already passed.")
            elif send_at is not None and window_end <= send_at:
                self.add_error("window_end", "Must be after the time to send.")
        return cleaned

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError("Write the message to send.", code="required")
        return text

    def analysis(self) -> gsm.Analysis:
        return gsm.analyze(self.data.get("text", ""))
