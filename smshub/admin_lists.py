"""Admin change lists that answer a bad address as one, never with a 500."""

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList


class DateSafeChangeList(ChangeList):
    """The date drill-down steps past the date in the address (a year, a month, a day on): at
    year 9999 that step is beyond what Python's dates hold. Such an address is the admin's own
    "bad lookup" (a redirect to `?e=1`), as a date that does not exist already is."""

    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc


class DateSafeMixin:
    """For a ModelAdmin with `date_hierarchy`."""

    def get_changelist(self, request, **kwargs):
        return DateSafeChangeList
