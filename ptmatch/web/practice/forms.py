"""Forms of the practice area: sign-up, both profiles, the workbench filters and entry actions."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ptmatch.catalog import GENDERS, INSURANCES, LANGUAGES, METHODS, POPULATIONS, PROBLEM_AREAS
from ptmatch.domain.workbench import PRIORITIES, REMOVE_REASONS
from ptmatch.web.forms import BaseForm

REQUIRED = _l("Bitte ausfüllen.")


def _choices(pairs):
    return [(code, _l(label)) for code, label in pairs]


class MultiCheckboxField(SelectMultipleField):
    """A catalogue as a list of checkboxes (rendered by practice/_fields.html)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SignupForm(BaseForm):
    display_name = StringField(
        _l("Name"),
        validators=[DataRequired(REQUIRED), Length(max=120)],
        render_kw={"autocomplete": "name"},
    )
    title = StringField(_l("Titel (optional)"), validators=[Optional(), Length(max=60)])
    gender = SelectField(_l("Geschlecht"), choices=_choices(GENDERS), default="x")
    email = EmailField(
        _l("E-Mail"),
        validators=[DataRequired(REQUIRED), Length(max=254)],
        render_kw={"autocomplete": "email", "inputmode": "email"},
    )
    password = PasswordField(
        _l("Passwort (10–128 Zeichen)"),
        validators=[DataRequired(REQUIRED), Length(max=128)],
        render_kw={"autocomplete": "new-password"},
    )
    password_repeat = PasswordField(
        _l("Passwort wiederholen"),
        validators=[
            DataRequired(REQUIRED),
            EqualTo("password", _l("Die Passwörter stimmen nicht überein.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    approbation = StringField(
        _l("Approbation (Berufsbezeichnung, Behörde, Jahr)"),
        validators=[DataRequired(REQUIRED), Length(max=200)],
    )
    lanr = StringField(
        _l("LANR (falls vorhanden, 9 Ziffern)"),
        validators=[Optional(), Length(max=12)],
        render_kw={"inputmode": "numeric"},
    )
    submit = SubmitField(_l("Zugang beantragen"))


class PracticeForm(BaseForm):
    name = StringField(_l("Name der Praxis"), validators=[DataRequired(REQUIRED), Length(max=200)])
    street = StringField(_l("Straße und Hausnummer"), validators=[Optional(), Length(max=200)])
    postcode = StringField(
        _l("Postleitzahl"),
        validators=[Optional(), Length(max=10)],
        render_kw={"inputmode": "numeric"},
    )
    city = StringField(_l("Ort"), validators=[Optional(), Length(max=120)])
    phone = StringField(
        _l("Telefon"), validators=[Optional(), Length(max=40)], render_kw={"inputmode": "tel"}
    )
    website = StringField(
        _l("Webseite"), validators=[Optional(), Length(max=300)], render_kw={"inputmode": "url"}
    )
    booking_info = TextAreaField(
        _l("Hinweise für gebuchte Patient:innen (Anfahrt, Mitzubringendes)"),
        validators=[Optional(), Length(max=4000)],
        render_kw={"rows": 4},
    )
    cancellation_policy = TextAreaField(
        _l("Absage- und Ausfallregeln"),
        validators=[Optional(), Length(max=4000)],
        render_kw={"rows": 3},
    )
    video_link_template = StringField(
        _l("Link zum Videoraum (Platzhalter {slot_id} und {token} möglich)"),
        validators=[Optional(), Length(max=300)],
        render_kw={"inputmode": "url"},
    )
    accepts_pool = BooleanField(_l("Patient:innen aus dem regionalen Pool annehmen"))
    submit = SubmitField(_l("Speichern"))


class TherapistProfileForm(BaseForm):
    title = StringField(_l("Titel"), validators=[Optional(), Length(max=60)])
    gender = SelectField(_l("Geschlecht"), choices=_choices(GENDERS))
    methods = MultiCheckboxField(_l("Verfahren und Methoden"), choices=_choices(METHODS.choices()))
    specialties = MultiCheckboxField(_l("Schwerpunkte"), choices=_choices(PROBLEM_AREAS.choices()))
    exclusions = MultiCheckboxField(
        _l("Ausschlüsse (behandle ich nicht)"), choices=_choices(PROBLEM_AREAS.choices())
    )
    populations = MultiCheckboxField(_l("Zielgruppen"), choices=_choices(POPULATIONS.choices()))
    languages = MultiCheckboxField(_l("Sprachen"), choices=_choices(LANGUAGES.choices()))
    insurances = MultiCheckboxField(_l("Versicherungen"), choices=_choices(INSURANCES.choices()))
    offers_in_person = BooleanField(_l("Präsenz"))
    offers_video = BooleanField(_l("Video"))
    offers_group = BooleanField(_l("Gruppe"))
    session_minutes = IntegerField(
        _l("Sitzungsdauer (Minuten, 25–120)"), validators=[InputRequired(REQUIRED)]
    )
    buffer_minutes = IntegerField(
        _l("Puffer zwischen Sitzungen (Minuten, 0–60)"), validators=[InputRequired(REQUIRED)]
    )
    switch_buffer_minutes = IntegerField(
        _l("Zusätzlicher Puffer beim Wechsel Video/Präsenz (Minuten, 0–60)"),
        validators=[InputRequired(REQUIRED)],
    )
    submit = SubmitField(_l("Speichern"))


ANY = [("", _l("egal"))]
PREFERENCE_CHOICES = [
    ("", _l("egal")),
    ("ok", _l("gewünscht oder möglich")),
    ("wanted", _l("gewünscht")),
]


class FilterForm(BaseForm):
    """GET filters of the workbench (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    q = StringField(
        _l("Suche im Anliegen"),
        validators=[Optional(), Length(max=100)],
        render_kw={"type": "search"},
    )
    age_min = IntegerField(
        _l("Alter von"),
        validators=[Optional(), NumberRange(0, 120)],
        render_kw={"inputmode": "numeric"},
    )
    age_max = IntegerField(
        _l("Alter bis"),
        validators=[Optional(), NumberRange(0, 120)],
        render_kw={"inputmode": "numeric"},
    )
    gender = SelectField(_l("Geschlecht"), choices=ANY + _choices(GENDERS), default="")
    problems = MultiCheckboxField(
        _l("Problembereiche (mindestens einer)"), choices=_choices(PROBLEM_AREAS.choices())
    )
    fits_profile = BooleanField(_l("Passt zu meinem Profil (Schwerpunkt, kein Ausschluss)"))
    group = SelectField(_l("Gruppe"), choices=PREFERENCE_CHOICES, default="")
    video = SelectField(_l("Video"), choices=PREFERENCE_CHOICES, default="")
    urgent = BooleanField(_l("Dringend (PTV 11)"))
    insurance = SelectField(
        _l("Versicherung"), choices=ANY + _choices(INSURANCES.choices()), default=""
    )
    via_link = BooleanField(_l("Über den Praxislink angemeldet"))
    waiting_from = DateField(_l("Auf der Liste seit (frühestens)"), validators=[Optional()])
    waiting_to = DateField(_l("Auf der Liste seit (spätestens)"), validators=[Optional()])
    kind = SelectField(
        _l("Passt zu"),
        choices=ANY
        + [
            ("sprechstunde", _l("Sprechstunde")),
            ("probatorik", _l("Probatorische Sitzung")),
            ("akut", _l("Akutbehandlung")),
            ("therapy_place", _l("Therapieplatz")),
            ("group", _l("Gruppe")),
        ],
        default="",
    )
    deadline_days = IntegerField(
        _l("Frist (PTV 11) in höchstens … Tagen"),
        validators=[Optional(), NumberRange(0, 60)],
        render_kw={"inputmode": "numeric"},
    )
    sort = SelectField(
        _l("Sortierung"),
        choices=[
            ("waiting", _l("Wartezeit")),
            ("priority", _l("Priorität")),
            ("deadline", _l("Frist (PTV 11)")),
        ],
        default="waiting",
    )


class PoolFilterForm(FilterForm):
    """The pool has no free-text search, urgency or practice-link filter (it is pseudonymous)."""

    q = None
    urgent = None
    via_link = None
    sort = SelectField(
        _l("Sortierung"),
        choices=[
            ("waiting", _l("Wartezeit")),
            ("distance", _l("Entfernung")),
            ("deadline", _l("Frist (PTV 11)")),
        ],
        default="waiting",
    )


class PriorityForm(BaseForm):
    priority = SelectField(
        _l("Priorität"), choices=[(value, _l(label)) for value, label in PRIORITIES], coerce=int
    )
    submit = SubmitField(_l("Priorität setzen"))


class NoteForm(BaseForm):
    text = TextAreaField(
        _l("Klinische Notiz"),
        validators=[DataRequired(REQUIRED), Length(max=5000)],
        render_kw={"rows": 3},
    )
    submit = SubmitField(_l("Notiz speichern"))


class ReferForm(BaseForm):
    target = SelectField(_l("An Praxis überweisen"), coerce=int, choices=[])
    submit = SubmitField(_l("Überweisen"))


class RemoveForm(BaseForm):
    reason = SelectField(_l("Grund"), choices=_choices(REMOVE_REASONS))
    submit = SubmitField(_l("Von der Liste nehmen"))


class RoomForm(BaseForm):
    """A room of the practice (issue 19)."""

    name = StringField(_l("Name"), validators=[DataRequired(REQUIRED), Length(max=80)])
    capacity = IntegerField(
        _l("Plätze in Präsenz (Personen)"),
        default=2,
        validators=[InputRequired(REQUIRED), NumberRange(1, 40)],
        render_kw={"inputmode": "numeric"},
    )
    accessible = BooleanField(_l("barrierefrei"))
    note = StringField(_l("Hinweis (optional)"), validators=[Optional(), Length(max=300)])
    is_active = BooleanField(_l("in Benutzung"), default=True)
    submit = SubmitField(_l("Speichern"))


class DefaultRoomForm(BaseForm):
    room = SelectField(_l("Mein Raum"), coerce=int, default=0, validators=[Optional()])
    submit = SubmitField(_l("Übernehmen"))
