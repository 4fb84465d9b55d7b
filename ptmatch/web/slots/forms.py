"""The slot form (phone first: quick day buttons, everything else prefilled) and the manual pick."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    DateField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    SubmitField,
    TimeField,
)
from wtforms.validators import DataRequired, InputRequired, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ptmatch import labels
from ptmatch.models import Modality, OfferMode, SlotKind
from ptmatch.web.forms import BaseForm, dst_field

REQUIRED = _l("Bitte ausfüllen.")
MODALITY_CHOICES = [(m.value, _l(labels.msgid(m))) for m in Modality]
MODE_CHOICES = [
    (OfferMode.AUTO.value, _l("Automatisch anbieten")),
    (OfferMode.MANUAL.value, _l("Selbst auswählen")),
]


class SlotForm(BaseForm):
    therapist = SelectField(_l("Für"), coerce=int, validators=[Optional()])  # secretariat only
    start_time = TimeField(_l("Beginn"), validators=[InputRequired(REQUIRED)])
    day = DateField(_l("Datum"), validators=[Optional()])
    dst = dst_field()  # asked only when the time occurs twice that night
    minutes = IntegerField(
        _l("Dauer (Minuten)"), validators=[InputRequired(REQUIRED), NumberRange(25, 180)]
    )
    kind = SelectField(
        _l("Art"),
        choices=[(k.value, _l(labels.msgid(k))) for k in SlotKind],
        default="sprechstunde",
    )
    modality = SelectField(_l("Form"), choices=MODALITY_CHOICES, default=Modality.IN_PERSON.value)
    # In person: 0 = the therapist's room or the first free one (issue 19).
    room = SelectField(_l("Raum"), coerce=int, default=0, validators=[Optional()])
    mode = RadioField(
        _l("Angebot"),
        choices=MODE_CHOICES,
        default=OfferMode.AUTO.value,
        validators=[DataRequired(REQUIRED)],
    )
    today = SubmitField(_l("Heute"))
    tomorrow = SubmitField(_l("Morgen"))
    on_day = SubmitField(_l("Am gewählten Datum"))


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PickForm(BaseForm):
    """Manual mode: the ticked candidates (ids checked again by the domain)."""

    patients = MultiCheckboxField(
        _l("Auswahl"),
        coerce=int,
        validate_choice=False,
        validators=[DataRequired(_l("Bitte mindestens eine Person auswählen."))],
    )


class ConfirmForm(BaseForm):
    """One-click actions (cancel, attended, release): the CSRF token is all it carries."""
