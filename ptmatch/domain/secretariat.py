"""The secretariat console: find callers, show their card (never clinical data), register
callers by phone, record the clinical intake write-only, keep call notes, put callers on
lists, answer offers for them, and see the day's slots of the practices it serves.

Every function takes the acting secretariat user and asks `ptmatch.domain.access` whether
it may see or act for the patient; nothing here loads `PatientClinical` for reading.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from ptmatch import links
from ptmatch.catalog import N_, PROBLEM_AREAS
from ptmatch.config import Settings
from ptmatch.domain import access, accounts, audit, calls, groups, offers, patients, waitlist
from ptmatch.domain.errors import (
    InvalidInput,
    NotAllowed,
    NotFound,
    Problems,
    enum_value,
    raise_first,
)
from ptmatch.models import (
    Availability,
    Booking,
    CallKind,
    CallNote,
    CallOutcome,
    EntryStatus,
    GroupEnrollment,
    GroupProgram,
    Offer,
    OfferStatus,
    Patient,
    PatientClinical,
    PatientStatus,
    Practice,
    RegisteredVia,
    Role,
    Slot,
    SlotStatus,
    Therapist,
    TokenPurpose,
    User,
    WaitlistEntry,
)
from ptmatch.notifications import outbox

BERLIN = ZoneInfo("Europe/Berlin")
SEARCH_LIMIT = 50
NOTE_MAX = 1000

_DATE_PATTERNS = (
    re.compile(r"^(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})$"),
    re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$"),
)
_PHONE_RE = re.compile(r"^[+0-9][0-9 ()/\-]{3,30}$")


def _require_secretary(actor: User | None) -> None:
    if actor is None or actor.role != Role.SECRETARY or not actor.is_enabled:
        raise NotAllowed(N_("Nur für das Sekretariat."))


def _require_act(session: Session, now: dt.datetime, actor: User, patient: Patient) -> None:
    _require_secretary(actor)
    if not access.patient_access(session, actor, patient, now).act:
        raise NotAllowed(N_("Sie dürfen für diese Person nicht handeln."))


def get_caller(session: Session, now: dt.datetime, actor: User, patient_id: int) -> Patient:
    """The patient if this secretary may see their identity; NotFound otherwise (the same
    answer for "does not exist" and "not yours", so ids cannot be probed)."""
    _require_secretary(actor)
    patient = session.get(Patient, patient_id)
    if patient is None or not access.patient_access(session, actor, patient, now).identity:
        raise NotFound(N_("Nicht gefunden."))
    return patient


# --- search ------------------------------------------------------------------------------


def parse_birth_date(text: str) -> dt.date | None:
    text = (text or "").strip()
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            try:
                return dt.date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                return None
    return None


def _phone_digits(text: str) -> str:
    """Digits to match at the end of a stored E.164 number: "0170 123" -> "170123"."""
    digits = re.sub(r"\D", "", text)
    if text.strip().startswith("+49"):
        digits = digits[2:]
    elif digits.startswith("0049"):
        digits = digits[4:]
    return digits.lstrip("0")


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_FOLD_CHARS = (("Ä", "a"), ("Ö", "o"), ("Ü", "u"), ("ä", "a"), ("ö", "o"), ("ü", "u"), ("ß", "ss"))
_FOLD_PAIRS = (("ae", "a"), ("oe", "o"), ("ue", "u"))


def fold_name(text: str) -> str:
    """A name as a caller may spell it on the phone: "Krüger", "Krueger" and "Kruger" all
    become "kruger" (umlauts and their ae/oe/ue spellings folded, case ignored)."""
    for char, plain in _FOLD_CHARS:
        text = text.replace(char, plain)
    text = text.lower()
    for pair, plain in _FOLD_PAIRS:
        text = text.replace(pair, plain)
    return text


def _fold_sql(column):
    """`fold_name` in SQL (the same steps, so both sides meet; SQLite's lower() is ASCII-only,
    which is why the umlauts go first)."""
    for char, plain in _FOLD_CHARS:
        column = func.replace(column, char, plain)
    column = func.lower(column)
    for pair, plain in _FOLD_PAIRS:
        column = func.replace(column, pair, plain)
    return column


@dataclass(frozen=True)
class CallerHit:
    patient: Patient
    email: str | None


def search_callers(
    session: Session, now: dt.datetime, actor: User, query: str, limit: int = SEARCH_LIMIT
) -> list[CallerHit]:
    """Callers this secretary may see, matching a name, phone number, e-mail or birth date.

    The query may combine a name and a birth date ("Müller 17.05.1990"). A query that is
    only a phone number matches the end of the stored number, so "0170 1234567" finds
    "+491701234567".
    """
    _require_secretary(actor)
    query = (query or "").strip()[:200]
    if not query:
        return []
    conditions = []
    if (
        _PHONE_RE.match(query)
        and len(re.sub(r"\D", "", query)) >= 4
        and parse_birth_date(query) is None
    ):
        digits = _phone_digits(query)
        if not digits:
            return []
        stripped = func.replace(func.replace(Patient.phone, " ", ""), "-", "")
        conditions.append(stripped.like(f"%{_like(digits)}", escape="\\"))
    else:
        for token in query.split():
            day = parse_birth_date(token)
            if day is not None:
                conditions.append(Patient.birth_date == day)
            elif "@" in token:
                conditions.append(func.lower(User.email) == token.lower())
            else:
                low = f"%{_like(token.lower())}%"
                cap = f"%{_like(token[:1].upper() + token[1:].lower())}%"
                folded = f"%{_like(fold_name(token))}%"
                conditions.append(
                    or_(
                        _fold_sql(Patient.first_name).like(folded, escape="\\"),
                        _fold_sql(Patient.last_name).like(folded, escape="\\"),
                        func.lower(Patient.first_name).like(low, escape="\\"),
                        func.lower(Patient.last_name).like(low, escape="\\"),
                        # SQLite's lower() folds ASCII only: also try the capitalised form for
                        # "Özdemir".
                        Patient.first_name.like(cap, escape="\\"),
                        Patient.last_name.like(cap, escape="\\"),
                    )
                )
    rows = session.execute(
        select(Patient, User.email)
        .outerjoin(User, User.id == Patient.user_id)
        .where(access.identity_visible_clause(session, actor, now), *conditions)
        .order_by(Patient.last_name, Patient.first_name, Patient.id)
        .limit(limit)
    ).all()
    return [CallerHit(patient, email) for patient, email in rows]


# --- the caller card -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferLine:
    offer: Offer
    slot: Slot | None
    practice: Practice | None
    status: OfferStatus  # effective status (expiry derived on read)
    can_answer: bool
    group: GroupProgram | None = None


@dataclass(frozen=True)
class BookingLine:
    booking: Booking
    slot: Slot
    practice: Practice


@dataclass(frozen=True)
class NoteLine:
    note: CallNote
    author_email: str | None


@dataclass
class CallerCard:
    patient: Patient
    email: str | None
    email_verified: bool
    consent_recorded_by: str | None
    lists: list[WaitlistEntry] = field(default_factory=list)
    availability: list[Availability] = field(default_factory=list)
    offers: list[OfferLine] = field(default_factory=list)
    bookings: list[BookingLine] = field(default_factory=list)
    notes: list[NoteLine] = field(default_factory=list)
    # Issue 19: the caller's group places, and open groups of served practices that fit them.
    enrollments: list[GroupEnrollment] = field(default_factory=list)
    open_groups: list[GroupProgram] = field(default_factory=list)
    phone_display: str = ""
    intake_recorded: bool = False  # only whether an intake exists, never what it says
    can_act: bool = False
    served_practice_ids: set[int] = field(default_factory=set)


def caller_card(session: Session, now: dt.datetime, actor: User, patient: Patient) -> CallerCard:
    """Everything the secretariat may know about a caller: identity, contact, availability,
    lists, offers, bookings, status and call notes. The view is audited (no details)."""
    _require_secretary(actor)
    acc = access.patient_access(session, actor, patient, now)
    if not acc.identity:
        raise NotFound(N_("Nicht gefunden."))
    user = session.get(User, patient.user_id) if patient.user_id else None
    consent_by = (
        session.get(User, patient.consent_recorded_by_id)
        if patient.consent_recorded_by_id
        else None
    )
    card = CallerCard(
        patient=patient,
        email=user.email if user else None,
        email_verified=bool(user and user.email_verified_at),
        consent_recorded_by=consent_by.display_name or consent_by.email if consent_by else None,
        can_act=acc.act,
        served_practice_ids=access.served_practice_ids(session, actor),
        phone_display=patients.display_phone(patient.phone),
    )
    card.lists = list(
        session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.patient_id == patient.id)
            .order_by(WaitlistEntry.status, WaitlistEntry.added_at)
        )
    )
    card.availability = list(
        session.scalars(
            select(Availability)
            .where(Availability.patient_id == patient.id)
            .order_by(Availability.weekday, Availability.start_min)
        )
    )
    rows = session.execute(
        select(Offer, Slot, Practice)
        .outerjoin(Slot, Slot.id == Offer.slot_id)
        .outerjoin(Practice, Practice.id == Slot.practice_id)
        .where(Offer.patient_id == patient.id)
        .order_by(Offer.sent_at.desc(), Offer.id.desc())
        .limit(50)
    ).all()
    for offer, slot, practice in rows:
        status = offer.effective_status(now)
        group = offer.group if offer.group_id is not None else None
        answerable = (
            status == OfferStatus.PENDING
            if slot is not None
            else groups.is_group_offer_answerable(session, offer, now)
        )
        card.offers.append(
            OfferLine(
                offer,
                slot,
                practice or (group.practice if group is not None else None),
                status,
                can_answer=acc.act and answerable,
                group=group,
            )
        )
    card.enrollments = list(
        session.scalars(
            select(GroupEnrollment)
            .where(GroupEnrollment.patient_id == patient.id)
            .options(selectinload(GroupEnrollment.group).selectinload(GroupProgram.practice))
            .order_by(GroupEnrollment.id.desc())
            .limit(20)
        )
    )
    if acc.act:
        card.open_groups = groups.open_groups_for(
            session, patient, now, practice_ids=card.served_practice_ids
        )
    card.bookings = [
        BookingLine(b, s, p)
        for b, s, p in session.execute(
            select(Booking, Slot, Practice)
            .join(Slot, Slot.id == Booking.slot_id)
            .join(Practice, Practice.id == Slot.practice_id)
            .where(Booking.patient_id == patient.id)
            .order_by(Slot.start_at.desc())
            .limit(50)
        ).all()
    ]
    card.notes = [
        NoteLine(n, email)
        for n, email in session.execute(
            select(CallNote, User.email)
            .outerjoin(User, User.id == CallNote.author_id)
            .where(CallNote.patient_id == patient.id)
            .order_by(CallNote.created_at.desc(), CallNote.id.desc())
            .limit(50)
        ).all()
    ]
    card.intake_recorded = (
        session.scalar(
            select(PatientClinical.patient_id).where(PatientClinical.patient_id == patient.id)
        )
        is not None
    )
    audit.record(session, now, "secretariat.caller_viewed", actor, patient_id=patient.id)
    return card


# --- registering a caller ------------------------------------------------------------------------

SET_PASSWORD_VALID_FOR = dt.timedelta(days=30)


def caller_problems(
    session: Session,
    now: dt.datetime,
    *,
    profile: patients.Profile,
    email: str | None,
    consent_health: bool,
    consent_rules: bool,
) -> list[InvalidInput]:
    """Every problem of a caller's registration (the first per field), without writing: the
    form shows them all in one round, `register_caller` refuses on the first."""
    found = Problems()
    found.add(*patients.profile_problems(session, now.date(), profile))
    with found:
        if not profile.phone:
            raise InvalidInput(
                N_("Bitte eine Telefonnummer angeben: so erreicht das Sekretariat die Person."),
                "phone",
            )
    with found:
        if email and email.strip():
            accounts.check_available_email(session, email)
    with found:
        if not consent_health:
            raise InvalidInput(
                N_("Ohne Einwilligung können wir nicht vermitteln."), "consent_health"
            )
    with found:
        if not consent_rules:
            raise InvalidInput(
                N_("Ohne Einwilligung können wir nicht vermitteln."), "consent_rules"
            )
    return found.found


def register_caller(
    session: Session,
    now: dt.datetime,
    actor: User,
    *,
    profile: patients.Profile,
    email: str | None,
    consent_health: bool,
    consent_rules: bool,
) -> Patient:
    """Register a caller on the phone (profile and availability as in self-registration).

    The secretary read out the consent texts; the verbal consent is stored with who
    (`consent_recorded_by_id`) and when (the consent timestamps). With an e-mail address the
    caller gets an account without a password and a mail to set one (they may never need it:
    the secretariat can answer offers for them). The address counts as verified because the
    secretary read it back to the caller, and the set-password link proves it again when
    used. Without an address there is no account; the caller is reached by phone and is
    matchable because the consent was recorded (`patients.is_matchable`).
    """
    _require_secretary(actor)
    raise_first(
        caller_problems(
            session,
            now,
            profile=profile,
            email=email,
            consent_health=consent_health,
            consent_rules=consent_rules,
        )
    )
    user = None
    if email and email.strip():
        user = accounts.create_user(
            session, now, email=email, password=None, role=Role.PATIENT, actor=actor
        )
        user.email_verified_at = now
    patient = Patient(
        user_id=user.id if user else None,
        first_name=profile.first_name,
        last_name=profile.last_name,
        status=PatientStatus.ACTIVE,
        status_changed_at=now,
        created_at=now,
        last_confirmed_at=now,
        registered_via=RegisteredVia.SECRETARIAT,
        registered_by_id=actor.id,
        consent_health_at=now,
        consent_rules_at=now,
        consent_recorded_by_id=actor.id,
    )
    session.add(patient)
    session.flush()
    patients.update_profile(session, now, patient, profile, actor)
    audit.record(
        session,
        now,
        "patient.registered",
        actor,
        patient_id=patient.id,
        via="secretariat",
        with_account=user is not None,
    )
    audit.record(
        session,
        now,
        "patient.consented",
        actor,
        patient_id=patient.id,
        health=True,
        rules=True,
        verbal=True,
    )
    if user is not None:
        token = accounts.issue_user_token(
            session, now, user, TokenPurpose.SET_PASSWORD, SET_PASSWORD_VALID_FOR
        )
        outbox.enqueue(
            session,
            now,
            kind="set_password",
            dedupe_key=f"caller-welcome:{user.id}",
            to_user=user,
            link_path=links.set_password(token),
        )
    return patient


def update_caller_profile(
    session: Session, now: dt.datetime, actor: User, patient: Patient, profile: patients.Profile
) -> None:
    """Change a caller's contact, preferences and weekly times on their behalf."""
    _require_act(session, now, actor, patient)
    patients.update_profile(session, now, patient, profile, actor)


# --- write-only clinical intake ------------------------------------------------------------------


def record_intake(
    session: Session, now: dt.datetime, actor: User, patient: Patient, intake: patients.Intake
) -> None:
    """Record what a caller says about their problem, write-only.

    Validation is the patient area's (`patients.validate_intake`). The secretariat never
    reads the record back, so it must not overwrite it blindly: problem areas are added to
    those already recorded, the description is appended, the urgency flag is only ever
    raised and a new PTV-11 code replaces the old one.
    """
    _require_act(session, now, actor, patient)
    patients.validate_intake(intake)
    if not (intake.problems or intake.description or intake.urgent or intake.urgency_code):
        raise InvalidInput(N_("Bitte mindestens eine Angabe machen."), "description")
    clinical = session.get(PatientClinical, patient.id)
    if clinical is None:
        clinical = PatientClinical(
            patient_id=patient.id, problems_mask=0, description="", urgent=False, urgency_code=""
        )
        session.add(clinical)
    clinical.problems_mask = (clinical.problems_mask or 0) | PROBLEM_AREAS.to_mask(intake.problems)
    if intake.description:
        previous = (clinical.description or "").strip()
        clinical.description = (
            f"{previous}\n\n{intake.description}" if previous else intake.description
        )
    clinical.urgent = bool(clinical.urgent) or intake.urgent
    if intake.urgency_code:
        clinical.urgency_code = intake.urgency_code
    clinical.updated_at = now
    clinical.recorded_by_id = actor.id
    session.flush()
    audit.record(session, now, "clinical.recorded", actor, patient_id=patient.id)


# --- call notes ----------------------------------------------------------------------------------


def add_call_note(
    session: Session, now: dt.datetime, actor: User, patient: Patient, text: str
) -> CallNote:
    """A non-clinical note about a call ("call back after 4 pm")."""
    _require_act(session, now, actor, patient)
    text = (text or "").strip()
    if not text:
        raise InvalidInput(N_("Bitte einen Text eingeben."), "text")
    if len(text) > NOTE_MAX:
        raise InvalidInput(N_("Der Text ist zu lang."), "text")
    note = CallNote(patient_id=patient.id, author_id=actor.id, text=text, created_at=now)
    session.add(note)
    session.flush()
    audit.record(session, now, "secretariat.call_note_added", actor, patient_id=patient.id)
    return note


# --- slots of the served practices ----------------------------------------------------------------


@dataclass(frozen=True)
class SlotLine:
    slot: Slot
    practice: Practice
    therapist_name: str
    booking: Booking | None
    booked_patient: Patient | None
    pending_offers: int


def berlin_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=BERLIN)
    end = start + dt.timedelta(days=1)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)  # wall-clock day: 23 or 25 h at DST


def berlin_today(now: dt.datetime) -> dt.date:
    return now.astimezone(BERLIN).date()


def served_practices(session: Session, actor: User) -> list[Practice]:
    _require_secretary(actor)
    ids = access.served_practice_ids(session, actor)
    if not ids:
        return []
    return list(
        session.scalars(select(Practice).where(Practice.id.in_(ids)).order_by(Practice.name))
    )


def slots_overview(
    session: Session,
    now: dt.datetime,
    actor: User,
    *,
    start: dt.datetime,
    end: dt.datetime,
    statuses: tuple[SlotStatus, ...] | None = None,
    limit: int = 200,
) -> list[SlotLine]:
    """Slots of the served practices starting in [start, end), with their outcome: who booked
    (the booked caller's identity is visible to the secretariat serving that practice) and how
    many offers are still open. Four queries whatever the number of slots."""
    _require_secretary(actor)
    served = access.served_practice_ids(session, actor)
    if not served:
        return []
    therapist_user = aliased(User)
    query = (
        select(Slot, Practice, therapist_user.display_name)
        .join(Practice, Practice.id == Slot.practice_id)
        .join(Therapist, Therapist.id == Slot.therapist_id)
        .join(therapist_user, therapist_user.id == Therapist.user_id)
        .where(Slot.practice_id.in_(served), Slot.start_at >= start, Slot.start_at < end)
        .order_by(Slot.start_at, Practice.name, Slot.id)
        .limit(limit)
    )
    if statuses:
        query = query.where(Slot.status.in_(statuses))
    rows = session.execute(query).all()
    slot_ids = [slot.id for slot, _, _ in rows]
    bookings: dict[int, tuple[Booking, Patient]] = {}
    pending: dict[int, int] = {}
    if slot_ids:
        for booking, patient in session.execute(
            select(Booking, Patient)
            .join(Patient, Patient.id == Booking.patient_id)
            .where(Booking.slot_id.in_(slot_ids))
        ).all():
            bookings[booking.slot_id] = (booking, patient)
        pending = dict(
            session.execute(
                select(Offer.slot_id, func.count(Offer.id))
                .where(
                    Offer.slot_id.in_(slot_ids),
                    Offer.status == OfferStatus.PENDING,
                    Offer.expires_at > now,
                )
                .group_by(Offer.slot_id)
            ).all()
        )
    lines = []
    for slot, practice, therapist_name in rows:
        booking, patient = bookings.get(slot.id, (None, None))
        lines.append(
            SlotLine(
                slot, practice, therapist_name or "", booking, patient, pending.get(slot.id, 0)
            )
        )
    return lines


def active_entry_practice_ids(session: Session, patient: Patient) -> set[int | None]:
    """The lists (practice ids, None = pool) the patient is actively on."""
    return set(
        session.scalars(
            select(WaitlistEntry.practice_id).where(
                WaitlistEntry.patient_id == patient.id, WaitlistEntry.status == EntryStatus.ACTIVE
            )
        )
    )


# --- lists ----------------------------------------------------------------------------------------


def put_on_list(
    session: Session, now: dt.datetime, actor: User, patient: Patient, practice_id: int | None
) -> WaitlistEntry:
    """Put a caller on the list of a served practice, or in the regional pool (None)."""
    _require_act(session, now, actor, patient)
    practice = None
    if practice_id is not None:
        if practice_id not in access.served_practice_ids(session, actor):
            raise NotAllowed(N_("Diese Praxis betreut Ihr Sekretariat nicht."))
        practice = session.get(Practice, practice_id)
    return waitlist.join_list(session, now, patient, practice, actor=actor)


def take_off_list(
    session: Session, now: dt.datetime, actor: User, patient: Patient, entry_id: int
) -> WaitlistEntry:
    """Take a caller off a list at their request (a served practice's list or the pool)."""
    _require_act(session, now, actor, patient)
    entry = session.get(WaitlistEntry, entry_id)
    if entry is None or entry.patient_id != patient.id:
        raise NotFound(N_("Nicht gefunden."))
    if entry.practice_id is not None and entry.practice_id not in access.served_practice_ids(
        session, actor
    ):
        raise NotAllowed(N_("Diese Praxis betreut Ihr Sekretariat nicht."))
    return waitlist.leave_list(session, now, patient, entry, actor=actor)


# --- offers on a caller's behalf ------------------------------------------------------------------


def answer_offer(
    session: Session,
    now: dt.datetime,
    actor: User,
    offer: Offer,
    *,
    accept: bool,
    settings: Settings,
):
    """Accept (returns the Booking) or decline an offer for a caller on the phone.

    The offer engine applies the same first-answer-wins rules as on the web and records the
    change with the secretary as actor (audit events `offer.accepted` / `offer.declined`,
    `Offer.responded_by_id`, `Booking.booked_by_id`). A group offer goes through the group
    engine the same way (accept: a seat or the group's waitlist, returns the enrolment).
    """
    patient = session.get(Patient, offer.patient_id)
    _require_act(session, now, actor, patient)
    if offer.slot_id is None:
        if accept:
            return groups.accept_group_offer(session, now, offer, actor)
        return groups.decline_group_offer(session, now, offer, actor, settings)
    if accept:
        return offers.accept_offer(session, now, offer, actor, settings)
    return offers.decline_offer(session, now, offer, actor, settings)


def enrol_caller(
    session: Session,
    now: dt.datetime,
    actor: User,
    patient: Patient,
    group_id: int,
    settings: Settings,
) -> GroupEnrollment:
    """Enrol a caller into an open group of a practice the secretariat serves: the group
    engine's self-enrolment (same hard filters, same seat race, waitlist beyond the maximum),
    audited with the secretary as actor. Allowed also where the practice takes offers only."""
    _require_act(session, now, actor, patient)
    group = session.get(GroupProgram, group_id)
    if group is None or group.practice_id not in access.served_practice_ids(session, actor):
        raise NotFound(N_("Nicht gefunden."))
    return groups.self_enrol(session, now, actor, group, patient, settings)


# --- the call queue -------------------------------------------------------------------------------


def record_call_outcome(
    session: Session,
    now: dt.datetime,
    actor: User,
    task_id: int,
    outcome,
    *,
    settings: Settings,
):
    """The secretary phoned (or tried to): record what came of it.

    An offer call: "accepted" books the slot by the same first-answer-wins rules as the web
    (SlotTaken when a mail patient was quicker: the task stays open and drops out of the
    queue with its offer); "declined" declines; "not reached" withdraws the offer and passes
    the place to the next candidate at once. A group seat offer the same way through the group
    engine ("accepted": a seat, or the group's waitlist when the seats are gone). A reminder:
    reached or not. A check-in: "still looking" confirms, "not reached" leaves it to the
    check-in's own pause. Returns the booking (or group enrolment) of an accepted offer, else
    None.
    """
    _require_secretary(actor)
    task = calls.get_task(session, now, actor, task_id)
    outcome = enum_value(CallOutcome, outcome, "outcome")
    if outcome not in calls.OUTCOMES[task.kind]:
        raise InvalidInput(N_("Bitte ein Ergebnis aus der Liste wählen."), "outcome")
    result = None
    if task.kind == CallKind.OFFER:
        offer = session.get(Offer, task.offer_id)
        if outcome == CallOutcome.NOT_REACHED:
            engine = offers if offer.slot_id is not None else groups
            engine.pass_on_unreached(session, now, offer, actor, settings)
        else:
            result = answer_offer(
                session,
                now,
                actor,
                offer,
                accept=outcome == CallOutcome.ACCEPTED,
                settings=settings,
            )
    elif task.kind == CallKind.CHECKIN and outcome == CallOutcome.STILL_LOOKING:
        patients.confirm_still_looking(session, now, task.patient, actor)
    calls.close_call(session, now, task, outcome, actor)
    return result


def call_queue(session: Session, now: dt.datetime, actor: User) -> list[calls.QueueRow]:
    _require_secretary(actor)
    return calls.queue(session, now, actor)
