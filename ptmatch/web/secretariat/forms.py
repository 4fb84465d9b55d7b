"""Forms of the secretariat console: search, caller registration, write-only intake, call
notes, list choice."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    EmailField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ptmatch.catalog import PROBLEM_AREAS, PTV11_CARE
from ptmatch.domain.patients import Intake
from ptmatch.web.forms import BaseForm
from ptmatch.web.patient.forms import ProfileForm

REQUIRED = _l("Bitte ausfüllen.")


def _choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(code, _l(label)) for code, label in pairs]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SearchForm(BaseForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField(
        _l("Name, Telefon, E-Mail oder Geburtsdatum"),
        validators=[Optional(), Length(max=200)],
        render_kw={"autocomplete": "off", "autofocus": True},
    )


# The patient's own form speaks in the first person ("So weit kann ich fahren"); on the
# secretariat's screen the same fields speak about the caller.
CALLER_LABELS = {
    "max_distance_km": _l("So weit kann die Person fahren (km)"),
    "therapist_gender_wish": _l("Die Person wünscht sich"),
    "availability": _l("Wann kann die Person Termine wahrnehmen?"),
}


class CallerProfileForm(ProfileForm):
    """The patient area's profile form, labelled for someone else's data."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, text in CALLER_LABELS.items():
            getattr(self, name).label.text = text


class RegisterCallerForm(CallerProfileForm):
    """The patient area's profile form (with the availability grid) plus what the phone adds."""

    email = EmailField(
        _l("E-Mail (vorgelesen und bestätigt; optional)"),
        validators=[Optional(), Length(max=254)],
        render_kw={"inputmode": "email", "autocomplete": "off"},
    )
    consent_health = BooleanField(
        _l(
            "Die Person hat mündlich eingewilligt, dass ihre Gesundheitsangaben für die "
            "Vermittlung verarbeitet und den Praxen ihrer Wartelisten gezeigt werden."
        )
    )
    consent_rules = BooleanField(
        _l("Die Person kennt die Absage- und Ausfallregeln der Praxen und ist einverstanden.")
    )
    submit = SubmitField(_l("Anrufer:in registrieren"))
    summary_labels = {
        "consent_health": _l("Mündliche Einwilligung: Gesundheitsangaben"),
        "consent_rules": _l("Absage- und Ausfallregeln"),
    }

    def caller(self, profile) -> dict:
        """What `secretariat.caller_problems` and `register_caller` take."""
        return dict(
            profile=profile,
            email=self.email.data or "",
            consent_health=bool(self.consent_health.data),
            consent_rules=bool(self.consent_rules.data),
        )


class IntakeForm(BaseForm):
    """Never pre-filled: the secretariat writes the intake and cannot read it back."""

    problems = MultiCheckboxField(
        _l("Anliegen (laut Anrufer:in)"), choices=_choices(PROBLEM_AREAS.choices())
    )
    description = TextAreaField(
        _l("Beschreibung in eigenen Worten"),
        validators=[Optional(), Length(max=4000)],
        render_kw={"rows": 5, "autocomplete": "off"},
    )
    urgent = BooleanField(_l("PTV 11: Behandlung zeitnah erforderlich"))
    urgency_code = StringField(
        _l("Dringlichkeitscode (PTV 11)"),
        validators=[Optional(), Length(max=20)],
        render_kw={"autocomplete": "off"},
    )
    ptv11_care = SelectField(
        _l("Empfohlene Behandlung laut PTV 11"), choices=_choices(PTV11_CARE), default=""
    )
    submit = SubmitField(_l("Erfassen"))

    def intake(self) -> Intake:
        return Intake(
            problems=list(self.problems.data or []),
            description=self.description.data or "",
            urgent=bool(self.urgent.data),
            urgency_code=self.urgency_code.data or "",
            ptv11_care=self.ptv11_care.data or "",
        )


class CallNoteForm(BaseForm):
    text = TextAreaField(
        _l("Notiz zum Anruf (keine Gesundheitsangaben)"),
        validators=[DataRequired(REQUIRED), Length(max=1000)],
        render_kw={"rows": 2},
    )
    submit = SubmitField(_l("Notiz speichern"))


class CallOutcomeForm(BaseForm):
    """The outcome of a call: the button pressed names it (checked by the domain)."""

    outcome = StringField(validators=[DataRequired(), Length(max=24)])


class ListForm(BaseForm):
    practice = SelectField(_l("Warteliste"), choices=[], validate_choice=True)
    submit = SubmitField(_l("Eintragen"))
