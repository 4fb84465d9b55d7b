"""Forms of the patient area: registration, profile with the availability grid, intake,
pause, deletion and the practice finder."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget, PasswordInput

from ptmatch.catalog import (
    CARE_STAGES,
    GENDERS,
    INSURANCES,
    LANGUAGES,
    METHODS,
    PREFERENCE,
    PROBLEM_AREAS,
    PTV11_CARE,
    THERAPIST_GENDER_WISHES,
)
from ptmatch.domain.errors import InvalidInput
from ptmatch.domain.patients import GRID_BLOCKS, GRID_DAYS, Intake, Profile, windows_from_grid
from ptmatch.web.forms import BaseForm, add_domain_error, add_problems

REQUIRED = _l("Bitte ausfüllen.")
GRID_CHOICES = [
    (f"{day}-{start}", f"{day}-{start}") for day in GRID_DAYS for start, _ in GRID_BLOCKS
]
DAY_CHOICES = [(str(day), str(day)) for day in GRID_DAYS]


def _choices(pairs):
    return [(code, _l(label)) for code, label in pairs]


class MultiCheckboxField(SelectMultipleField):
    """A catalogue as checkboxes (rendered by patient/_fields.html)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class AccountFields:
    """E-mail and password of a self-registration (defined first: the page starts with them,
    and the error summary follows the fields' order)."""

    email = EmailField(
        _l("E-Mail"),
        validators=[DataRequired(REQUIRED), Length(max=254)],
        render_kw={"autocomplete": "email", "inputmode": "email"},
    )
    password = PasswordField(
        _l("Passwort (10–128 Zeichen)"),
        validators=[DataRequired(REQUIRED), Length(max=128)],
        widget=PasswordInput(hide_value=False),  # see keep_passwords
        render_kw={"autocomplete": "new-password"},
    )
    password_repeat = PasswordField(
        _l("Passwort wiederholen"),
        widget=PasswordInput(hide_value=False),
        validators=[
            DataRequired(REQUIRED),
            EqualTo("password", _l("Die Passwörter stimmen nicht überein.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )

    def keep_passwords(self) -> None:
        """Shown again with errors elsewhere, an accepted password stays filled in (nothing
        entered is lost); a refused or mismatched one is emptied in both fields."""
        if self.password.errors or self.password_repeat.errors:
            self.password.data = self.password_repeat.data = ""


class ProfileForm(BaseForm):
    # In the order of patient/_profile_fields.html: the error summary lists them so.
    care_stage = RadioField(_l("Ich suche"), choices=_choices(CARE_STAGES), default="any")
    ptv11_date = DateField(
        _l("Datum auf dem Formular PTV 11 (aus der Sprechstunde)"), validators=[Optional()]
    )
    first_name = StringField(
        _l("Vorname"),
        validators=[DataRequired(REQUIRED), Length(max=100)],
        render_kw={"autocomplete": "given-name"},
    )
    last_name = StringField(
        _l("Nachname"),
        validators=[DataRequired(REQUIRED), Length(max=100)],
        render_kw={"autocomplete": "family-name"},
    )
    birth_date = DateField(
        _l("Geburtsdatum"), validators=[InputRequired(REQUIRED)], render_kw={"autocomplete": "bday"}
    )
    gender = SelectField(_l("Geschlecht"), choices=_choices(GENDERS), default="x")
    phone = StringField(
        _l("Telefon (optional)"),
        validators=[Optional(), Length(max=32)],
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )
    sms = BooleanField(_l("Angebote auch per SMS (nur an eine Handynummer)"), default=False)
    postcode = StringField(
        _l("Postleitzahl"),
        validators=[DataRequired(REQUIRED), Length(max=10)],
        render_kw={"autocomplete": "postal-code", "inputmode": "numeric"},
    )
    max_distance_km = IntegerField(
        _l("So weit kann ich fahren (km)"),
        default=20,
        validators=[InputRequired(REQUIRED), NumberRange(1, 300)],
        render_kw={"inputmode": "numeric"},
    )
    therapist_gender_wish = SelectField(
        _l("Ich wünsche mir"), choices=_choices(THERAPIST_GENDER_WISHES), default="any"
    )
    gender_only = BooleanField(_l("Nur so – sonst kein Angebot"), default=True)
    languages = MultiCheckboxField(
        _l("Sprachen, in denen die Therapie stattfinden kann"),
        choices=_choices(LANGUAGES.choices()),
        default=["de"],
    )
    languages_only = BooleanField(_l("Nur in diesen Sprachen – sonst kein Angebot"), default=True)
    methods = MultiCheckboxField(
        _l("Gewünschte Verfahren und Methoden (ohne „nur“ ein Pluspunkt, keine Auswahl = egal)"),
        choices=_choices(METHODS.choices()),
    )
    methods_only = BooleanField(_l("Nur diese Verfahren – sonst kein Angebot"), default=False)
    insurance = RadioField(
        _l("Versicherung"), choices=_choices(INSURANCES.choices()), default="gkv"
    )
    video_pref = RadioField(
        _l("Therapie per Video"), choices=_choices(PREFERENCE), default="acceptable"
    )
    video_only = BooleanField(_l("Nur per Video – keine Termine vor Ort"), default=False)
    group_pref = RadioField(_l("Gruppentherapie"), choices=_choices(PREFERENCE), default="no")
    needs_accessible_room = BooleanField(
        _l("Ich brauche einen barrierefreien Raum (Termine vor Ort nur dort)")
    )
    availability = SelectMultipleField(
        _l("Wann können Sie Termine wahrnehmen?"), choices=GRID_CHOICES
    )
    whole_days = SelectMultipleField(_l("Ganzer Tag"), choices=DAY_CHOICES)
    submit = SubmitField(_l("Speichern"))

    def validate_availability(self, field):
        """Required, checked with the other fields: every error comes in the first round."""
        if not field.data and not self.whole_days.data:
            raise ValidationError(
                _l(
                    "Bitte wählen Sie mindestens ein Zeitfenster, in dem Sie Termine "
                    "wahrnehmen können."
                )
            )

    def checked_windows(self, problems_of) -> list[tuple[int, int, int]] | None:
        """Validate the submitted form together with the domain's check of what it holds
        (`problems_of(profile)` returns the problems, writing nothing), so that every error
        comes in one round, next to its field and in the summary. The weekly windows when
        the form was submitted and everything passed, else None."""
        if not self.is_submitted():
            return None
        valid = self.validate()
        try:
            windows = windows_from_grid(self.availability.data or [], self.whole_days.data or [])
        except InvalidInput as err:
            add_domain_error(self, err)
            windows = None
        problems = problems_of(self.profile(windows or []))
        if add_problems(self, problems) and valid and windows is not None:
            return windows
        return None

    def profile(self, windows) -> Profile:
        return Profile(
            first_name=self.first_name.data or "",
            last_name=self.last_name.data or "",
            birth_date=self.birth_date.data,
            postcode=self.postcode.data or "",
            phone=self.phone.data or "",
            sms=bool(self.sms.data),
            gender=self.gender.data,
            max_distance_km=self.max_distance_km.data,
            languages=list(self.languages.data or []),
            therapist_gender_wish=self.therapist_gender_wish.data,
            methods=list(self.methods.data or []),
            insurance=self.insurance.data,
            video_pref=self.video_pref.data,
            group_pref=self.group_pref.data,
            needs_accessible_room=bool(self.needs_accessible_room.data),
            windows=windows,
            care_stage=self.care_stage.data,
            ptv11_date=self.ptv11_date.data,
            methods_only=bool(self.methods_only.data),
            gender_only=bool(self.gender_only.data),
            languages_only=bool(self.languages_only.data),
            video_only=bool(self.video_only.data),
        )


class IntakeFields:
    problems = MultiCheckboxField(
        _l("Worum geht es? (Mehrfachauswahl)"), choices=_choices(PROBLEM_AREAS.choices())
    )
    description = TextAreaField(
        _l("Beschreibung in eigenen Worten (optional)"),
        validators=[Optional(), Length(max=4000)],
        render_kw={"rows": 4},
    )
    urgent = BooleanField(_l("Auf meinem Formular PTV 11 ist „zeitnah erforderlich“ angekreuzt"))
    urgency_code = StringField(
        _l("Code vom Formular PTV 11"),
        validators=[Optional(), Length(max=20)],
        render_kw={"autocomplete": "off"},
    )
    ptv11_care = SelectField(
        _l("Empfohlene Behandlung laut PTV 11"), choices=_choices(PTV11_CARE), default=""
    )

    def intake(self) -> Intake:
        return Intake(
            problems=list(self.problems.data or []),
            description=self.description.data or "",
            urgent=bool(self.urgent.data),
            urgency_code=self.urgency_code.data or "",
            ptv11_care=self.ptv11_care.data or "",
        )


class IntakeForm(IntakeFields, BaseForm):
    submit = SubmitField(_l("Speichern"))


class RegistrationForm(AccountFields, IntakeFields, ProfileForm):
    consent_health = BooleanField(
        _l(
            "Ich willige ausdrücklich ein, dass ptmatch meine Gesundheitsdaten (Beschwerden, "
            "Dringlichkeit, Beschreibung) verarbeitet und den Praxen zeigt, auf deren Wartelisten "
            "ich stehe, um mir einen Therapieplatz zu vermitteln (Art. 9 Abs. 2 lit. a DSGVO). Ich "
            "kann die Einwilligung jederzeit widerrufen, indem ich mein Konto lösche."
        ),
        validators=[
            DataRequired(_l("Ohne diese Einwilligung können wir Ihnen keine Termine vermitteln."))
        ],
    )
    consent_rules = BooleanField(
        _l(
            "Ich akzeptiere die Absage- und Ausfallregeln der Praxen: Gebuchte Termine sage ich "
            "rechtzeitig ab; nicht abgesagte Termine können in Rechnung gestellt werden."
        ),
        validators=[DataRequired(_l("Bitte bestätigen Sie die Absage- und Ausfallregeln."))],
    )
    praxis = HiddenField(validators=[Optional(), Length(max=80)])
    submit = SubmitField(_l("Registrieren"))
    summary_labels = {
        "consent_health": _l("Einwilligung in die Verarbeitung der Gesundheitsdaten"),
        "consent_rules": _l("Absage- und Ausfallregeln"),
    }

    def registration(self, profile: Profile) -> dict:
        """What `patients.registration_problems` and `register_patient` take."""
        return dict(
            email=self.email.data or "",
            password=self.password.data or "",
            profile=profile,
            intake=self.intake(),
            consent_health=bool(self.consent_health.data),
            consent_rules=bool(self.consent_rules.data),
        )


class PauseForm(BaseForm):
    until = DateField(_l("Pausieren bis (optional)"), validators=[Optional()])
    submit = SubmitField(_l("Suche pausieren"))


class DeleteForm(BaseForm):
    confirm = BooleanField(
        _l("Ja, alle meine Daten endgültig löschen."),
        validators=[DataRequired(_l("Bitte bestätigen Sie die Löschung."))],
    )
    password = PasswordField(
        _l("Passwort"),
        validators=[DataRequired(REQUIRED), Length(max=128)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField(_l("Konto und Daten löschen"))


class FinderForm(BaseForm):
    """GET filters of the practice finder (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    distance_km = IntegerField(
        _l("Entfernung bis (km)"), validators=[Optional(), NumberRange(1, 300)]
    )
    method = SelectField(
        _l("Verfahren"), choices=[("", _l("alle"))] + _choices(METHODS.choices()), default=""
    )
    specialty = SelectField(
        _l("Schwerpunkt"),
        choices=[("", _l("alle"))] + _choices(PROBLEM_AREAS.choices()),
        default="",
    )
    language = SelectField(
        _l("Sprache"), choices=[("", _l("alle"))] + _choices(LANGUAGES.choices()), default=""
    )
    therapist_gender = SelectField(
        _l("Therapeut:in"), choices=_choices(THERAPIST_GENDER_WISHES), default="any"
    )
    video = BooleanField(_l("bietet Video an"))
    group = BooleanField(_l("bietet Gruppen an"))
    submit = SubmitField(_l("Suchen"))
