"""Numbers and dates from outside (URL, query string, form) stay inside what the database and
`datetime` can hold, so no input reaches PostgreSQL's "integer out of range" or an
OverflowError: an id in the URL beyond the column's range is a 404, an int form field out of
range gets a field message, `page` is clamped, a date outside DATE_MIN..DATE_MAX gets a message.
"""

from __future__ import annotations

import datetime as dt

from flask import request
from werkzeug.routing import IntegerConverter

# Every id column is a PostgreSQL `integer` (serial): 1 .. 2**31 - 1.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
ID_MIN = 1
# A page number beyond any real list: OFFSET (page - 1) * per_page stays far below bigint.
PAGE_MAX = 100_000
# Dates anyone types on purpose; also keeps date ± a few days and local → UTC in range.
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2199, 12, 31)


class IdConverter(IntegerConverter):
    """`<int:...>` everywhere (registered app-wide under the name `int`): only the range of an
    id column matches, so 0 and 2147483648 are a 404 like any unknown id."""

    def __init__(self, map, fixed_digits=0, min=ID_MIN, max=INT_MAX, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def install(app) -> None:
    """Replace Werkzeug's unbounded `int` converter; before any blueprint adds its rules."""
    app.url_map.converters["int"] = IdConverter


def int_in_range(value: int) -> bool:
    return INT_MIN <= value <= INT_MAX


def date_in_range(value: dt.date) -> bool:
    return DATE_MIN <= value <= DATE_MAX


def page_arg(name: str = "page") -> int:
    """The 1-based page number from the query string, clamped to 1..PAGE_MAX."""
    page = request.args.get(name, 1, type=int) or 1
    return min(max(page, 1), PAGE_MAX)


def date_arg(name: str, default: dt.date) -> tuple[dt.date, bool]:
    """A date from the query string: (the date, True) if it parses and lies in DATE_MIN..DATE_MAX,
    else (default, False) so that the view can say so."""
    raw = request.args.get(name, "")
    if not raw:
        return default, True
    try:
        value = dt.date.fromisoformat(raw)
    except ValueError:
        return default, False
    return (value, True) if date_in_range(value) else (default, False)
