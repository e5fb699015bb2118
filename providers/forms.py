"""The provider account form of admin: each provider kind's credentials as labelled fields.

Built from the adapters' declarations (`credential_fields`, then `options`; see
`providers.options`), plus the webhook basic auth every kind has (`WEBHOOK_AUTH`). Every kind's
fields are in the form, named ``<slug>__<key>``; only the chosen kind's are read and validated
(admin's `providers/provider_form.js` shows only them). The stored credentials stay one JSON
object: the chosen kind's keys are written from the fields, keys no kind declares are kept as they
were, and the keys of a kind the account no longer is are dropped.

Secrets are password inputs, never rendered back: left empty they keep the stored value; the
"clear" box next to one removes it.
"""

import re
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import registry
from .models import ProviderAccount, mask
from .options import CHOICE, NUMBER, URL, WEBHOOK_AUTH, Credential, Option

MASK_PREFIX = mask("")  # what every masked value starts with
WEBHOOK = "webhook"  # the prefix of the webhook auth fields: "webhook__webhook_username"
CLEAR = "__clear"  # suffix of a secret's "clear" box
DROP_OTHERS = "drop_other_credentials"
# Names that look like secrets: an undeclared key with such a name is shown masked.
SECRET_WORDS = re.compile(r"pass|secret|key|token|pwd|private|auth", re.IGNORECASE)


def field_name(prefix: str, key: str) -> str:
    return f"{prefix}__{key}"


def credentials_of(slug: str) -> tuple[Credential, ...]:
    cls = registry.adapters().get(slug)
    return cls.credential_fields if cls is not None else ()


def options_of(slug: str) -> tuple[Option, ...]:
    """The labelled options of a provider kind (none for an unknown one); never a secret."""
    cls = registry.adapters().get(slug)
    if cls is None:
        return ()
    return tuple(option for option in cls.options if option.key not in cls.secret_credentials)


def declared_keys(slug: str) -> set[str]:
    """The credential keys a provider kind asks for (fields and options)."""
    return {c.key for c in credentials_of(slug)} | {o.key for o in options_of(slug)}


WEBHOOK_KEYS = frozenset(c.key for c in WEBHOOK_AUTH)


def every_secret_key() -> set[str]:
    keys = {c.key for c in WEBHOOK_AUTH if c.secret}
    for cls in registry.adapters().values():
        keys |= set(cls.secret_credentials) | {c.key for c in cls.credential_fields if c.secret}
    return keys


def other_credentials(slug: str, credentials: Any) -> dict[str, Any]:
    """The stored keys that neither the kind nor the webhook auth declares."""
    if not isinstance(credentials, dict):
        return {}
    known = declared_keys(slug) | WEBHOOK_KEYS
    return {key: value for key, value in credentials.items() if key not in known}


def shown_value(key: str, value: Any) -> str:
    """An undeclared key's value as a page may show it: masked when it may be a secret."""
    if key in every_secret_key() or SECRET_WORDS.search(key):
        return mask(value)
    return value if isinstance(value, str) else repr(value)


def fieldset_names(slug: str) -> list[str]:
    """The form fields of one kind's credentials, in order (each secret's clear box after it)."""
    names = []
    for credential in credentials_of(slug):
        names.append(field_name(slug, credential.key))
        if credential.secret:
            names.append(field_name(slug, credential.key) + CLEAR)
    return names + [field_name(slug, option.key) for option in options_of(slug)]


def webhook_field_names() -> list[str]:
    names = []
    for credential in WEBHOOK_AUTH:
        names.append(field_name(WEBHOOK, credential.key))
        if credential.secret:
            names.append(field_name(WEBHOOK, credential.key) + CLEAR)
    return names


def _same(stored: Any, value: Any) -> bool:
    return stored is not None and str(stored).strip() == str(value).strip()


class ProviderAccountForm(forms.ModelForm):
    # Every kind's fields are on the page, most of them hidden: the browser must not insist.
    use_required_attribute = False

    class Meta:
        model = ProviderAccount
        fields = [
            "name",
            "slug",
            "base_url",
            "enabled",
            "priority",
            "max_per_second",
            "max_in_flight",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.credentials
        self.stored: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {}
        self.stored_slug = self.instance.slug if self.instance.pk else ""
        self.new_credentials: dict[str, Any] | None = None
        if self.is_bound:
            self.kind = str(self.data.get(self.add_prefix("slug")) or "")
        else:
            self.kind = self.stored_slug or str(self.initial.get("slug") or "")
        for slug in registry.adapters():
            ours = slug == self.stored_slug
            for credential in credentials_of(slug):
                self._add(slug, credential, self.stored if ours else {})
            for option in options_of(slug):
                self.fields[field_name(slug, option.key)] = self._option_field(
                    option, self.stored if ours else {}
                )
        for credential in WEBHOOK_AUTH:
            self._add(WEBHOOK, credential, self.stored)
        if other_credentials(self.stored_slug, self.stored):
            self.fields[DROP_OTHERS] = forms.BooleanField(
                label=_("Remove these other settings"),
                required=False,
                help_text=_("Tick to delete the keys listed above when saving."),
            )
        if self.is_bound:
            self._require_only(self.kind)
        self._base_url_default()
        if "slug" in self.fields:
            self.fields["slug"].widget.attrs["data-choose-first"] = gettext(
                "Choose the provider first: its credentials are asked for below."
            )

    # --- building the fields ------------------------------------------------------------------
    def _add(self, prefix: str, credential: Credential, stored: dict[str, Any]) -> None:
        name = field_name(prefix, credential.key)
        value = stored.get(credential.key)
        if credential.secret:
            has_value = value not in (None, "")
            self.fields[name] = forms.CharField(
                label=credential.label,
                required=credential.required and not has_value,
                strip=True,
                max_length=credential.max_length,
                widget=forms.PasswordInput(
                    render_value=False, attrs={"autocomplete": "new-password"}
                ),
                help_text=self._secret_help(credential, value if has_value else None),
            )
            if has_value:
                self.fields[name + CLEAR] = forms.BooleanField(
                    label=_("Clear: delete the stored value"),
                    required=False,
                )
            return
        self.fields[name] = self._plain_field(credential, value)

    @staticmethod
    def _secret_help(credential: Credential, value: Any) -> str:
        if value is None:
            status = gettext("Nothing stored.")
        else:
            status = gettext(
                "A value is stored (%(masked)s): leave empty to keep it, type a new one to "
                "replace it."
            ) % {"masked": mask(value)}
        return format_html("{} {}", credential.help, status)

    def _plain_field(self, credential: Credential, value: Any) -> forms.Field:
        common = {
            "label": credential.label,
            "required": credential.required,
            "help_text": format_html("{}", credential.help),
        }
        attrs = {"placeholder": credential.placeholder} if credential.placeholder else {}
        if credential.kind == CHOICE:
            choices = [(str(v), label) for v, label in credential.choices]
            current = credential.default if value in (None, "") else value
            matches = [v for v, _label in choices if _same(current, v) or _lower(current, v)]
            if value not in (None, "") and not matches:
                common["help_text"] = format_html(
                    "{} {}",
                    credential.help,
                    gettext("The stored value %(value)s is not understood: choose one.")
                    % {"value": repr(value)},
                )
            return forms.ChoiceField(
                choices=choices,
                initial=matches[0] if matches else None,
                widget=forms.RadioSelect,
                **{**common, "required": True},
            )
        if credential.kind == NUMBER:
            return forms.IntegerField(
                min_value=credential.min_value,
                max_value=credential.max_value,
                initial=value,
                widget=forms.TextInput(attrs={**attrs, "inputmode": "numeric"}),
                **common,
            )
        field_class = forms.URLField if credential.kind == URL else forms.CharField
        return field_class(
            max_length=credential.max_length,
            initial=None if value is None else str(value),
            widget=forms.TextInput(attrs=attrs),
            **common,
        )

    def _option_field(self, option: Option, stored: dict[str, Any]) -> forms.ChoiceField:
        current = option.choice(stored)
        # Admin shows help texts as HTML: everything in it is escaped (a stored value may be any).
        help_text = format_html("{}", option.help)
        if current is None:  # a stored value no choice means: say so, and ask for a choice
            help_text = format_html(
                "{} {}",
                option.help,
                gettext("The stored value %(value)s of “%(key)s” is not understood: choose one.")
                % {"value": repr(stored[option.key]), "key": option.key},
            )
        return forms.ChoiceField(
            label=f"{option.label} ({option.key})",
            choices=[(str(i), choice.label) for i, choice in enumerate(option.choices)],
            initial=None if current is None else str(option.choices.index(current)),
            widget=forms.RadioSelect,
            help_text=help_text,
        )

    def _require_only(self, kind: str) -> None:
        """Fields of the kinds not chosen are not read: nothing of theirs is required."""
        for slug in registry.adapters():
            if slug != kind:
                for name in fieldset_names(slug):
                    if name in self.fields:
                        self.fields[name].required = False

    def _base_url_default(self) -> None:
        if "base_url" not in self.fields:  # a view-only page
            return
        # Required or not depends on the kind: `clean_base_url` says which.
        self.fields["base_url"].required = False
        self.fields["base_url"].help_text = gettext(
            "Empty: the provider's documented address (named with its credentials below)."
        )

    # --- reading them back --------------------------------------------------------------------
    def clean_base_url(self) -> str:
        value = self.cleaned_data.get("base_url") or ""
        cls = registry.adapters().get(self.kind)
        if not value and cls is None:
            raise ValidationError(gettext("This field is required."), code="required")
        if not value:
            if not cls.default_base_url:
                raise ValidationError(
                    gettext("Enter the base URL: %(provider)s has no default address.")
                    % {"provider": cls.display_name},
                    code="required",
                )
            value = cls.default_base_url
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        slug = cleaned.get("slug")
        cls = registry.adapters().get(slug or "")
        if cls is None:
            return cleaned
        same_kind = slug == self.stored_slug
        new: dict[str, Any] = {}
        if not cleaned.get(DROP_OTHERS):
            new.update(
                (key, value)
                for key, value in other_credentials(self.stored_slug, self.stored).items()
                if key not in declared_keys(slug)
            )
        fields = [(slug, c, same_kind) for c in cls.credential_fields]
        fields += [(WEBHOOK, c, True) for c in WEBHOOK_AUTH]
        for prefix, credential, ours in fields:
            stored = self.stored if ours else {}
            if credential.secret:
                self._read_secret(prefix, credential, stored, new)
            else:
                self._read_plain(prefix, credential, stored, new)
        for option in options_of(slug):
            self._read_option(slug, option, self.stored if same_kind else {}, new)
        for prefix, credential, _ours in fields:
            if credential.key in new and credential.requires and credential.requires not in new:
                needed = next(c for _p, c, _o in fields if c.key == credential.requires)
                self.add_error(
                    field_name(prefix, needed.key),
                    gettext("Needed with %(other)s.") % {"other": credential.label},
                )
        if not self._errors_in_credentials(slug):
            self.new_credentials = new
        return cleaned

    def _errors_in_credentials(self, slug: str) -> bool:
        names = set(fieldset_names(slug)) | set(webhook_field_names())
        return any(name in self.errors for name in names)

    def _read_secret(
        self, prefix: str, credential: Credential, stored: dict[str, Any], new: dict[str, Any]
    ) -> None:
        name = field_name(prefix, credential.key)
        typed = self.cleaned_data.get(name) or ""
        clear = bool(self.cleaned_data.get(name + CLEAR))
        if name in self.errors:
            return
        if typed and clear:
            self.add_error(name, gettext("Type a new value or tick “clear”, not both."))
        elif typed.startswith(MASK_PREFIX):
            self.add_error(name, gettext("This is a masked value: type the full value."))
        elif typed and credential.pattern and not re.fullmatch(credential.pattern, typed):
            self.add_error(name, credential.pattern_message or gettext("Enter a valid value."))
        elif typed:
            new[credential.key] = typed
        elif not clear and stored.get(credential.key) not in (None, ""):
            new[credential.key] = stored[credential.key]
        elif credential.required:
            self.add_error(
                name,
                gettext("This field is required: type a new value rather than clearing it.")
                if clear
                else gettext("This field is required."),
            )

    def _read_plain(
        self, prefix: str, credential: Credential, stored: dict[str, Any], new: dict[str, Any]
    ) -> None:
        name = field_name(prefix, credential.key)
        if name in self.errors:
            return
        value = self.cleaned_data.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value in (None, ""):
            return  # emptied: the key goes (Django already refused an empty required one)
        if credential.pattern and not re.fullmatch(credential.pattern, str(value)):
            self.add_error(name, credential.pattern_message or gettext("Enter a valid value."))
            return
        before = stored.get(credential.key)
        if _same(before, value) or (credential.kind == CHOICE and _lower(before, value)):
            new[credential.key] = before  # unchanged: kept as it was stored (type, case)
        elif before is None and credential.default is not None and _same(credential.default, value):
            return  # the default, not stored before: nothing to store
        else:
            new[credential.key] = value

    def _read_option(
        self, slug: str, option: Option, stored: dict[str, Any], new: dict[str, Any]
    ) -> None:
        token = self.cleaned_data.get(field_name(slug, option.key))
        if token in (None, ""):
            return
        choice = option.choices[int(token)]
        current = option.choice(stored)
        if current is choice and option.key in stored:
            new[option.key] = stored[option.key]  # unchanged: kept as it was stored
        elif choice.value is not None:
            new[option.key] = choice.value

    def _post_clean(self) -> None:
        if self.new_credentials is not None:
            self.instance.credentials = self.new_credentials
        super()._post_clean()
        if self.errors:  # not saved: the page shows what is stored
            self.instance.credentials = dict(self.stored)

    def _update_errors(self, errors: ValidationError) -> None:
        # The model's own check of the credentials has no form field of that name: its message
        # goes above the form, unless the fields already said what is missing.
        if hasattr(errors, "error_dict") and "credentials" in errors.error_dict:
            moved = errors.error_dict.pop("credentials")
            if self.new_credentials is not None:
                errors.error_dict.setdefault(NON_FIELD_ERRORS, []).extend(moved)
            if not errors.error_dict:
                return
        super()._update_errors(errors)

    @property
    def credentials_changed(self) -> bool:
        return self.new_credentials is not None and (
            self.new_credentials != self.stored or self.kind != self.stored_slug
        )


def _lower(stored: Any, value: Any) -> bool:
    return isinstance(stored, str) and stored.strip().lower() == str(value).lower()


def kind_descriptions() -> dict[str, str]:
    """What each kind's credential fieldset says about itself."""
    descriptions = {}
    for slug, cls in registry.adapters().items():
        parts = [
            gettext("Used when the provider is %(provider)s.") % {"provider": cls.display_name}
        ]
        if cls.default_base_url:
            parts.append(
                gettext("Base URL when left empty: %(url)s") % {"url": cls.default_base_url}
            )
        if not (cls.credential_fields or cls.options):
            parts.append(gettext("It needs no credentials."))
        descriptions[slug] = " ".join(parts)
    return descriptions
