"""Shared form base: every text field refuses NUL bytes and control characters with a message."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import ValidationError


def _has_bad_chars(value: str, multiline: bool) -> bool:
    allowed = {"\n", "\r", "\t"} if multiline else {"\t"}
    return any((ord(c) < 32 and c not in allowed) or ord(c) == 0x7F for c in value)


class BaseForm(FlaskForm):
    """Adds a control-character check to every string field before its own validators."""

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
        return super().validate(extra_validators=extra)


def _no_control_chars(multiline: bool):
    def check(_form, field):
        if isinstance(field.data, str) and _has_bad_chars(field.data, multiline):
            raise ValidationError(_l("Enthält ungültige Zeichen."))

    return check


def add_domain_error(form: FlaskForm, error) -> bool:
    """Put a DomainError's message next to its field; returns False if the field is unknown."""
    from flask_babel import gettext

    field = getattr(form, error.field, None) if error.field else None
    if field is None:
        return False
    field.errors = [*list(field.errors or []), error.text(gettext)]
    return True
