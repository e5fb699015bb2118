"""The contacts pages' forms. Checking what is typed is the services' work (`save_contact`,
`segments.clean`, `fields.cast`): these forms show their answers next to the field at fault."""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns import phone
from campaigns.models import Account

from . import segments, services
from .fields import cast, shown
from .models import BUILT_IN, Contact, ContactField, ContactList, Segment, Template

SEARCH_DIGITS = re.compile(r"\+?\d{3,}")  # part of a number: searched within numbers
VALUE_PREFIX = "v_"  # a custom field's input is named v_<key>


def _choices(queryset: QuerySet, empty: str) -> list[tuple[str, str]]:
    return [("", empty), *((str(pk), name) for pk, name in queryset.values_list("pk", "name"))]


def _account_unique(model, account: Account, instance, **lookup) -> bool:
    """Whether another object of `account` already has these values."""
    taken = model.objects.filter(account=account, **lookup)
    return taken.exclude(pk=instance.pk).exists() if instance and instance.pk else taken.exists()


# Contacts ---------------------------------------------------------------------------------


class ContactFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Name or number"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    list = forms.ChoiceField(label=_("In list"), required=False)
    segment = forms.ChoiceField(label=_("In segment"), required=False)

    def __init__(self, *args, account: Account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        lists, segments_ = (
            model.objects.filter(account=account) for model in (ContactList, Segment)
        )
        self.fields["list"].choices = _choices(lists, gettext("Any"))
        self.fields["segment"].choices = _choices(segments_, gettext("Any"))
        self.fields["q"].help_text = gettext("A name, part of one, or a number (%(example)s).") % {
            "example": _example(account)
        }

    def chosen_segment(self) -> Segment | None:
        chosen = self.cleaned_data.get("segment")
        if not chosen:
            return None
        return Segment.objects.filter(account=self.account, pk=int(chosen)).first()

    def filter(self, queryset: QuerySet[Contact]) -> QuerySet[Contact]:
        data = self.cleaned_data
        query = data["q"].strip()
        if query:
            try:
                queryset = queryset.filter(number=phone.normalize(query, self.account.region))
            except ValidationError:
                condition = Q(name__icontains=query)
                digits = re.sub(r"[\s().-]", "", query)
                if SEARCH_DIGITS.fullmatch(digits):
                    condition |= Q(number__contains=digits.lstrip("+"))
                queryset = queryset.filter(condition)
        if data["list"]:
            queryset = queryset.filter(lists=int(data["list"]))
        return queryset


def _example(account: Account) -> str:
    return phone.example(account.region) if account.region else "+33 6 12 34 56 78"


def custom_input(field: ContactField) -> forms.Field:
    """The input of a custom field: typed as the field is; `fields.cast` reads what comes."""
    if field.type == ContactField.Type.NUMBER:
        widget = forms.NumberInput(attrs={"step": "any"})
        help_text = gettext("A number.")
    elif field.type == ContactField.Type.DATE:
        widget = forms.DateInput(attrs={"type": "date"})
        help_text = gettext("A date: 2026-05-31 or 31/05/2026.")
    else:
        widget = forms.TextInput()
        help_text = ""
    return forms.CharField(
        label=field.label, required=False, max_length=500, widget=widget, help_text=help_text
    )


class ContactForm(forms.Form):
    """A contact's number, name, language and one input per custom field of the account."""

    number = forms.CharField(
        label=_("Number"),
        max_length=40,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
        error_messages={"required": _("Enter a phone number.")},
    )
    name = forms.CharField(label=_("Name"), required=False, max_length=200)
    language = forms.CharField(
        label=_("Language"),
        required=False,
        max_length=8,
        help_text=_("e.g. fr, ro, en: which language they read."),
    )

    def __init__(self, *args, account: Account, contact: Contact | None = None, **kwargs):
        self.account, self.contact = account, contact
        self.custom = list(ContactField.objects.filter(account=account))
        if contact is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "number": contact.number,
                "name": contact.name,
                "language": contact.language,
                **{
                    VALUE_PREFIX + key: shown(value)
                    for key, value in (contact.values or {}).items()
                },
            }
        super().__init__(*args, **kwargs)
        self.fields["number"].help_text = phone.help_text(account.region)
        for field in self.custom:
            self.fields[VALUE_PREFIX + field.key] = custom_input(field)

    def clean_number(self) -> str:
        return phone.normalize(self.cleaned_data["number"], self.account.region)

    def clean(self):
        # Every field is checked at once (as the services will check them), so that each
        # error shows at the same time, next to its field.
        data = super().clean()
        for field in self.custom:
            name = VALUE_PREFIX + field.key
            if name in data:
                try:
                    cast(data[name], field.type)
                except ValidationError as error:
                    self.add_error(name, error)
        return data

    def custom_fields(self) -> list[forms.BoundField]:
        return [self[VALUE_PREFIX + field.key] for field in self.custom]

    def save(self) -> Contact | None:
        """The contact saved, or None with the services' errors added to their fields."""
        data = self.cleaned_data
        values = {field.key: data[VALUE_PREFIX + field.key] for field in self.custom}
        try:
            return services.save_contact(
                self.account,
                number=data["number"],
                name=data["name"],
                language=data["language"],
                values=values,
                contact=self.contact,
            )
        except ValidationError as error:
            for key, messages in error.message_dict.items():
                name = VALUE_PREFIX + key.removeprefix("values.") if "." in key else key
                self.add_error(name if name in self.fields else None, messages)
            return None


class IdsField(forms.Field):
    """The ticked checkboxes of a table (`name="contact"`, one per row): their ids."""

    widget = forms.MultipleHiddenInput
    MAX = 1000

    def to_python(self, value) -> list[int]:
        values = value if isinstance(value, list | tuple) else [value] if value else []
        ids = [int(v) for v in values if isinstance(v, str) and v.isascii() and v.isdigit()]
        return [pk for pk in ids if pk < 2**63][: self.MAX]


class ListChoiceForm(forms.Form):
    """Choose one of the account's lists (to add contacts to)."""

    contact_list = forms.ChoiceField(
        label=_("Add to list"), error_messages={"required": _("Choose a list.")}
    )

    def __init__(self, *args, account: Account, exclude: QuerySet | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.account = account
        lists = ContactList.objects.filter(account=account)
        if exclude is not None:
            lists = lists.exclude(pk__in=exclude)
        self.fields["contact_list"].choices = _choices(lists, gettext("Choose a list"))

    def chosen(self) -> ContactList | None:
        chosen = int(self.cleaned_data["contact_list"])
        return ContactList.objects.filter(account=self.account, pk=chosen).first()


class BulkAddForm(ListChoiceForm):
    """The contacts ticked on the contacts page, and the list to add them to."""

    contact = IdsField(
        required=True, error_messages={"required": _("Tick the contacts to add first.")}
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["contact_list"].label = gettext("Add the ticked contacts to")

    def contact_ids(self) -> list[int]:
        return list(
            Contact.objects.filter(
                account=self.account, pk__in=self.cleaned_data["contact"]
            ).values_list("pk", flat=True)
        )


class BulkRemoveForm(forms.Form):
    contact = IdsField(
        required=True, error_messages={"required": _("Tick the contacts to remove first.")}
    )


# Custom fields ----------------------------------------------------------------------------


# ContactField.Type's labels, in the user's language.
FIELD_TYPES = {
    ContactField.Type.TEXT: _("Text"),
    ContactField.Type.NUMBER: _("Number"),
    ContactField.Type.DATE: _("Date"),
}


class FieldForm(forms.ModelForm):
    class Meta:
        model = ContactField
        fields = ["key", "label", "type"]
        labels = {"key": _("Key"), "label": _("Label"), "type": _("Type")}
        help_texts = {
            "key": _(
                "What goes between braces in a text: {first_name}. Lowercase letters, digits "
                "and _. It cannot be changed later."
            ),
            "label": _("How pages and forms name it."),
        }

    def __init__(self, *args, account: Account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        self.fields["key"].widget.attrs.update(autocomplete="off", spellcheck="false")
        self.fields["type"].choices = [(value, FIELD_TYPES[value]) for value in FIELD_TYPES]

    def clean_key(self) -> str:
        key = self.cleaned_data["key"].strip()
        if _account_unique(ContactField, self.account, self.instance, key=key):
            raise ValidationError(
                gettext("This account already has a field “%(key)s”.") % {"key": key}
            )
        return key

    def clean_label(self) -> str:
        label = self.cleaned_data["label"].strip()
        if not label:
            raise ValidationError(gettext("Give the field a label."))
        return label

    def save(self, commit: bool = True) -> ContactField:
        self.instance.account = self.account
        return super().save(commit)


class FieldLabelForm(forms.ModelForm):
    class Meta:
        model = ContactField
        fields = ["label"]
        labels = {"label": _("Label")}
        help_texts = {"label": _("How pages and forms name it.")}

    def clean_label(self) -> str:
        label = self.cleaned_data["label"].strip()
        if not label:
            raise ValidationError(gettext("Give the field a label."))
        return label


# Lists ------------------------------------------------------------------------------------


class ListForm(forms.ModelForm):
    class Meta:
        model = ContactList
        fields = ["name", "description"]
        labels = {"name": _("Name"), "description": _("Description")}

    def __init__(self, *args, account: Account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(gettext("Give the list a name."))
        if _account_unique(ContactList, self.account, self.instance, name__iexact=name):
            raise ValidationError(gettext("This account already has a list with this name."))
        return name

    def save(self, commit: bool = True) -> ContactList:
        self.instance.account = self.account
        return super().save(commit)


# Segments ---------------------------------------------------------------------------------

RULE_PREFIX = re.compile(r"^rule-(\d{1,3})-what$")
DAYS_KINDS = {"replied": "replied_within_days", "no_reply": "no_reply_within_days"}
LIST_KINDS = {"in_list": "in", "not_in_list": "not_in"}
OPT_OUT_KINDS = {"not_opted_out": False, "opted_out": True}
ROW_NAMES = ("what", "op", "value", "list", "days")


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["name"]
        labels = {"name": _("Name")}

    def __init__(self, *args, account: Account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(gettext("Give the segment a name."))
        if _account_unique(Segment, self.account, self.instance, name__iexact=name):
            raise ValidationError(gettext("This account already has a segment with this name."))
        return name

    def save(self, commit: bool = True) -> Segment:
        self.instance.account = self.account
        return super().save(commit)


def what_choices(account: Account, keep: str = "") -> list:
    """What a condition is about, grouped; `keep`: a stored choice no longer offered (a
    deleted field), kept so that the row shows what it was."""
    custom = list(ContactField.objects.filter(account=account).values_list("key", "label"))
    fields = [("field:name", gettext("Name")), ("field:language", gettext("Language"))]
    fields += [(f"field:{key}", label) for key, label in custom]
    offered = {value for value, _ in fields}
    if keep.startswith("field:") and keep not in offered:
        deleted = gettext("%(key)s (deleted field)") % {"key": keep.removeprefix("field:")}
        fields.append((keep, deleted))
    return [
        ("", gettext("Choose…")),
        (gettext("Contact field"), fields),
        (
            gettext("List"),
            [("in_list", gettext("In list")), ("not_in_list", gettext("Not in list"))],
        ),
        (
            gettext("Opt-out"),
            [("not_opted_out", gettext("Not opted out")), ("opted_out", gettext("Opted out"))],
        ),
        (
            gettext("Replies"),
            [
                ("replied", gettext("Replied in the last … days")),
                ("no_reply", gettext("No reply in the last … days")),
            ],
        ),
    ]


# Formatted when shown: in the user's language.
DAYS_ERROR = format_lazy(_("A whole number of days, 1 to {max}."), max=segments.MAX_DAYS)


class RuleForm(forms.Form):
    """One condition row of the segment editor; `rule()` is its JSON for `segments.clean`."""

    what = forms.ChoiceField(
        label=_("Condition"), error_messages={"required": _("Choose a condition.")}
    )
    op = forms.ChoiceField(
        label=_("Comparison"), required=False, choices=list(segments.OP_LABELS.items())
    )
    value = forms.CharField(label=_("Value"), required=False, max_length=500)
    list = forms.ChoiceField(label=_("List"), required=False)
    days = forms.IntegerField(
        label=_("Days"),
        required=False,
        min_value=1,
        max_value=segments.MAX_DAYS,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        error_messages={"invalid": DAYS_ERROR, "min_value": DAYS_ERROR, "max_value": DAYS_ERROR},
    )

    def __init__(self, *args, account: Account, lists: list, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        keep = (self.data.get(self.add_prefix("what")) if self.is_bound else None) or (
            self.initial.get("what", "")
        )
        self.fields["what"].choices = what_choices(account, keep or "")
        number = int(self.prefix.rsplit("-", 1)[-1]) + 1 if self.prefix else 1
        self.fields["what"].label = gettext("Condition %(number)s") % {"number": number}
        self.fields["list"].choices = [("", gettext("Choose a list")), *lists]

    def blank(self) -> bool:
        """A row left without a condition (ignored)."""
        return self.is_bound and not self.data.get(self.add_prefix("what"))

    def clean(self):
        data = super().clean()
        what = data.get("what") or ""
        if what.startswith("field:"):
            if data.get("op") not in ("empty", "set") and not (data.get("value") or "").strip():
                self.add_error(
                    "value", gettext("Give a value to compare with (or use empty / set).")
                )
        elif what in LIST_KINDS and not data.get("list"):
            self.add_error("list", gettext("Choose a list."))
        elif what in DAYS_KINDS and data.get("days") is None and "days" not in self.errors:
            self.add_error("days", str(DAYS_ERROR))
        return data

    def rule(self) -> dict:
        data = self.cleaned_data
        what = data["what"]
        if what.startswith("field:"):
            rule = {"field": what.removeprefix("field:"), "op": data.get("op") or "eq"}
            if rule["op"] not in ("empty", "set"):
                rule["value"] = data["value"].strip()
            return rule
        if what in LIST_KINDS:
            return {"list": int(data["list"]), "op": LIST_KINDS[what]}
        if what in OPT_OUT_KINDS:
            return {"opted_out": OPT_OUT_KINDS[what]}
        return {DAYS_KINDS[what]: data["days"]}


def row_of(rule: dict) -> dict:
    """A stored condition as the editor's row (its initial values)."""
    if "field" in rule:
        return {
            "what": f"field:{rule['field']}",
            "op": rule.get("op", "eq"),
            "value": shown(rule.get("value")),
        }
    if "list" in rule:
        kind = "not_in_list" if rule.get("op") == "not_in" else "in_list"
        return {"what": kind, "list": str(rule["list"])}
    if "opted_out" in rule:
        return {"what": "opted_out" if rule["opted_out"] else "not_opted_out"}
    for kind, name in DAYS_KINDS.items():
        if name in rule:
            return {"what": kind, "days": rule[name]}
    return {}


class RuleRows:
    """The editor's condition rows: from a segment's rules, or as posted (`rule-<n>-what`...);
    rows can be added and removed before the segment is saved. A row left without a condition
    is ignored."""

    def __init__(self, account: Account, rows: list[dict], bound: bool = False) -> None:
        self.account = account
        self.lists = [
            (str(pk), name)
            for pk, name in ContactList.objects.filter(account=account).values_list("pk", "name")
        ]
        self.rows = rows
        self.errors: list[str] = []  # not any one row's (too many conditions)
        data = self._data(rows) if bound else None
        self.forms = [
            RuleForm(
                data,
                prefix=f"rule-{index}",
                account=account,
                lists=self.lists,
                initial=None if bound else row,
            )
            for index, row in enumerate(rows)
        ]

    @staticmethod
    def _data(rows: list[dict]) -> dict:
        data = {}
        for index, row in enumerate(rows):
            data.update({f"rule-{index}-{name}": row.get(name, "") for name in ROW_NAMES})
        return data

    @classmethod
    def from_rules(cls, account: Account, rules) -> "RuleRows":
        return cls(account, [row_of(rule) for rule in rules if isinstance(rule, dict)])

    @classmethod
    def posted(cls, account: Account, data) -> "RuleRows":
        """The rows as posted, renumbered from 0 in their order (a removed row leaves a gap)."""
        indices = sorted(int(match.group(1)) for key in data if (match := RULE_PREFIX.match(key)))[
            : segments.MAX_RULES + 1
        ]
        rows = [{name: data.get(f"rule-{i}-{name}", "") for name in ROW_NAMES} for i in indices]
        return cls(account, rows, bound=True)

    def changed(self, add: bool = False, remove: int | None = None) -> "RuleRows":
        """The rows, one added or removed, without errors shown (they are being written)."""
        rows = [row for index, row in enumerate(self.rows) if index != remove]
        if add and len(rows) < segments.MAX_RULES:
            rows.append({})
        return RuleRows(self.account, rows)

    def rules(self) -> list[dict] | None:
        """The rules of these rows if they are all right, else None; nothing shown changes."""
        return RuleRows(self.account, self.rows, bound=True).clean()

    @property
    def full(self) -> bool:
        return len(self.rows) >= segments.MAX_RULES

    def clean(self) -> list[dict] | None:
        """The rules checked by `segments.clean`, or None with the errors on their rows."""
        used = [form for form in self.forms if not form.blank()]
        if not all(form.is_valid() for form in used):
            return None
        try:
            return segments.clean(self.account, [form.rule() for form in used])
        except ValidationError as error:
            for item in error.error_list:
                index = (item.params or {}).get("index", 0) if item.code == "rule" else 0
                if 1 <= index <= len(used):
                    used[index - 1].add_error(None, item.params["error"])
                else:
                    self.errors.extend(ValidationError(item).messages)
            return None

    def problems(self) -> list[str]:
        """Every error, each saying which condition it is about (beside the live count)."""
        found = list(self.errors)
        for index, form in enumerate(self.forms, start=1):
            if form.is_bound and not form.blank():
                for errors in form.errors.values():
                    found += [
                        gettext("Condition %(number)s: %(error)s")
                        % {"number": index, "error": error}
                        for error in errors
                    ]
        return found


# Templates --------------------------------------------------------------------------------


class TemplateForm(forms.ModelForm):
    class Meta:
        model = Template
        fields = ["name", "text"]
        widgets = {"text": forms.Textarea(attrs={"rows": 5})}
        labels = {"name": _("Name"), "text": _("Text")}
        help_texts = {
            "name": _("How it is chosen in compose and named in the API."),
            "text": _(
                "Merge fields are filled per recipient: {name}, {first_name|there} (a "
                "fallback after |), any custom field by its key."
            ),
        }

    def __init__(self, *args, account: Account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        self.fields["text"].strip = False

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError(gettext("Give the template a name."))
        if _account_unique(Template, self.account, self.instance, name__iexact=name):
            raise ValidationError(gettext("This account already has a template with this name."))
        return name

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if not text.strip():
            raise ValidationError(gettext("Write the text."))
        return text

    def save(self, commit: bool = True) -> Template:
        self.instance.account = self.account
        return super().save(commit)


def unknown_keys(keys, account: Account) -> list[str]:
    """Merge field keys that are neither a contact's own (`name`...) nor a custom field."""
    custom = set(ContactField.objects.filter(account=account).values_list("key", flat=True))
    return sorted(set(keys) - set(BUILT_IN) - custom)
