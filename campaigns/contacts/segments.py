"""Segments: saved filters over an account's contacts, found anew each time they are used.

A segment's `rules` is a list of conditions; a contact is in the segment when it meets all
of them. Each condition is a JSON object, one of:

- `{"field": KEY, "op": OP, "value": V}`: a contact field, `name`, `language` or a custom
  field's key. OP is `eq`, `ne`, `contains`, `starts` (text), `gt`, `lt` (numbers and dates),
  `empty` or `set` (no value needed).
- `{"list": LIST_ID}` or `{"list": LIST_ID, "op": "not_in"}`: in (or not in) a list.
- `{"opted_out": false}` (or true): whether the number opted out of this account.
- `{"replied_within_days": N}` or `{"no_reply_within_days": N}`: replied (or not) in the last
  N days.

`clean` checks rules against the account (a field it defines, a list of its own) and says
what is wrong; `contacts` gives the queryset.
"""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from campaigns.models import Account, OptOut, Reply

from .fields import cast
from .models import Contact, ContactField, ContactList

TEXT_OPS = {"eq", "ne", "contains", "starts", "empty", "set"}
ORDERED_OPS = {"eq", "ne", "gt", "lt", "empty", "set"}
OP_LABELS = {
    "eq": _("is"),
    "ne": _("is not"),
    "contains": _("contains"),
    "starts": _("starts with"),
    "gt": _("is after / more than"),
    "lt": _("is before / less than"),
    "empty": _("is empty"),
    "set": _("is set"),
}
BUILT_IN_FIELDS = {"name": _("Name"), "language": _("Language")}
MAX_RULES = 20
MAX_DAYS = 3650


def _field_types(account: Account) -> dict[str, str]:
    types = {key: ContactField.Type.TEXT for key in BUILT_IN_FIELDS}
    types.update(ContactField.objects.filter(account=account).values_list("key", "type"))
    return types


def clean(account: Account, rules) -> list[dict]:
    """`rules` checked and normalised (values cast to their field's type); raises
    ValidationError with one message per rule at fault (`Rule 2: ...`, code "rule", its params
    the rule's `index` and its `error`)."""
    if not isinstance(rules, list):
        raise ValidationError(gettext("Rules are a list of conditions."))
    if len(rules) > MAX_RULES:
        raise ValidationError(gettext("At most %(count)s conditions.") % {"count": MAX_RULES})
    types = _field_types(account)
    lists = None
    cleaned, errors = [], []
    for index, rule in enumerate(rules, start=1):
        try:
            if not isinstance(rule, dict):
                raise ValidationError(gettext("A condition is an object."))
            if "field" in rule:
                cleaned.append(_clean_field(rule, types))
            elif "list" in rule:
                if lists is None:
                    lists = set(
                        ContactList.objects.filter(account=account).values_list("pk", flat=True)
                    )
                cleaned.append(_clean_list(rule, lists))
            elif "opted_out" in rule:
                if not isinstance(rule["opted_out"], bool):
                    raise ValidationError(gettext("opted_out is true or false."))
                cleaned.append({"opted_out": rule["opted_out"]})
            elif "replied_within_days" in rule or "no_reply_within_days" in rule:
                name = (
                    "replied_within_days"
                    if "replied_within_days" in rule
                    else ("no_reply_within_days")
                )
                days = rule[name]
                if (
                    not isinstance(days, int)
                    or isinstance(days, bool)
                    or not (1 <= days <= MAX_DAYS)
                ):
                    raise ValidationError(
                        gettext("%(name)s is a whole number of days, 1 to %(max)s.")
                        % {"name": name, "max": MAX_DAYS}
                    )
                cleaned.append({name: days})
            else:
                raise ValidationError(
                    gettext(
                        "Unknown condition: use field, list, opted_out, replied_within_days or "
                        "no_reply_within_days."
                    )
                )
        except ValidationError as error:
            errors.append(
                ValidationError(
                    gettext("Rule %(index)s: %(error)s"),
                    code="rule",
                    params={"index": index, "error": " ".join(error.messages)},
                )
            )
    if errors:
        raise ValidationError(errors)
    return cleaned


def _clean_field(rule: dict, types: dict[str, str]) -> dict:
    key, op = rule.get("field"), rule.get("op", "eq")
    if key not in types:
        raise ValidationError(gettext("No contact field “%(key)s” in this account.") % {"key": key})
    type_ = types[key]
    allowed = TEXT_OPS if type_ == ContactField.Type.TEXT else ORDERED_OPS
    if op not in allowed:
        raise ValidationError(
            gettext("“%(op)s” does not apply to this field: use %(ops)s.")
            % {"op": op, "ops": ", ".join(sorted(allowed))}
        )
    if op in {"empty", "set"}:
        return {"field": key, "op": op}
    value = rule.get("value")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValidationError(gettext("Give a value to compare with."))
    typed = cast(str(value), type_)
    if typed is None:
        raise ValidationError(gettext("Give a value to compare with (or use empty / set)."))
    return {"field": key, "op": op, "value": typed}


def _clean_list(rule: dict, lists: set[int]) -> dict:
    op = rule.get("op", "in")
    if op not in {"in", "not_in"}:
        raise ValidationError(gettext("A list condition is in or not_in."))
    if not isinstance(rule["list"], int) or rule["list"] not in lists:
        raise ValidationError(gettext("No such list in this account."))
    return {"list": rule["list"], "op": op}


def contacts(account: Account, rules: list[dict], now=None) -> QuerySet[Contact]:
    """The account's contacts meeting every one of `rules` (already `clean`)."""
    now = now or timezone.now()
    queryset = Contact.objects.filter(account=account)
    for rule in rules:
        queryset = queryset.filter(_condition(account, rule, now))
    return queryset


def _condition(account: Account, rule: dict, now) -> Q:
    if "field" in rule:
        return _field_condition(rule)
    if "list" in rule:
        member = Q(lists=rule["list"])
        if rule["op"] == "in":
            return Q(pk__in=Contact.objects.filter(member).values("pk"))
        return ~Q(pk__in=Contact.objects.filter(member).values("pk"))
    if "opted_out" in rule:
        opted = Exists(OptOut.objects.filter(account=account, number=OuterRef("number")))
        return Q(opted) if rule["opted_out"] else ~Q(opted)
    name = "replied_within_days" if "replied_within_days" in rule else "no_reply_within_days"
    replied = Exists(
        Reply.objects.filter(
            account=account,
            from_number=OuterRef("number"),
            received_at__gte=now - timedelta(days=rule[name]),
        )
    )
    return Q(replied) if name == "replied_within_days" else ~Q(replied)


def _field_condition(rule: dict) -> Q:
    key, op = rule["field"], rule["op"]
    path = key if key in BUILT_IN_FIELDS else f"values__{key}"
    value = rule.get("value")
    if key in BUILT_IN_FIELDS:
        empty = Q(**{path: ""})
    else:
        empty = Q(**{f"{path}__isnull": True}) | Q(**{path: ""})
    if op == "empty":
        return empty
    if op == "set":
        return ~empty
    if op == "eq":
        return Q(**{f"{path}__iexact" if isinstance(value, str) else path: value})
    if op == "ne":
        same = Q(**{f"{path}__iexact" if isinstance(value, str) else path: value})
        return ~same | empty
    if op == "contains":
        return Q(**{f"{path}__icontains": value})
    if op == "starts":
        return Q(**{f"{path}__istartswith": value})
    return Q(**{f"{path}__{op}": value})


def describe(account: Account, rules: list[dict]) -> list[str]:
    """Each condition in words (`city is Lyon`, `not opted out`), for pages."""
    labels = dict(BUILT_IN_FIELDS)
    labels.update(ContactField.objects.filter(account=account).values_list("key", "label"))
    names = dict(ContactList.objects.filter(account=account).values_list("pk", "name"))
    words = []
    for rule in rules:
        if "field" in rule:
            label = labels.get(rule["field"], rule["field"])
            value = f" {rule['value']}" if "value" in rule else ""
            words.append(f"{label} {OP_LABELS[rule['op']]}{value}")
        elif "list" in rule:
            name = names.get(rule["list"]) or gettext("a deleted list")
            if rule["op"] == "in":
                words.append(gettext("in list “%(name)s”") % {"name": name})
            else:
                words.append(gettext("not in list “%(name)s”") % {"name": name})
        elif "opted_out" in rule:
            words.append(gettext("opted out") if rule["opted_out"] else gettext("not opted out"))
        elif "replied_within_days" in rule:
            days = rule["replied_within_days"]
            words.append(
                ngettext(
                    "replied in the last %(days)s day", "replied in the last %(days)s days", days
                )
                % {"days": days}
            )
        else:
            days = rule["no_reply_within_days"]
            words.append(
                ngettext(
                    "no reply in the last %(days)s day", "no reply in the last %(days)s days", days
                )
                % {"days": days}
            )
    return words
