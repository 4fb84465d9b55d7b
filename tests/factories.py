"""Factories: make_x(session, **overrides) builds one object with sensible defaults and flushes.

Nothing here commits; tests that need real commits (web, concurrency) call session.commit().
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyotp

from ptmatch.catalog import INSURANCES, LANGUAGES, METHODS, POPULATIONS, PROBLEM_AREAS
from ptmatch.domain.passwords import hash_password
from ptmatch.models import (
    Availability,
    Patient,
    PatientClinical,
    Practice,
    Preference,
    Role,
    SecretariatAssignment,
    Therapist,
    User,
    WaitlistEntry,
)
from tests.conftest import NOW

PASSWORD = "correct horse battery"
_HASH = hash_password(PASSWORD)  # argon2 once per run, not once per user
_seq = itertools.count(1)


def make_user(
    session,
    role: Role = Role.PATIENT,
    *,
    totp: bool | None = None,
    password: str | None = None,
    **overrides,
) -> User:
    n = next(_seq)
    with_totp = (role != Role.PATIENT) if totp is None else totp
    fields = dict(
        email=f"user{n}@example.org",
        password_hash=hash_password(password) if password else _HASH,
        role=role,
        display_name=f"User {n}",
        locale="de",
        created_at=NOW,
        email_verified_at=NOW,
        session_version=1,
        failed_logins=0,
        is_enabled=True,
    )
    if with_totp:
        fields.update(totp_secret=pyotp.random_base32(), totp_confirmed_at=NOW)
    fields.update(overrides)
    user = User(**fields)
    session.add(user)
    session.flush()
    return user


def make_practice(session, **overrides) -> Practice:
    n = next(_seq)
    fields = dict(
        name=f"Praxis {n}",
        slug=f"praxis-{n}",
        street="Hauptstr. 1",
        postcode="53111",
        city="Bonn",
        lat=50.7374,
        lon=7.0982,
        accepts_pool=True,
        created_at=NOW,
        booking_info="Klingel 2. OG",
        cancellation_policy="24 Stunden vorher absagen.",
        video_link_template="https://video.test/{slot_id}",
    )
    fields.update(overrides)
    practice = Practice(**fields)
    session.add(practice)
    session.flush()
    return practice


def make_therapist(
    session,
    practice: Practice | None = None,
    *,
    user: User | None = None,
    methods=("vt",),
    specialties=(),
    exclusions=(),
    populations=("adults",),
    languages=("de",),
    insurances=None,
    **overrides,
) -> Therapist:
    user = user or make_user(session, Role.THERAPIST)
    practice = practice if practice is not None else make_practice(session)
    fields = dict(
        user_id=user.id,
        practice_id=practice.id if practice else None,
        gender="f",
        approved_at=NOW,
        approbation="PP, Approbation 2015",
        methods_mask=METHODS.to_mask(methods),
        specialties_mask=PROBLEM_AREAS.to_mask(specialties),
        exclusions_mask=PROBLEM_AREAS.to_mask(exclusions),
        populations_mask=POPULATIONS.to_mask(populations),
        languages_mask=LANGUAGES.to_mask(languages),
        insurances_mask=INSURANCES.to_mask(insurances)
        if insurances is not None
        else INSURANCES.all_mask,
        offers_in_person=True,
        offers_video=True,
        offers_group=False,
        session_minutes=50,
        buffer_minutes=10,
        switch_buffer_minutes=15,
    )
    fields.update(overrides)
    therapist = Therapist(**fields)
    session.add(therapist)
    session.flush()
    return therapist


DEFAULT_WINDOWS = [(wd, 8 * 60, 20 * 60) for wd in range(5)]  # Mon-Fri 8-20 Berlin time


def make_patient(
    session,
    *,
    user: User | None = None,
    problems=("depression",),
    methods=(),
    languages=("de",),
    windows=DEFAULT_WINDOWS,
    description="Beschreibung",
    urgent=False,
    lists=(),
    pool=False,
    added_at: dt.datetime | None = None,
    **overrides,
) -> Patient:
    user = user or make_user(session, Role.PATIENT)
    n = next(_seq)
    fields = dict(
        user_id=user.id,
        first_name=f"Vorname{n}",
        last_name=f"Nachname{n}",
        phone=f"+4917012345{n:03d}"[:16],
        birth_date=dt.date(1990, 5, 17),
        gender="f",
        postcode="53111",
        lat=50.7374,
        lon=7.0982,
        max_distance_km=25,
        languages_mask=LANGUAGES.to_mask(languages),
        therapist_gender_wish="any",
        methods_mask=METHODS.to_mask(methods),
        insurance="gkv",
        video_pref=Preference.ACCEPTABLE,
        group_pref=Preference.NO,
        created_at=added_at or NOW - dt.timedelta(days=30),
        consent_health_at=NOW,
        consent_rules_at=NOW,
        last_confirmed_at=NOW,
    )
    fields.update(overrides)
    patient = Patient(**fields)
    session.add(patient)
    session.flush()
    session.add(
        PatientClinical(
            patient_id=patient.id,
            problems_mask=PROBLEM_AREAS.to_mask(problems),
            description=description,
            urgent=urgent,
            urgency_code="A1B2C3" if urgent else "",
            updated_at=NOW,
        )
    )
    for weekday, start, end in windows:
        session.add(
            Availability(patient_id=patient.id, weekday=weekday, start_min=start, end_min=end)
        )
    for practice in lists:
        add_to_list(session, patient, practice, added_at=added_at)
    if pool:
        add_to_list(session, patient, None, added_at=added_at)
    session.flush()
    return patient


def add_to_list(
    session, patient: Patient, practice: Practice | None, *, added_at=None, **overrides
) -> WaitlistEntry:
    entry = WaitlistEntry(
        patient_id=patient.id,
        practice_id=practice.id if practice else None,
        added_at=added_at or patient.created_at,
        **overrides,
    )
    session.add(entry)
    session.flush()
    return entry


def make_secretary(session, practices=(), **overrides) -> User:
    user = make_user(session, Role.SECRETARY, **overrides)
    for practice in practices:
        session.add(SecretariatAssignment(user_id=user.id, practice_id=practice.id))
    session.flush()
    return user


def make_slot(
    session,
    therapist: Therapist,
    *,
    start_at: dt.datetime | None = None,
    minutes: int = 50,
    **overrides,
):
    """A slot written directly (no offers, no checks): tomorrow 14:00 Berlin (NOW + 28 h) by
    default."""
    from ptmatch.models import Modality, OfferMode, Slot, SlotKind, SlotStatus

    start_at = start_at or NOW + dt.timedelta(hours=28)
    fields = dict(
        practice_id=therapist.practice_id,
        therapist_id=therapist.id,
        start_at=start_at,
        minutes=minutes,
        kind=SlotKind.SPRECHSTUNDE,
        modality=Modality.IN_PERSON,
        status=SlotStatus.OFFERING,
        offer_mode=OfferMode.MANUAL,
        wave_size=3,
        offer_ttl_minutes=240,
        offer_deadline_at=start_at - dt.timedelta(hours=2),
        current_wave=0,
        created_at=NOW,
    )
    fields.update(overrides)
    slot = Slot(**fields)
    session.add(slot)
    session.flush()
    return slot


def make_offer(session, slot, patient: Patient, *, token: str | None = None, **overrides):
    """A pending offer (token hash of `token`, or a random one) expiring in four hours."""
    from ptmatch.domain.tokens import hash_token, new_token
    from ptmatch.models import Offer, OfferStatus

    digest = hash_token(token) if token else new_token()[1]
    fields = dict(
        slot_id=slot.id,
        patient_id=patient.id,
        wave=1,
        token_hash=digest,
        status=OfferStatus.PENDING,
        score=0,
        sent_at=NOW,
        expires_at=min(NOW + dt.timedelta(hours=4), slot.offer_deadline_at),
    )
    fields.update(overrides)
    offer = Offer(**fields)
    session.add(offer)
    session.flush()
    return offer


def empty_tables_quickly(engine) -> None:
    """DELETE every table (children first): on PostgreSQL ~20x faster than the TRUNCATE of the
    default cleanup for the few rows a test writes. Modules opt in by overriding the
    ``_clean_database`` fixture (identity sequences are not reset)."""
    from sqlalchemy import text

    from ptmatch.db import Base

    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))


GROUP_START = NOW + dt.timedelta(days=16, hours=7)  # a Thursday, 17:00 Berlin


def make_group(
    session, therapist: Therapist, *, first_session_at: dt.datetime | None = None, **overrides
):
    """A group written directly (no offers, no checks): 16 days after NOW at 17:00 Berlin, 5-10
    people."""
    from ptmatch.models import GroupProgram, GroupStatus, Modality

    fields = dict(
        practice_id=therapist.practice_id,
        therapist_id=therapist.id,
        title="Skillsgruppe",
        method="dbt",
        problems_mask=0,
        modality=Modality.IN_PERSON,
        first_session_at=first_session_at or GROUP_START,
        session_count=10,
        minutes=100,
        min_participants=5,
        max_participants=10,
        enrolled_count=0,
        status=GroupStatus.OPEN,
        wave_size=2,
        offer_ttl_minutes=1440,
        current_wave=0,
        created_at=NOW,
    )
    fields.update(overrides)
    group = GroupProgram(**fields)
    session.add(group)
    session.flush()
    return group


def make_calendar_block(
    session,
    therapist: Therapist,
    *,
    weekday: int = 1,
    start_min: int = 8 * 60,
    end_min: int = 12 * 60,
    modality="video",
):
    """A weekly calendar block (Berlin wall clock): Tuesday 8-12 video by default."""
    from ptmatch.models import CalendarBlock, Modality

    block = CalendarBlock(
        therapist_id=therapist.id,
        weekday=weekday,
        start_min=start_min,
        end_min=end_min,
        modality=Modality(modality),
    )
    session.add(block)
    session.flush()
    return block


@dataclass
class Network:
    """A small regional network: practices X and Y with a therapist each, a secretariat
    serving X and one serving Y, an admin, patient A on X's list and patient B on Y's.
    ``on_x`` is everyone on X's list: A first, then the ``more_on_x`` patients."""

    x: Practice
    y: Practice
    ther_x: Therapist
    ther_y: Therapist
    sec_x: User
    sec_y: User
    admin: User
    a: Patient
    b: Patient
    on_x: list[Patient] = field(default_factory=list)


def make_network(
    session,
    *,
    x: dict | None = None,
    y: dict | None = None,
    ther_x: dict | None = None,
    a: dict | None = None,
    b: dict | None = None,
    more_on_x: Sequence[dict] = (),
) -> Network:
    """The shared setup of the web tests. Each keyword is the overrides for that object's
    factory (make_practice, make_therapist, make_patient); ``more_on_x`` adds one patient on
    X's list per dict. Flushes; the caller commits."""
    px = make_practice(session, **{"name": "Praxis X", **(x or {})})
    py = make_practice(session, **{"name": "Praxis Y", **(y or {})})
    therapist_x = make_therapist(session, px, **(ther_x or {}))
    therapist_y = make_therapist(session, py)
    sec_x, sec_y = make_secretary(session, [px]), make_secretary(session, [py])
    admin = make_user(session, Role.ADMIN)
    patient_a = make_patient(session, **{"lists": [px], **(a or {})})
    patient_b = make_patient(session, **{"lists": [py], **(b or {})})
    more = [make_patient(session, **{"lists": [px], **overrides}) for overrides in more_on_x]
    return Network(
        x=px,
        y=py,
        ther_x=therapist_x,
        ther_y=therapist_y,
        sec_x=sec_x,
        sec_y=sec_y,
        admin=admin,
        a=patient_a,
        b=patient_b,
        on_x=[patient_a, *more],
    )


def make_room(session, practice: Practice, *, name: str | None = None, **overrides):
    """A room of the practice (issue 19): 2 people, not accessible, unless overridden."""
    from ptmatch.models import Room

    fields = dict(
        practice_id=practice.id, name=name or f"Raum {next(_seq)}", capacity=2, accessible=False
    )
    fields.update(overrides)
    room = Room(**fields)
    session.add(room)
    session.flush()
    return room
