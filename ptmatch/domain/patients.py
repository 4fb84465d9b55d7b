"""Patients: registration, profile and availability, clinical intake, consents, pause and
reactivation, the data export and erasure.

Mails never name anyone: they carry a generic line and a link. Link paths are fixed here
(the scheduler builds them without Flask); the patient blueprint serves exactly these paths.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import phonenumbers
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, selectinload

from ptmatch import links
from ptmatch.catalog import INSURANCES, LANGUAGES, METHODS, N_, PROBLEM_AREAS
from ptmatch.config import Settings
from ptmatch.db import settings_of
from ptmatch.domain import accounts, audit, geo, match_columns, offers, waitlist
from ptmatch.domain.errors import DomainError, InvalidInput, NotAllowed, Problems, raise_first
from ptmatch.domain.passwords import check_password_policy, hash_password
from ptmatch.domain.tokens import hash_token
from ptmatch.models import (
    Availability,
    Booking,
    BookingStatus,
    CallNote,
    CareStage,
    ClinicalNote,
    EnrollmentStatus,
    EntryStatus,
    GroupEnrollment,
    Offer,
    OfferStatus,
    OutboxChannel,
    OutboxMessage,
    Patient,
    PatientClinical,
    PatientStatus,
    Practice,
    Preference,
    RecoveryCode,
    RegisteredVia,
    RemovalReason,
    Role,
    Slot,
    TokenPurpose,
    User,
    UserToken,
    WaitlistEntry,
)
from ptmatch.notifications import outbox

VERIFY_VALID = dt.timedelta(days=7)

GENDER_CODES = ("f", "m", "d", "x")
THERAPIST_GENDER_CODES = ("any", "f", "m", "d")
URGENCY_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{0,19}$")
# PTV 11 (since April 2017): the form of care the Sprechstunde recommends.
PTV11_FIRST_DAY = dt.date(2017, 4, 1)
PTV11_CARE = ("", "akut", "einzel", "gruppe", "andere")

# The availability grid: two-hour blocks, Berlin wall-clock minutes, Monday to Saturday.
GRID_BLOCKS: tuple[tuple[int, int], ...] = tuple((h * 60, (h + 2) * 60) for h in range(8, 20, 2))
GRID_DAYS = tuple(range(6))


# --- input ---------------------------------------------------------------------------------


@dataclass
class Profile:
    """What a patient enters about themselves (registration and edit), already parsed."""

    first_name: str
    last_name: str
    birth_date: dt.date | None
    postcode: str
    phone: str = ""
    sms: bool = False  # offers, reminders and check-ins also by SMS (a mobile number only)
    gender: str = "x"
    max_distance_km: int = 20
    languages: list[str] = field(default_factory=lambda: ["de"])
    therapist_gender_wish: str = "any"
    methods: list[str] = field(default_factory=list)
    insurance: str = "gkv"
    video_pref: str = Preference.ACCEPTABLE.value
    group_pref: str = Preference.NO.value
    needs_accessible_room: bool = False  # in person only in an accessible room (hard filter)
    windows: list[tuple[int, int, int]] = field(
        default_factory=list
    )  # (weekday, start_min, end_min)
    care_stage: str = CareStage.ANY.value
    ptv11_date: dt.date | None = None
    methods_only: bool = False
    gender_only: bool = True
    languages_only: bool = True
    video_only: bool = False


@dataclass
class Intake:
    """The clinical intake (stored in PatientClinical)."""

    problems: list[str] = field(default_factory=list)
    description: str = ""
    urgent: bool = False
    urgency_code: str = ""
    ptv11_care: str = ""  # the recommended form of care (PTV11_CARE)


def normalise_phone(raw: str, field_name: str = "phone") -> str:
    """'' for no phone, else E.164 (German numbers may omit +49). Raises InvalidInput."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    if len(raw) > 32:
        raise InvalidInput(N_("Bitte eine gültige Telefonnummer angeben."), field_name)
    try:
        number = phonenumbers.parse(raw, "DE")
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(N_("Bitte eine gültige Telefonnummer angeben."), field_name) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(N_("Bitte eine gültige Telefonnummer angeben."), field_name)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_mobile(e164: str) -> bool:
    """A number an SMS can reach: mobile (or, where the plan cannot tell, fixed or mobile)."""
    try:
        number = phonenumbers.parse(e164 or "", "DE")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def display_phone(e164: str) -> str:
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, "DE")
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def windows_from_grid(cells: list[str], whole_days: list[str] = ()) -> list[tuple[int, int, int]]:
    """Checked grid cells ("weekday-start") and whole-day ticks → merged weekly windows."""
    chosen: dict[int, set[int]] = {}
    starts = {start for start, _ in GRID_BLOCKS}
    for cell in cells:
        try:
            day_s, start_s = cell.split("-", 1)
            day, start = int(day_s), int(start_s)
        except ValueError as exc:
            raise InvalidInput(N_("Ungültige Zeitauswahl."), "availability") from exc
        if day not in GRID_DAYS or start not in starts:
            raise InvalidInput(N_("Ungültige Zeitauswahl."), "availability")
        chosen.setdefault(day, set()).add(start)
    for day_s in whole_days:
        try:
            day = int(day_s)
        except ValueError as exc:
            raise InvalidInput(N_("Ungültige Zeitauswahl."), "availability") from exc
        if day not in GRID_DAYS:
            raise InvalidInput(N_("Ungültige Zeitauswahl."), "availability")
        chosen.setdefault(day, set()).update(starts)
    windows: list[tuple[int, int, int]] = []
    for day in sorted(chosen):
        current: list[int] | None = None
        for start, end in GRID_BLOCKS:
            if start in chosen[day]:
                if current is not None and current[1] == start:
                    current[1] = end
                else:
                    current = [start, end]
                    windows.append((day, current[0], current[1]))
                    continue
                windows[-1] = (day, current[0], current[1])
            else:
                current = None
    return windows


def grid_from_windows(windows) -> tuple[set[str], bool]:
    """The cells fully covered by the windows, and whether the grid shows them exactly."""
    cells: set[str] = set()
    covered_minutes = 0
    for w in windows:
        weekday, start, end = (w.weekday, w.start_min, w.end_min) if hasattr(w, "weekday") else w
        covered_minutes += end - start
        for b_start, b_end in GRID_BLOCKS:
            if start <= b_start and b_end <= end and weekday in GRID_DAYS:
                cells.add(f"{weekday}-{b_start}")
    exact = covered_minutes == len(cells) * 120
    return cells, exact


def _choice(value: str, allowed, message: str, field_name: str) -> str:
    if value not in allowed:
        raise InvalidInput(message, field_name)
    return value


def profile_problems(session: Session, today: dt.date, profile: Profile) -> list[InvalidInput]:
    """Every problem of a profile (the first per field), without writing; normalises it in
    place. Registration, the profile edit and the secretariat's caller forms show them all at
    once, and the writes refuse on the first (`raise_first`)."""
    found = Problems()
    profile.first_name = (profile.first_name or "").strip()
    profile.last_name = (profile.last_name or "").strip()
    with found:
        if not profile.first_name:
            raise InvalidInput(N_("Bitte geben Sie Ihren Vornamen an."), "first_name")
        if len(profile.first_name) > 100:
            raise InvalidInput(N_("Höchstens 100 Zeichen."), "first_name")
    with found:
        if not profile.last_name:
            raise InvalidInput(N_("Bitte geben Sie Ihren Nachnamen an."), "last_name")
        if len(profile.last_name) > 100:
            raise InvalidInput(N_("Höchstens 100 Zeichen."), "last_name")
    with found:
        if profile.birth_date is None:
            raise InvalidInput(N_("Bitte geben Sie Ihr Geburtsdatum an."), "birth_date")
        if profile.birth_date >= today or profile.birth_date.year < 1900:
            raise InvalidInput(N_("Bitte ein gültiges Geburtsdatum angeben."), "birth_date")
    with found:
        profile.phone = normalise_phone(profile.phone)
    profile.sms = bool(profile.sms)
    with found:
        if profile.sms and not profile.phone:
            raise InvalidInput(N_("Für SMS geben Sie bitte oben eine Handynummer an."), "sms")
        if profile.sms and not is_mobile(profile.phone):
            raise InvalidInput(
                N_("SMS können wir nur an eine Handynummer schicken; diese Nummer ist keine."),
                "sms",
            )
    with found:
        _choice(profile.gender, GENDER_CODES, N_("Bitte wählen Sie eine Angabe."), "gender")
    profile.postcode = (profile.postcode or "").strip()
    with found:
        if not geo.is_valid_postcode(profile.postcode):
            raise InvalidInput(N_("Bitte eine fünfstellige Postleitzahl angeben."), "postcode")
        geo.check_postcode_exists(session, profile.postcode)
    with found:
        if profile.max_distance_km is None or not 1 <= profile.max_distance_km <= 300:
            raise InvalidInput(
                N_("Bitte eine Entfernung zwischen 1 und 300 km angeben."), "max_distance_km"
            )
    with found:
        if not profile.languages:
            raise InvalidInput(N_("Bitte mindestens eine Sprache wählen."), "languages")
        for code in profile.languages:
            _choice(code, LANGUAGES.by_code, N_("Ungültige Auswahl."), "languages")
    with found:
        for code in profile.methods:
            _choice(code, METHODS.by_code, N_("Ungültige Auswahl."), "methods")
    with found:
        _choice(
            profile.therapist_gender_wish,
            THERAPIST_GENDER_CODES,
            N_("Ungültige Auswahl."),
            "therapist_gender_wish",
        )
    with found:
        _choice(
            profile.insurance,
            INSURANCES.by_code,
            N_("Bitte wählen Sie Ihre Versicherung."),
            "insurance",
        )
    prefs = {p.value for p in Preference}
    with found:
        _choice(profile.video_pref, prefs, N_("Ungültige Auswahl."), "video_pref")
    with found:
        _choice(profile.group_pref, prefs, N_("Ungültige Auswahl."), "group_pref")
    with found:
        if not profile.windows:
            raise InvalidInput(
                N_(
                    "Bitte wählen Sie mindestens ein Zeitfenster, in dem Sie Termine "
                    "wahrnehmen können."
                ),
                "availability",
            )
        for weekday, start, end in profile.windows:
            if not (0 <= weekday <= 6 and 0 <= start < end <= 24 * 60):
                raise InvalidInput(N_("Ungültige Zeitauswahl."), "availability")
    with found:
        _choice(
            profile.care_stage,
            {s.value for s in CareStage},
            N_("Ungültige Auswahl."),
            "care_stage",
        )
    with found:
        if profile.ptv11_date is not None and not PTV11_FIRST_DAY <= profile.ptv11_date <= today:
            raise InvalidInput(N_("Bitte das Datum vom Formular PTV 11 angeben."), "ptv11_date")
        if profile.care_stage == CareStage.THERAPY and profile.ptv11_date is None:
            raise InvalidInput(
                N_(
                    "Für einen Therapieplatz brauchen wir das Datum Ihres Formulars PTV 11 "
                    "(aus der Sprechstunde)."
                ),
                "ptv11_date",
            )
    with found:
        if profile.care_stage == CareStage.GROUP and profile.group_pref == Preference.NO:
            raise InvalidInput(
                N_(
                    "Sie suchen eine Gruppe: bitte bei Gruppentherapie „gewünscht“ oder "
                    "„möglich“ wählen."
                ),
                "group_pref",
            )
    with found:
        if profile.video_only and profile.video_pref != Preference.WANTED:
            raise InvalidInput(
                N_("„Nur per Video“ geht nur, wenn Video gewünscht ist."), "video_only"
            )
    return found.found


def intake_problems(intake: Intake) -> list[InvalidInput]:
    """Every problem of a clinical intake (the first per field); normalises it in place."""
    found = Problems()
    with found:
        for code in intake.problems:
            _choice(code, PROBLEM_AREAS.by_code, N_("Ungültige Auswahl."), "problems")
    intake.description = (intake.description or "").strip()
    with found:
        if len(intake.description) > 4000:
            raise InvalidInput(N_("Höchstens 4000 Zeichen."), "description")
    intake.urgency_code = (intake.urgency_code or "").strip().upper()
    with found:
        if intake.urgency_code and not URGENCY_CODE_RE.match(intake.urgency_code):
            raise InvalidInput(
                N_("Bitte den Code so eingeben, wie er auf dem Formular PTV 11 steht."),
                "urgency_code",
            )
        if intake.urgent and not intake.urgency_code:
            raise InvalidInput(
                N_("Bitte geben Sie den Code von Ihrem Formular PTV 11 an."), "urgency_code"
            )
    with found:
        _choice(intake.ptv11_care or "", PTV11_CARE, N_("Ungültige Auswahl."), "ptv11_care")
    return found.found


def validate_intake(intake: Intake) -> Intake:
    raise_first(intake_problems(intake))
    return intake


# --- registration ----------------------------------------------------------------------------


@dataclass
class Registration:
    """The outcome. `patient` is None when the address already had an account (the caller
    shows the same page either way; the address got an "already registered" mail)."""

    patient: Patient | None
    user: User | None


def _apply_profile(session: Session, patient: Patient, profile: Profile) -> None:
    patient.first_name = profile.first_name
    patient.last_name = profile.last_name
    patient.phone = profile.phone
    patient.sms_opt_in = bool(profile.sms)
    patient.birth_date = profile.birth_date
    patient.gender = profile.gender
    if patient.postcode != profile.postcode or patient.lat is None:
        location = geo.locate(session, profile.postcode)
        patient.lat, patient.lon = location.lat, location.lon
    patient.postcode = profile.postcode
    patient.max_distance_km = profile.max_distance_km
    patient.languages_mask = LANGUAGES.to_mask(profile.languages)
    patient.therapist_gender_wish = profile.therapist_gender_wish
    patient.methods_mask = METHODS.to_mask(profile.methods)
    patient.insurance = profile.insurance
    patient.video_pref = Preference(profile.video_pref)
    patient.group_pref = Preference(profile.group_pref)
    patient.needs_accessible_room = bool(profile.needs_accessible_room)
    patient.care_stage = CareStage(profile.care_stage)
    patient.ptv11_date = profile.ptv11_date
    patient.methods_only = bool(profile.methods_only)
    patient.gender_only = bool(profile.gender_only)
    patient.languages_only = bool(profile.languages_only)
    patient.video_only = bool(profile.video_only)


def _replace_windows(session: Session, patient: Patient, windows) -> None:
    if patient.id is not None:
        session.execute(delete(Availability).where(Availability.patient_id == patient.id))
        session.expire(patient, ["availability"])
    for weekday, start, end in windows:
        session.add(
            Availability(patient_id=patient.id, weekday=weekday, start_min=start, end_min=end)
        )
    if patient.id is not None:  # the old windows went with a bulk DELETE
        match_columns.refresh_match_columns(session, [patient.id])


def _apply_intake(session: Session, now: dt.datetime, patient: Patient, intake: Intake) -> None:
    clinical = session.get(PatientClinical, patient.id)
    if clinical is None:
        clinical = PatientClinical(patient_id=patient.id)
        session.add(clinical)
    clinical.problems_mask = PROBLEM_AREAS.to_mask(intake.problems)
    clinical.description = intake.description
    clinical.urgent = intake.urgent
    clinical.urgency_code = intake.urgency_code
    clinical.ptv11_care = intake.ptv11_care or ""
    clinical.updated_at = now


def registration_problems(
    session: Session,
    now: dt.datetime,
    *,
    email: str,
    password: str,
    profile: Profile,
    intake: Intake,
    consent_health: bool,
    consent_rules: bool,
) -> list[InvalidInput]:
    """Every problem of a registration (the first per field), without writing anything: the
    registration page shows them all in one round, `register_patient` refuses on the first.
    An address that already has an account is no problem here (see `register_patient`)."""
    found = Problems()
    with found:
        accounts.check_new_email(session, email)
    with found:
        check_password_policy(password, "password")
    found.add(*profile_problems(session, now.date(), profile))
    found.add(*intake_problems(intake))
    with found:
        if not consent_health:
            raise InvalidInput(
                N_("Ohne diese Einwilligung können wir Ihnen keine Termine vermitteln."),
                "consent_health",
            )
    with found:
        if not consent_rules:
            raise InvalidInput(
                N_("Bitte bestätigen Sie die Absage- und Ausfallregeln."), "consent_rules"
            )
    return found.found


def register_patient(
    session: Session,
    now: dt.datetime,
    *,
    email: str,
    password: str,
    profile: Profile,
    intake: Intake,
    consent_health: bool,
    consent_rules: bool,
    practice: Practice | None = None,
    locale: str = "de",
) -> Registration:
    """Self-service registration (optionally through a practice's own link).

    Creates the account (email unverified), the patient, the clinical intake and the weekly
    windows, records both consents with their time, puts the patient on the practice's list
    when registered via its link, and mails a verification link. An address that already has
    an account gets an "already registered" mail instead, and nothing is stored.
    """
    raise_first(
        registration_problems(
            session,
            now,
            email=email,
            password=password,
            profile=profile,
            intake=intake,
            consent_health=consent_health,
            consent_rules=consent_rules,
        )
    )
    email = accounts.check_new_email(session, email)
    existing = session.scalar(select(User).where(User.email == email))
    if existing is not None:
        hash_password(password)  # the same work as a real registration: timing reveals nothing
        outbox.enqueue(
            session,
            now,
            kind="already_registered",
            to_user=existing,
            link_path=links.login(),
            dedupe_key=f"already_registered:{existing.id}:{now:%Y%m%d%H}",
        )
        audit.record(session, now, "patient.register_existing", None, subject_user_id=existing.id)
        return Registration(None, None)
    user = accounts.create_user(
        session, now, email=email, password=password, role=Role.PATIENT, locale=locale
    )
    patient = Patient(
        user_id=user.id,
        status=PatientStatus.ACTIVE,
        status_changed_at=now,
        registered_via=RegisteredVia.PRACTICE_LINK if practice is not None else RegisteredVia.SELF,
        consent_health_at=now,
        consent_rules_at=now,
        created_at=now,
        last_confirmed_at=now,
    )
    _apply_profile(session, patient, profile)
    session.add(patient)
    session.flush()
    _replace_windows(session, patient, profile.windows)
    _apply_intake(session, now, patient, intake)
    session.flush()
    audit.record(
        session,
        now,
        "patient.registered",
        user,
        patient_id=patient.id,
        via=str(patient.registered_via),
        practice_id=practice.id if practice else None,
    )
    audit.record(
        session, now, "patient.consented", user, patient_id=patient.id, health=True, rules=True
    )
    if practice is not None:
        waitlist.join_list(session, now, patient, practice, via_practice_link=True, actor=user)
    send_verification(session, now, user)
    return Registration(patient, user)


def send_verification(session: Session, now: dt.datetime, user: User) -> None:
    """Mail a fresh verification link (a resend makes a new one; older links stay valid)."""
    if user.email_verified_at is not None:
        return
    token = accounts.issue_user_token(session, now, user, TokenPurpose.VERIFY_EMAIL, VERIFY_VALID)
    outbox.enqueue(
        session,
        now,
        kind="verify_email",
        to_user=user,
        link_path=links.verify_email(token),
        dedupe_key=f"verify_email:{user.id}:{hash_token(token)[:16]}",
    )


def verify_email(session: Session, now: dt.datetime, token: str) -> User | None:
    """Spend a verification token; the address counts as verified. None for a bad link."""
    user = accounts.consume_user_token(session, now, token, TokenPurpose.VERIFY_EMAIL)
    if user is None:
        return None
    if user.email_verified_at is None:
        user.email_verified_at = now
        audit.record(session, now, "account.email_verified", user, subject_user_id=user.id)
    session.flush()
    return user


# --- lookups --------------------------------------------------------------------------------


def get_patient_for_user(session: Session, user: User) -> Patient | None:
    return session.scalar(select(Patient).where(Patient.user_id == user.id))


def is_matchable(patient: Patient, user: User | None, today: dt.date) -> bool:
    """May the matcher offer this patient anything today?

    Active status, a verified email address (phone-registered patients without an account
    are matchable once the secretariat recorded their consent), not paused, both consents given.
    """
    if patient.paused_until is not None and patient.paused_until > today:
        return False
    return match_columns.is_matchable(  # the same rule as the column matching reads
        patient.status,
        patient.consent_health_at,
        patient.consent_rules_at,
        patient.user_id is not None,
        user is not None and user.email_verified_at is not None,
        user is not None and bool(user.is_enabled),
        patient.consent_recorded_by_id,
    )


def location_of(session: Session, patient: Patient) -> geo.Location:
    """Where the patient is, with the precision of the fallback used (for the UI flag)."""
    if patient.lat is None or patient.lon is None:
        return geo.UNKNOWN
    exact = geo.locate(session, patient.postcode)
    return geo.Location(patient.lat, patient.lon, exact.precision if exact.known else "exact")


# --- profile ---------------------------------------------------------------------------------


def update_profile(
    session: Session, now: dt.datetime, patient: Patient, profile: Profile, actor: User | None
) -> None:
    """Save the edited profile and availability (an edit also confirms the patient is still
    looking)."""
    raise_first(profile_problems(session, now.date(), profile))
    _apply_profile(session, patient, profile)
    _replace_windows(session, patient, profile.windows)
    patient.last_confirmed_at = now
    session.flush()
    audit.record(session, now, "patient.profile_updated", actor, patient_id=patient.id)


def update_intake(
    session: Session, now: dt.datetime, patient: Patient, intake: Intake, actor: User | None
) -> None:
    validate_intake(intake)
    _apply_intake(session, now, patient, intake)
    session.flush()
    audit.record(session, now, "patient.intake_updated", actor, patient_id=patient.id)


def intake_of(clinical: PatientClinical | None) -> Intake:
    if clinical is None:
        return Intake()
    return Intake(
        problems=PROBLEM_AREAS.from_mask(clinical.problems_mask),
        description=clinical.description,
        urgent=clinical.urgent,
        urgency_code=clinical.urgency_code,
        ptv11_care=clinical.ptv11_care or "",
    )


def profile_of(patient: Patient) -> Profile:
    return Profile(
        first_name=patient.first_name,
        last_name=patient.last_name,
        birth_date=patient.birth_date,
        postcode=patient.postcode,
        phone=patient.phone,
        sms=bool(patient.sms_opt_in),
        gender=patient.gender,
        max_distance_km=patient.max_distance_km,
        languages=LANGUAGES.from_mask(patient.languages_mask),
        therapist_gender_wish=patient.therapist_gender_wish,
        methods=METHODS.from_mask(patient.methods_mask),
        insurance=patient.insurance,
        video_pref=str(patient.video_pref),
        group_pref=str(patient.group_pref),
        needs_accessible_room=bool(patient.needs_accessible_room),
        windows=[(w.weekday, w.start_min, w.end_min) for w in patient.availability],
        care_stage=str(patient.care_stage),
        ptv11_date=patient.ptv11_date,
        methods_only=patient.methods_only,
        gender_only=patient.gender_only,
        languages_only=patient.languages_only,
        video_only=patient.video_only,
    )


# --- status ------------------------------------------------------------------------------------


def pause(
    session: Session,
    now: dt.datetime,
    patient: Patient,
    until: dt.date | None,
    actor: User | None,
    *,
    settings: Settings,
) -> None:
    """Stop offers, optionally until a date (the check-in job resumes on that day). Lists stay."""
    if patient.status not in (PatientStatus.ACTIVE, PatientStatus.PAUSED):
        raise NotAllowed(N_("Ihre Suche kann gerade nicht pausiert werden."))
    if until is not None and until <= now.date():
        raise InvalidInput(N_("Bitte ein Datum in der Zukunft wählen."), "until")
    patient.status = PatientStatus.PAUSED
    patient.paused_until = until
    patient.status_changed_at = now
    withdrawn = offers.withdraw_patient_offers(
        session, now, patient, reason="paused", settings=settings
    )
    session.flush()
    audit.record(
        session,
        now,
        "patient.paused",
        actor,
        patient_id=patient.id,
        until=until.isoformat() if until else None,
        offers_withdrawn=withdrawn,
    )


def _live_booking(session: Session, now: dt.datetime, patient: Patient) -> Booking | None:
    """A confirmed booking that still holds the patient. One whose appointment lies
    UNMARKED_REACTIVATE_DAYS back and that the practice never marked (attended / no-show)
    holds them no longer: they may reactivate themselves."""
    days = settings_of(session).UNMARKED_REACTIVATE_DAYS
    return session.scalar(
        select(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.patient_id == patient.id,
            Booking.status == BookingStatus.CONFIRMED,
            Slot.start_at > now - dt.timedelta(days=days),
        )
        .order_by(Slot.start_at.desc())
        .limit(1)
    )


def _restorable_entries(session: Session, patient: Patient) -> int:
    return len(
        session.scalars(
            select(WaitlistEntry.id).where(
                WaitlistEntry.patient_id == patient.id,
                WaitlistEntry.status == EntryStatus.REMOVED,
                WaitlistEntry.removed_reason == RemovalReason.BOOKED_ELSEWHERE,
            )
        ).all()
    )


def can_reactivate(session: Session, now: dt.datetime, patient: Patient) -> bool:
    """Paused or inactive; or booked but the booking is gone (released as "no fit",
    cancelled) so the lists the booking took can come back."""
    if patient.status in (PatientStatus.PAUSED, PatientStatus.INACTIVE):
        return True
    if patient.status == PatientStatus.DELETED:
        return False
    if _live_booking(session, now, patient) is not None:
        return False
    if patient.status == PatientStatus.BOOKED:
        return True
    return _restorable_entries(session, patient) > 0  # active again, lists not yet back


def reactivate(session: Session, now: dt.datetime, patient: Patient, actor: User | None) -> int:
    """Back to active; restores the lists a booking had taken. Returns how many came back."""
    if not can_reactivate(session, now, patient):
        raise NotAllowed(N_("Ihre Suche kann gerade nicht reaktiviert werden."))
    patient.status = PatientStatus.ACTIVE
    patient.paused_until = None
    patient.status_changed_at = now
    patient.last_confirmed_at = now
    restored = waitlist.restore_after_release(session, now, patient)
    session.flush()
    audit.record(
        session, now, "patient.reactivated", actor, patient_id=patient.id, lists_restored=restored
    )
    return restored


def confirm_still_looking(
    session: Session, now: dt.datetime, patient: Patient, actor: User | None
) -> None:
    """The patient answered a check-in. If the check-in itself had paused them, they are active
    again."""
    patient.last_confirmed_at = now
    if (
        patient.status == PatientStatus.PAUSED
        and patient.paused_until is None
        and patient.checkin_sent_at is not None
        and patient.status_changed_at is not None
        and patient.status_changed_at >= patient.checkin_sent_at
    ):
        patient.status = PatientStatus.ACTIVE
        patient.status_changed_at = now
    session.flush()
    audit.record(session, now, "patient.checkin_confirmed", actor, patient_id=patient.id)


# --- dashboard --------------------------------------------------------------------------------


def pending_offers(session: Session, now: dt.datetime, patient: Patient) -> list[Offer]:
    """Live offers (expiry derived on read), soonest deadline first."""
    return list(
        session.scalars(
            select(Offer)
            .where(
                Offer.patient_id == patient.id,
                Offer.status == OfferStatus.PENDING,
                Offer.expires_at > now,
            )
            .options(
                selectinload(Offer.slot).selectinload(Slot.practice), selectinload(Offer.group)
            )
            .order_by(Offer.expires_at, Offer.id)
        )
    )


def bookings(session: Session, patient: Patient, limit: int = 20) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .join(Slot, Slot.id == Booking.slot_id)
            .where(Booking.patient_id == patient.id)
            .options(selectinload(Booking.slot).selectinload(Slot.practice))
            .order_by(Slot.start_at.desc())
            .limit(limit)
        )
    )


# --- export -------------------------------------------------------------------------------------


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def export_data(session: Session, now: dt.datetime, patient: Patient, user: User | None) -> dict:
    """Everything stored about the patient, for the JSON download (GDPR Art. 15 / 20)."""
    clinical = session.get(PatientClinical, patient.id)
    entries = waitlist.list_entries(session, patient)
    offer_rows = session.execute(
        select(Offer, Slot)
        .outerjoin(Slot, Slot.id == Offer.slot_id)
        .where(Offer.patient_id == patient.id)
        .order_by(Offer.sent_at)
    ).all()
    booking_rows = session.execute(
        select(Booking, Slot, Practice)
        .join(Slot, Slot.id == Booking.slot_id)
        .join(Practice, Practice.id == Slot.practice_id)
        .where(Booking.patient_id == patient.id)
        .order_by(Slot.start_at)
    ).all()
    practice_names = (
        dict(session.execute(select(Practice.id, Practice.name)).all()) if offer_rows else {}
    )
    enrollments = session.scalars(
        select(GroupEnrollment).where(GroupEnrollment.patient_id == patient.id)
    ).all()
    data = {
        "exported_at": now.isoformat(),
        "account": None
        if user is None
        else {
            "email": user.email,
            "locale": user.locale,
            "created_at": _iso(user.created_at),
            "email_verified_at": _iso(user.email_verified_at),
            "last_login_at": _iso(user.last_login_at),
            "two_factor": user.has_totp,
        },
        "profile": {
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "phone": patient.phone,
            "birth_date": _iso(patient.birth_date),
            "gender": patient.gender,
            "postcode": patient.postcode,
            "max_distance_km": patient.max_distance_km,
            "languages": LANGUAGES.from_mask(patient.languages_mask),
            "therapist_gender_wish": patient.therapist_gender_wish,
            "methods": METHODS.from_mask(patient.methods_mask),
            "insurance": patient.insurance,
            "video": str(patient.video_pref),
            "group": str(patient.group_pref),
            "needs_accessible_room": bool(patient.needs_accessible_room),
            "status": str(patient.status),
            "paused_until": _iso(patient.paused_until),
            "registered_via": str(patient.registered_via),
            "created_at": _iso(patient.created_at),
            "last_confirmed_at": _iso(patient.last_confirmed_at),
        },
        "consents": {
            "health_data_at": _iso(patient.consent_health_at),
            "no_show_rules_at": _iso(patient.consent_rules_at),
        },
        "availability": [
            {
                "weekday": w.weekday,
                "from": f"{w.start_min // 60:02d}:{w.start_min % 60:02d}",
                "to": f"{w.end_min // 60:02d}:{w.end_min % 60:02d}",
            }
            for w in patient.availability
        ],
        "clinical": None
        if clinical is None
        else {
            "problem_areas": PROBLEM_AREAS.from_mask(clinical.problems_mask),
            "description": clinical.description,
            "urgent": clinical.urgent,
            "urgency_code": clinical.urgency_code,
            "updated_at": _iso(clinical.updated_at),
        },
        "waitlists": [
            {
                "practice": e.practice.name if e.practice else None,
                "regional_pool": e.practice_id is None,
                "status": str(e.status),
                "joined_at": _iso(e.added_at),
                "via_practice_link": e.via_practice_link,
                "removed_at": _iso(e.removed_at),
                "removed_reason": str(e.removed_reason) if e.removed_reason else None,
            }
            for e in entries
        ],
        "offers": [
            {
                "practice": practice_names.get(slot.practice_id) if slot else None,
                "starts_at": _iso(slot.start_at) if slot else None,
                "group_id": offer.group_id,
                "status": str(offer.effective_status(now)),
                "sent_at": _iso(offer.sent_at),
                "expires_at": _iso(offer.expires_at),
                "responded_at": _iso(offer.responded_at),
            }
            for offer, slot in offer_rows
        ],
        "bookings": [
            {
                "practice": practice.name,
                "starts_at": _iso(slot.start_at),
                "minutes": slot.minutes,
                "modality": str(slot.modality),
                "status": str(booking.status),
                "booked_at": _iso(booking.created_at),
            }
            for booking, slot, practice in booking_rows
        ],
        "group_enrollments": [
            {"group_id": e.group_id, "status": str(e.status), "since": _iso(e.created_at)}
            for e in enrollments
        ],
    }
    audit.record(session, now, "patient.exported", user, patient_id=patient.id)
    return data


# --- erasure ------------------------------------------------------------------------------------


def erase_personal_data(
    session: Session,
    now: dt.datetime,
    patient: Patient,
    actor: User | None,
    *,
    reason: str,
    keep_address: bool = False,
    settings: Settings,
) -> None:
    """Erase everything personal and clinical about a patient; keep an anonymous shell.

    What stays: the patient row with status DELETED, its dates, insurance and registration
    channel (counts for statistics), the ids on offers, bookings and audit events. Name, phone,
    birth date, postcode and coordinates, the clinical intake, notes, availability and every
    outbox row to the address are gone; pending offers are withdrawn, future bookings cancelled,
    waitlist entries closed. With `keep_address` the account row (its email) and nothing else
    survives, disabled, until a last notice is delivered (see `finish_erasure`).
    """
    user = session.get(User, patient.user_id) if patient.user_id else None
    # DELETED first: nothing re-offered while we cancel below may reach this patient again.
    patient.status = PatientStatus.DELETED
    patient.status_changed_at = now
    patient.paused_until = None
    session.flush()
    cancelled = _cancel_future_bookings(session, now, patient, actor, settings)
    withdrawn = offers.withdraw_patient_offers(
        session, now, patient, reason="erased", settings=settings
    )
    if patient.phone:  # every SMS to the number, sent or not (a caller has no account)
        session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.channel == OutboxChannel.SMS,
                OutboxMessage.to_addr == patient.phone,
            )
        )
    patient.first_name = ""
    patient.last_name = ""
    patient.phone = ""
    patient.sms_opt_in = False
    patient.birth_date = None
    patient.gender = "x"
    patient.postcode = ""
    patient.lat = None
    patient.lon = None
    patient.methods_mask = 0
    patient.languages_mask = 0
    patient.therapist_gender_wish = "any"
    session.execute(delete(PatientClinical).where(PatientClinical.patient_id == patient.id))
    session.execute(delete(Availability).where(Availability.patient_id == patient.id))
    session.execute(delete(ClinicalNote).where(ClinicalNote.patient_id == patient.id))
    session.execute(delete(CallNote).where(CallNote.patient_id == patient.id))
    session.expire(patient, ["availability", "clinical"])
    session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.patient_id == patient.id, WaitlistEntry.status == EntryStatus.ACTIVE)
        .values(status=EntryStatus.REMOVED, removed_at=now, removed_reason=RemovalReason.PURGED)
        .execution_options(synchronize_session="fetch")
    )
    session.execute(
        update(GroupEnrollment)
        .where(
            GroupEnrollment.patient_id == patient.id,
            GroupEnrollment.status == EnrollmentStatus.WAITLISTED,
        )
        .values(status=EnrollmentStatus.WITHDRAWN, changed_at=now, position=None)
        .execution_options(synchronize_session="fetch")
    )
    if user is not None:
        user.is_enabled = False
        user.password_hash = None
        user.display_name = ""
        user.totp_secret = None
        user.totp_confirmed_at = None
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        session.execute(delete(UserToken).where(UserToken.user_id == user.id))
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(session_version=User.session_version + 1)
            .execution_options(synchronize_session="fetch")
        )
        if not keep_address:
            _delete_account(session, patient, user)
    # The windows and entries went with bulk statements: recompute the match columns.
    match_columns.refresh_match_columns(session, [patient.id])
    # The patient's own account may be gone by now: record the role, not the id.
    staff_actor = actor if actor is not None and (user is None or actor.id != user.id) else None
    event = audit.record(
        session,
        now,
        "patient.erased",
        staff_actor,
        patient_id=patient.id,
        reason=reason,
        offers_withdrawn=withdrawn,
        bookings_cancelled=cancelled,
    )
    if staff_actor is None and actor is not None:
        event.actor_role = str(actor.role)


def _cancel_future_bookings(
    session: Session, now: dt.datetime, patient: Patient, actor: User | None, settings: Settings
) -> int:
    """Cancel bookings still ahead. Within the practice's notice, through the offer engine (the
    practice is told, the time is offered again); otherwise the booking is just marked."""
    rows = session.scalars(
        select(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.patient_id == patient.id,
            Booking.status == BookingStatus.CONFIRMED,
            Slot.start_at > now,
        )
    ).all()
    for booking in rows:
        try:
            with session.begin_nested():
                offers.cancel_booking_by_patient(session, now, actor, booking, settings)
            continue
        except DomainError:
            session.refresh(booking)
        if booking.status != BookingStatus.CONFIRMED:
            continue
        booking.status = BookingStatus.CANCELLED
        booking.cancelled_by = "patient"
        booking.changed_at = now
        audit.record(
            session,
            now,
            "booking.cancelled",
            None,
            patient_id=patient.id,
            booking_id=booking.id,
            slot_id=booking.slot_id,
            reason="erasure",
        )
    return len(rows)


def _delete_account(session: Session, patient: Patient, user: User) -> None:
    """Remove the account row and every mail to its address (sent or not)."""
    session.execute(
        delete(OutboxMessage).where(
            or_(OutboxMessage.user_id == user.id, OutboxMessage.to_addr == user.email)
        )
    )
    patient.user_id = None
    session.flush()
    session.delete(user)
    session.flush()


def finish_erasure(session: Session, now: dt.datetime, patient: Patient) -> None:
    """Second step after `erase_personal_data(keep_address=True)`: drop the address too."""
    user = session.get(User, patient.user_id) if patient.user_id else None
    if user is not None:
        _delete_account(session, patient, user)
    audit.record(session, now, "patient.erasure_completed", None, patient_id=patient.id)


def delete_account(
    session: Session,
    now: dt.datetime,
    user: User,
    patient: Patient,
    password: str,
    *,
    settings: Settings,
) -> None:
    """The patient deletes their account: password check, then immediate, complete erasure."""
    if patient.user_id != user.id:
        raise NotAllowed(N_("Nicht erlaubt."))
    if not accounts.password_matches(user, password):
        raise InvalidInput(N_("Das Passwort ist falsch."), "password")
    erase_personal_data(session, now, patient, user, reason="patient_request", settings=settings)
