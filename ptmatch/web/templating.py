"""Template filters and globals: Berlin time, catalogue and state labels, the user's role."""

from __future__ import annotations

import datetime as dt
import warnings

from flask import Flask
from flask_babel import (
    format_date,
    format_datetime,
    format_decimal,
    format_time,
    get_locale,
    gettext,
)
from flask_login import current_user

from ptmatch import catalog, labels
from ptmatch.models import Role


def local_dt(value: dt.datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    if fmt == "short":
        return format_datetime(value, "EEE d.M. HH:mm")
    return format_datetime(value, "EEEE, d. MMMM y, HH:mm")


def local_time(value: dt.datetime | None) -> str:
    return format_time(value, "HH:mm") if value else ""


def local_date(value: dt.date | dt.datetime | None) -> str:
    return format_date(value, "d.M.y") if value else ""


def weekday_short(value: dt.date | None) -> str:
    """ "Sa 28.11." -- on a button, so "Morgen" never hides which day it means."""
    return format_date(value, "EEE d.M.") if value else ""


def km(value: float | None) -> str:
    """A distance in the reader's locale: "0,8 km" in German, "0.8 km" in English."""
    return format_decimal(value, "#,##0.0") + " km" if value is not None else ""


def label(value) -> str:
    """The translated word for a state, kind or modality (ptmatch.labels); '' for None."""
    entry = labels.label_of(value)
    if entry is not None:
        return gettext(entry.text)
    if value is None:
        return ""
    # An error in the tests (warnings are errors there); the raw value for a visitor.
    warnings.warn(f"no label for {value!r}: add it to ptmatch/labels.py", stacklevel=2)
    return str(value)


def badge(value) -> str:
    """The Bootstrap colour of a state's badge (text-bg-<colour>)."""
    entry = labels.label_of(value)
    return entry.badge if entry is not None else "secondary"


def init_app(app: Flask) -> None:
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["badge"] = badge
    app.jinja_env.filters["local_dt"] = local_dt
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["local_date"] = local_date
    app.jinja_env.filters["weekday_short"] = weekday_short
    app.jinja_env.filters["km"] = km
    app.jinja_env.globals["catalog"] = catalog
    app.jinja_env.globals["Role"] = Role
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["has_endpoint"] = lambda name: name in app.view_functions

    @app.context_processor
    def _nav():
        role = current_user.role if getattr(current_user, "is_authenticated", False) else None
        return {"nav_role": role}
