"""Local wall-clock time (Europe/Berlin) to UTC: the one place that decides what a time typed
by a person means on a day the clocks change.

- A time the clocks skip (2027-03-28 02:30: at 02:00 they jump to 03:00) does not exist:
  `NonexistentTime`. Never silently moved to 03:30.
- A time the clocks pass twice (2027-10-31 02:30: at 03:00 they go back to 02:00) is
  ambiguous: `AmbiguousTime`, unless the caller says which: `fold=0` the first one (summer
  time, CEST, UTC+2), `fold=1` the second (winter time, CET, UTC+1).

Every view that takes a date and a time from a form converts through `to_utc`. Recurring
wall-clock times (a weekly group session, a slot repeated weekly) use `same_time_weeks_later`.
Weekly rules stored as wall-clock minutes (availability windows, calendar blocks) are never
converted to an instant on entry, so they need no check.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
SUMMER, WINTER = 0, 1  # the `fold` of an ambiguous time: first (CEST) or second (CET) pass


class LocalTimeError(ValueError):
    """A wall-clock time that does not name exactly one instant."""


class NonexistentTime(LocalTimeError):
    """The clocks skip this time (spring forward)."""


class AmbiguousTime(LocalTimeError):
    """The clocks pass this time twice (fall back); say which with `fold`."""


def _round_trips(local: dt.datetime) -> bool:
    back = local.astimezone(dt.UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def is_nonexistent(day: dt.date, time: dt.time, tz: dt.tzinfo = BERLIN) -> bool:
    return not _round_trips(dt.datetime.combine(day, time, tzinfo=tz))


def is_ambiguous(day: dt.date, time: dt.time, tz: dt.tzinfo = BERLIN) -> bool:
    first = dt.datetime.combine(day, time, tzinfo=tz)
    return first.utcoffset() != first.replace(fold=1).utcoffset() and not is_nonexistent(
        day, time, tz
    )


def to_utc(
    day: dt.date, time: dt.time, *, fold: int | None = None, tz: dt.tzinfo = BERLIN
) -> dt.datetime:
    """The instant (UTC) of a wall-clock date and time. Raises NonexistentTime for a skipped
    time, AmbiguousTime for a doubled one unless `fold` (SUMMER or WINTER) says which."""
    time = time.replace(tzinfo=None, fold=0)
    if is_nonexistent(day, time, tz):
        raise NonexistentTime(f"{day} {time} does not exist in {tz}")
    local = dt.datetime.combine(day, time, tzinfo=tz)
    if is_ambiguous(day, time, tz):
        if fold not in (SUMMER, WINTER):
            raise AmbiguousTime(f"{day} {time} occurs twice in {tz}")
        local = local.replace(fold=fold)
    return local.astimezone(dt.UTC)


def same_time_weeks_later(start: dt.datetime, weeks: int, tz: dt.tzinfo = BERLIN) -> dt.datetime:
    """The same wall-clock time `weeks` weeks after `start` (an aware datetime), as UTC. A
    skipped time moves forward by the gap (02:30 → 03:30); a doubled one takes the first."""
    local = start.astimezone(tz).replace(tzinfo=None) + dt.timedelta(weeks=weeks)
    return local.replace(tzinfo=tz).astimezone(dt.UTC)
