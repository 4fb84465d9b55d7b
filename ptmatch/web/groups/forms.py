"""Forms of the group area: a new group programme, a weekly calendar block."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ptmatch import labels
from ptmatch.catalog import METHODS, PROBLEM_AREAS
from ptmatch.domain.calendar_rules import WEEKDAYS
from ptmatch.models import Modality
from ptmatch.web.forms import BaseForm, dst_field

REQUIRED = _l("Bitte ausfüllen.")
MODALITIES = [(m.value, _l(labels.msgid(m))) for m in Modality]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class GroupForm(BaseForm):
    title = StringField(
        _l("Titel (nur für die Praxis sichtbar und im Angebot)"),
        validators=[DataRequired(REQUIRED), Length(max=200)],
        render_kw={"placeholder": _l("z. B. DBT-Skillsgruppe")},
    )
    method = SelectField(
        _l("Verfahren / Methode"),
        choices=[("", _l("– keine Angabe –"))] + [(c, _l(label)) for c, label in METHODS.choices()],
        default="",
    )
    problems = MultiCheckboxField(
        _l("Schwerpunkt (nur passende Patient:innen bekommen ein Angebot)"),
        choices=[(c, _l(label)) for c, label in PROBLEM_AREAS.choices()],
    )
    modality = SelectField(_l("Form"), choices=MODALITIES, default="in_person")
    start_date = DateField(_l("Erster Termin: Datum"), validators=[InputRequired(REQUIRED)])
    start_time = TimeField(_l("Uhrzeit"), validators=[InputRequired(REQUIRED)])
    dst = dst_field()  # asked only when the time occurs twice that night
    session_count = IntegerField(
        _l("Anzahl wöchentlicher Termine"),
        default=10,
        validators=[InputRequired(REQUIRED), NumberRange(1, 52)],
    )
    minutes = IntegerField(
        _l("Dauer je Termin (Minuten)"),
        default=100,
        validators=[InputRequired(REQUIRED), NumberRange(30, 240)],
    )
    min_participants = IntegerField(
        _l("Mindestens Teilnehmende"),
        default=5,
        validators=[InputRequired(REQUIRED), NumberRange(2, 30)],
    )
    max_participants = IntegerField(
        _l("Höchstens Teilnehmende"),
        default=10,
        validators=[InputRequired(REQUIRED), NumberRange(2, 30)],
    )
    # In person: 0 = the therapist's room or the first free one that holds the maximum.
    room = SelectField(_l("Raum"), coerce=int, default=0, validators=[Optional()])
    self_enrol = BooleanField(
        _l("Passende Patient:innen dürfen sich selbst anmelden"), default=True
    )
    submit = SubmitField(_l("Gruppe anlegen und Angebote senden"))


class BlockForm(BaseForm):
    weekday = SelectField(
        _l("Wochentag"), coerce=int, choices=[(i, _l(day)) for i, day in enumerate(WEEKDAYS)]
    )
    start_time = TimeField(_l("Von"), validators=[InputRequired(REQUIRED)])
    end_time = TimeField(_l("Bis"), validators=[InputRequired(REQUIRED)])
    modality = SelectField(_l("Form"), choices=MODALITIES, default="video")
    room = SelectField(_l("Raum (nur Präsenz)"), coerce=int, default=0, validators=[Optional()])
    submit = SubmitField(_l("Block hinzufügen"))


class CancelGroupForm(BaseForm):
    reason = TextAreaField(
        _l("Grund (bleibt in der Praxis, geht nicht per E-Mail hinaus)"),
        validators=[DataRequired(REQUIRED), Length(max=500)],
    )
    confirm = BooleanField(
        _l("Ja, die Gruppe absagen und alle Angemeldeten benachrichtigen"),
        validators=[DataRequired(_l("Bitte bestätigen Sie die Absage."))],
    )
    submit = SubmitField(_l("Gruppe absagen"))
