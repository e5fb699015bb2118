"""The range of times the hub takes from outside: the API, staff forms and providers.

Python's datetime ends at year 9999 and starts at year 1: a time near either end cannot be moved
to another time zone, so one stored as given would break every page that shows it. So:

- a time to send (`send_at`, a window's end) is at most `MAX_AHEAD` from now;
- a filter (`since`) is clamped to `EARLIEST` … `LATEST`, where the hub holds nothing;
- a day filter of the staff UI is a day of `EARLIEST_DAY` … `LATEST_DAY`;
- a time a provider reports beyond `CLOCK_SKEW` ahead, or before 2000, is not believed.
"""

from datetime import UTC, date, datetime, timedelta

from django.utils.translation import gettext, gettext_lazy

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2099, 12, 31)
# A campaign is planned a few months ahead, not years: further is a typing error.
MAX_AHEAD = timedelta(days=366)
# A provider's clock may run a little fast; a report from further in the future is not.
CLOCK_SKEW = timedelta(days=1)

# Lazy: the staff pages show it in the user's language, the API (no LocaleMiddleware) in English.
TOO_FAR = gettext_lazy("Too far ahead: choose a time within a year from now.")


def _comparable(value: datetime) -> datetime:
    """`value` as it is, a naive one as if in UTC: near `EARLIEST` or `LATEST` a day either
    way matters not, and a naive time near year 1 or 9999 cannot be placed in a time zone."""
    return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)


def too_far(value: datetime, now: datetime) -> bool:
    """Whether `value` is further ahead than a time to send may be."""
    return _comparable(value) > now + MAX_AHEAD


def long_past(value: datetime) -> bool:
    return _comparable(value) < EARLIEST


def clamp(value: datetime) -> datetime:
    """A filter time within `EARLIEST` … `LATEST` (compared without moving it to UTC)."""
    if long_past(value):
        return EARLIEST
    return LATEST if _comparable(value) > LATEST else value


def day_problem(value: date) -> str:
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        return gettext("Choose a day from %(first)s to %(last)s.") % {
            "first": EARLIEST_DAY.year,
            "last": LATEST_DAY.year,
        }
    return ""


def believable(value: datetime | None, now: datetime) -> datetime | None:
    """A time a provider reported, or None (the hub then uses the time received) when it lies
    outside 2000 … now + `CLOCK_SKEW`."""
    if value is None or not EARLIEST <= _comparable(value) <= now + CLOCK_SKEW:
        return None
    return value
