"""Custom field values: read from what people type or import, stored as JSON, shown back."""

import datetime
import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .models import ContactField

Type = ContactField.Type
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y")
MAX_TEXT = 500


def cast(raw: str, type_: str) -> str | int | float | None:
    """The value to store for `raw` in a field of `type_`; None when `raw` is empty (the field
    is then left without a value). Raises ValidationError saying what was expected."""
    value = (raw or "").strip()
    if not value:
        return None
    if type_ == Type.NUMBER:
        try:
            number = Decimal(value.replace(" ", "").replace("\u00a0", "").replace(",", "."))
        except InvalidOperation:
            raise ValidationError(_("“%(value)s” is not a number.") % {"value": value}) from None
        if not number.is_finite() or abs(number) >= 10**15:
            raise ValidationError(
                _("“%(value)s” is not a number this field can keep.") % {"value": value}
            )
        return int(number) if number == number.to_integral_value() else float(number)
    if type_ == Type.DATE:
        for fmt in DATE_FORMATS:
            try:
                return datetime.datetime.strptime(value, fmt).date().isoformat()
            except ValueError:
                continue
        raise ValidationError(
            _("“%(value)s” is not a date: write it 2026-05-31 or 31/05/2026.") % {"value": value}
        )
    if len(value) > MAX_TEXT:
        raise ValidationError(_("At most %(n)s characters.") % {"n": MAX_TEXT})
    if "\x00" in value:
        raise ValidationError(_("The NUL character is not allowed."))
    return value


def shown(value) -> str:
    """A stored value as text (in a message, a page or an export)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return re.sub(r"\.?0+$", "", f"{value:.6f}")
    return str(value)
