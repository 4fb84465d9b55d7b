"""Shared form base: every text field refuses NUL bytes and control characters with a message;
every int field (IntegerField, a select coerced to int) and every date field refuses values
outside what the database and `datetime` hold (ptmatch.web.bounds), with a field message."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    IntegerField,
    RadioField,
    SelectFieldBase,
    StringField,
    TextAreaField,
)
from wtforms.validators import StopValidation, ValidationError

from ptmatch import localtime
from ptmatch.web import bounds


def _has_bad_chars(value: str, multiline: bool) -> bool:
    allowed = {"\n", "\r", "\t"} if multiline else {"\t"}
    return any((ord(c) < 32 and c not in allowed) or ord(c) == 0x7F for c in value)


class BaseForm(FlaskForm):
    """Adds a control-character check to every string field before its own validators."""

    # Short names for the error summary at the top of the page (_macros.error_summary) where
    # a field's label is a whole sentence, such as a consent.
    summary_labels: ClassVar[dict[str, str]] = {}

    class Meta:
        # WTForms' own messages in the UI language, from a per-locale cache (Flask-WTF's
        # i18n, switched off in create_app, loads the catalogue from disk on every request).
        @property
        def locales(self):
            from flask_babel import get_locale

            return [str(get_locale() or "de")]

        def render_field(self, field, render_kw):
            # A page often holds several forms: the CSRF token and the submit button need no
            # id (no label points at them), and the same id twice is invalid HTML.
            if field.type in ("CSRFTokenField", "SubmitField") and "id" not in render_kw:
                render_kw = {**render_kw, "id": False}
            return super().render_field(field, render_kw)

    def validate(self, extra_validators=None):
        extra = dict(extra_validators or {})
        for name, field in self._fields.items():
            if isinstance(field, StringField | TextAreaField):
                multiline = isinstance(field, TextAreaField)
                extra.setdefault(name, []).insert(0, _no_control_chars(multiline))
            elif isinstance(field, IntegerField | SelectFieldBase | DateField):
                extra.setdefault(name, []).insert(0, _in_bounds)
        return super().validate(extra_validators=extra)


def _no_control_chars(multiline: bool):
    def check(_form, field):
        if isinstance(field.data, str) and _has_bad_chars(field.data, multiline):
            raise ValidationError(_l("Enthält ungültige Zeichen."))

    return check


def _in_bounds(_form, field):
    """Out of range: a message, and the value dropped so that a view reading a filter form's
    data despite its errors never sends it to the database."""
    values = field.data if isinstance(field.data, list | tuple) else [field.data]
    if isinstance(field, DateField):
        bad = any(isinstance(v, dt.date) and not bounds.date_in_range(v) for v in values)
        message = _l("Bitte ein Datum zwischen 1900 und 2199 angeben.")
    else:
        bad = any(
            isinstance(v, int) and not isinstance(v, bool) and not bounds.int_in_range(v)
            for v in values
        )
        message = _l("Diese Zahl liegt außerhalb des gültigen Bereichs.")
    if bad:
        field.data = None
        if field.errors:  # the field's own validators already said what is wrong
            raise StopValidation()
        raise StopValidation(message)


def add_domain_error(form: FlaskForm, error) -> bool:
    """Put a DomainError's message next to its field; returns False if the field is unknown."""
    from flask_babel import gettext

    field = getattr(form, error.field, None) if error.field else None
    if field is None:
        return False
    field.errors = [*list(field.errors or []), error.text(gettext)]
    return True


def add_problems(form: FlaskForm, problems) -> bool:
    """Show the domain's problems of a submitted form (its `..._problems` check, run beside
    the form's own validation so every error comes in one round) next to their fields; a
    field the form's validators already refused keeps that one message, a problem without a
    field becomes a flash. True when there were none."""
    from flask import flash
    from flask_babel import gettext

    for problem in problems:
        field = getattr(form, problem.field, None) if problem.field else None
        if field is None:
            flash(problem.text(gettext), "danger")
        elif not field.errors:
            field.errors = [problem.text(gettext)]
    return not problems


def dst_field() -> RadioField:
    """Which of the two 02:00-03:00 hours on the night the clocks go back: shown by the form's
    template only when it is asked (see `local_start`)."""
    return RadioField(
        _l("Diese Uhrzeit gibt es in dieser Nacht zweimal. Welche ist gemeint?"),
        choices=[
            (str(localtime.SUMMER), _l("Sommerzeit (MESZ, die erste)")),
            (str(localtime.WINTER), _l("Winterzeit (MEZ, die zweite)")),
        ],
        validate_choice=False,
    )


def local_start(day: dt.date, time_field, dst) -> dt.datetime | None:
    """A Berlin date and the time from `time_field` as UTC (ptmatch.localtime); None with a
    message next to the field for a time the clocks skip, or a question in `dst` for a time
    they pass twice."""
    from flask_babel import format_date, gettext

    fold = {str(localtime.SUMMER): localtime.SUMMER, str(localtime.WINTER): localtime.WINTER}
    try:
        return localtime.to_utc(day, time_field.data, fold=fold.get(dst.data))
    except localtime.NonexistentTime:
        time_field.errors = [
            *time_field.errors,
            gettext(
                "Diese Uhrzeit gibt es am %(day)s nicht: die Uhren springen um 2 Uhr auf 3 Uhr "
                "(Sommerzeit). Bitte eine andere Uhrzeit wählen.",
                day=format_date(day, "d.M.y"),
            ),
        ]
    except localtime.AmbiguousTime:
        dst.errors = [
            *dst.errors,
            gettext(
                "Am %(day)s gibt es diese Uhrzeit zweimal (Ende der Sommerzeit). "
                "Bitte Sommerzeit oder Winterzeit wählen.",
                day=format_date(day, "d.M.y"),
            ),
        ]
    return None
