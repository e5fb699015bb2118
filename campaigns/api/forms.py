from django import forms
from django.utils.translation import gettext_lazy as _

from .models import ApiKey


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name"]
        labels = {"name": _("Name")}
        help_texts = {"name": _("What uses this key, e.g. “Booking site”.")}
        widgets = {"name": forms.TextInput(attrs={"autocomplete": "off"})}
