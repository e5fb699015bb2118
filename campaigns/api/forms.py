from django import forms

from .models import ApiKey


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name"]
        labels = {"name": "Name"}
        widgets = {"name": forms.TextInput(attrs={"autocomplete": "off"})}
