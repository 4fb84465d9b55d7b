"""Forms of the administration: account filters and invitations, assignments, audit filters.
The practice form is the practice area's own (`ptmatch.web.practice.forms.PracticeForm`)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    DateField,
    EmailField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ptmatch.web.forms import BaseForm

REQUIRED = _l("Bitte ausfüllen.")
ROLE_LABELS = [
    SelectChoice("patient", _l("Patient:in")),
    SelectChoice("therapist", _l("Therapeut:in")),
    SelectChoice("secretary", _l("Sekretariat")),
    SelectChoice("admin", _l("Verwaltung")),
]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class UserFilterForm(BaseForm):
    class Meta:
        csrf = False

    q = StringField(_l("E-Mail oder Name"), validators=[Optional(), Length(max=254)])
    role = SelectField(
        _l("Rolle"), choices=[SelectChoice("", _l("alle")), *ROLE_LABELS], default=""
    )


class InviteForm(BaseForm):
    email = EmailField(_l("E-Mail"), validators=[DataRequired(REQUIRED), Length(max=254)])
    display_name = StringField(_l("Name"), validators=[DataRequired(REQUIRED), Length(max=120)])
    role = SelectField(_l("Rolle"), choices=ROLE_LABELS[2:])
    submit = SubmitField(_l("Einladen"))


class AssignForm(BaseForm):
    practice = SelectField(_l("Praxis"), coerce=int, choices=[])
    submit = SubmitField(_l("Zuordnen"))


class ServedForm(BaseForm):
    practices = MultiCheckboxField(_l("Betreute Praxen"), coerce=int, choices=[])
    submit = SubmitField(_l("Speichern"))


class AuditFilterForm(BaseForm):
    class Meta:
        csrf = False

    actor = StringField(
        _l("Wer (E-Mail, Konto-Nr. oder „system“)"), validators=[Optional(), Length(max=254)]
    )
    action = StringField(
        _l("Aktion (Anfang, z. B. „offer.“)"), validators=[Optional(), Length(max=60)]
    )
    patient_id = IntegerField(_l("Patient:in (Nr.)"), validators=[Optional(), NumberRange(min=1)])
    date_from = DateField(_l("Von"), validators=[Optional()])
    date_to = DateField(_l("Bis"), validators=[Optional()])
