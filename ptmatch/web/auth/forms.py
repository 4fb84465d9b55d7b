"""Auth forms."""

from flask_babel import lazy_gettext as _l
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from ptmatch.web.forms import BaseForm


class LoginForm(BaseForm):
    email = StringField(
        _l("E-Mail"),
        validators=[DataRequired(_l("Bitte ausfüllen.")), Length(max=254)],
        render_kw={"autocomplete": "username", "inputmode": "email"},
    )
    password = PasswordField(
        _l("Passwort"),
        validators=[DataRequired(_l("Bitte ausfüllen.")), Length(max=128)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField(_l("Anmelden"))


class CodeForm(BaseForm):
    code = StringField(
        _l("Code"),
        validators=[DataRequired(_l("Bitte ausfüllen.")), Length(max=40)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True},
    )
    submit = SubmitField(_l("Bestätigen"))


class PasswordChangeForm(BaseForm):
    current_password = PasswordField(
        _l("Aktuelles Passwort"),
        validators=[DataRequired(_l("Bitte ausfüllen.")), Length(max=128)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        _l("Neues Passwort (10–128 Zeichen)"),
        validators=[DataRequired(_l("Bitte ausfüllen."))],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField(_l("Passwort ändern"))


class SetPasswordForm(BaseForm):
    new_password = PasswordField(
        _l("Neues Passwort (10–128 Zeichen)"),
        validators=[DataRequired(_l("Bitte ausfüllen."))],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField(_l("Passwort festlegen"))


class EmailForm(BaseForm):
    email = StringField(
        _l("E-Mail"),
        validators=[DataRequired(_l("Bitte ausfüllen.")), Length(max=254)],
        render_kw={"autocomplete": "email", "inputmode": "email"},
    )
    submit = SubmitField(_l("Link senden"))
