"""`{% load provider_errors %}{{ code|error_meaning }}`: an error code as a sentence for people."""

from django import template

from providers.errors import meaning

register = template.Library()


@register.filter
def error_meaning(code: object) -> str:
    """The sentence for an error code (`providers.errors.meaning`); unknown codes come back as
    the code itself with "(provider's code)"; an empty code as ""."""
    return meaning(code)
