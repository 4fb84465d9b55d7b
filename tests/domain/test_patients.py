"""Patients: registration and its validation, matchability, pause / reactivate, export, erasure."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from sqlalchemy import JSON, String, Text, func, select

from ptmatch.catalog import PROBLEM_AREAS
from ptmatch.db import Base
from ptmatch.domain import patients, waitlist
from ptmatch.domain.errors import InvalidInput, NotAllowed
from ptmatch.models import (
    AuditEvent,
    Availability,
    Booking,
    BookingStatus,
    CallNote,
    ClinicalNote,
    EntryStatus,
    Offer,
    OfferStatus,
    OutboxMessage,
    Patient,
    PatientClinical,
    PatientStatus,
    RegisteredVia,
    RemovalReason,
    Role,
    Slot,
    SlotStatus,
    User,
    WaitlistEntry,
)
from tests.factories import add_to_list, make_patient, make_practice, make_therapist, make_user

EMAIL = "quirin.zettelmeyer@example.org"
PASSWORD = "ein sehr gutes passwort"


def a_profile(**overrides) -> patients.Profile:
    fields = dict(
        first_name="Quirin",
        last_name="Zettelmeyer",
        birth_date=dt.date(1988, 3, 14),
        postcode="53111",
        phone="0176 23456789",
        gender="m",
        max_distance_km=15,
        languages=["de", "en"],
        therapist_gender_wish="f",
        methods=["vt", "emdr"],
        insurance="gkv",
        video_pref="wanted",
        group_pref="acceptable",
        windows=[(0, 480, 720), (2, 960, 1200)],
    )
    fields.update(overrides)
    return patients.Profile(**fields)


def an_intake(**overrides) -> patients.Intake:
    fields = dict(
        problems=["anxiety", "trauma"],
        description="Schlafe schlecht seit dem Unfall.",
        urgent=True,
        urgency_code="PTV11ABC123",
    )
    fields.update(overrides)
    return patients.Intake(**fields)


def register(session, now, **overrides):
    kwargs = dict(
        email=EMAIL,
        password=PASSWORD,
        profile=a_profile(),
        intake=an_intake(),
        consent_health=True,
        consent_rules=True,
    )
    kwargs.update(overrides)
    return patients.register_patient(session, now, **kwargs)


# --- registration ----------------------------------------------------------------------------


def test_registration_stores_everything_entered(session, now):
    result = register(session, now)
    patient, user = result.patient, result.user
    assert user.email == EMAIL and user.role == Role.PATIENT and user.email_verified_at is None
    assert (patient.first_name, patient.last_name, patient.phone) == (
        "Quirin",
        "Zettelmeyer",
        "+4917623456789",
    )
    assert patient.birth_date == dt.date(1988, 3, 14) and patient.postcode == "53111"
    assert patient.max_distance_km == 15 and patient.therapist_gender_wish == "f"
    assert patient.video_pref == "wanted" and patient.group_pref == "acceptable"
    assert patient.consent_health_at == now and patient.consent_rules_at == now
    assert patient.registered_via == RegisteredVia.SELF
    clinical = session.get(PatientClinical, patient.id)
    assert PROBLEM_AREAS.from_mask(clinical.problems_mask) == ["anxiety", "trauma"]
    assert clinical.urgent and clinical.urgency_code == "PTV11ABC123"
    windows = session.execute(
        select(Availability.weekday, Availability.start_min, Availability.end_min)
        .where(Availability.patient_id == patient.id)
        .order_by(Availability.weekday)
    ).all()
    assert [tuple(w) for w in windows] == [(0, 480, 720), (2, 960, 1200)]


def test_registration_mails_a_verification_link(session, now):
    result = register(session, now)
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "verify_email"))
    assert mail.to_addr == EMAIL and mail.user_id == result.user.id
    assert "/patient/verify/" in mail.body_text
    assert "Quirin" not in mail.body_text and "Zettelmeyer" not in mail.body_text


def test_registration_gets_coordinates_from_the_postcode_table(session, now):
    from ptmatch.models import Postcode

    session.add(Postcode(code="53111", place="Bonn", state="NRW", lat=50.7374, lon=7.0982))
    session.flush()
    patient = register(session, now).patient
    assert (patient.lat, patient.lon) == pytest.approx((50.7374, 7.0982))


def test_registration_via_practice_link_flags_the_entry(session, now):
    practice = make_practice(session)
    patient = register(session, now, practice=practice).patient
    entry = waitlist.get_entry(session, patient, practice)
    assert entry.via_practice_link is True and entry.status == EntryStatus.ACTIVE
    assert patient.registered_via == RegisteredVia.PRACTICE_LINK


def test_existing_address_gets_a_mail_and_nothing_is_stored(session, now):
    existing = make_user(session, Role.PATIENT, email=EMAIL)
    result = register(session, now)
    assert result.patient is None and result.user is None
    assert session.scalar(select(func.count(Patient.id))) == 0
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.to_addr == EMAIL))
    assert mail.kind == "already_registered" and mail.user_id == existing.id


def test_existing_address_is_matched_case_insensitively(session, now):
    make_user(session, Role.PATIENT, email=EMAIL)
    assert register(session, now, email=EMAIL.upper()).patient is None


PROFILE_ERRORS = [
    (dict(first_name="  "), "first_name"),
    (dict(last_name=""), "last_name"),
    (dict(first_name="x" * 101), "first_name"),
    (dict(last_name="x" * 101), "last_name"),
    (dict(birth_date=None), "birth_date"),
    (dict(birth_date=dt.date(2030, 1, 1)), "birth_date"),
    (dict(birth_date=dt.date(1850, 1, 1)), "birth_date"),
    (dict(phone="12"), "phone"),
    (dict(phone="not a phone"), "phone"),
    (dict(gender="q"), "gender"),
    (dict(postcode="5311"), "postcode"),
    (dict(postcode="ABCDE"), "postcode"),
    (dict(max_distance_km=0), "max_distance_km"),
    (dict(max_distance_km=301), "max_distance_km"),
    (dict(languages=[]), "languages"),
    (dict(languages=["xx"]), "languages"),
    (dict(methods=["voodoo"]), "methods"),
    (dict(therapist_gender_wish="z"), "therapist_gender_wish"),
    (dict(insurance="aok"), "insurance"),
    (dict(video_pref="maybe"), "video_pref"),
    (dict(group_pref="maybe"), "group_pref"),
    (dict(windows=[]), "availability"),
    (dict(windows=[(7, 480, 600)]), "availability"),
    (dict(windows=[(0, 600, 480)]), "availability"),
]


@pytest.mark.parametrize(("overrides", "field"), PROFILE_ERRORS, ids=[f for _, f in PROFILE_ERRORS])
def test_registration_rejects_bad_profile(session, now, overrides, field):
    with pytest.raises(InvalidInput) as err:
        register(session, now, profile=a_profile(**overrides))
    assert err.value.field == field
    assert session.scalar(select(func.count(User.id))) == 0


INTAKE_ERRORS = [
    (dict(problems=["nonsense"]), "problems"),
    (dict(description="x" * 4001), "description"),
    (dict(urgent=True, urgency_code=""), "urgency_code"),
    (dict(urgency_code="<script>"), "urgency_code"),
]


@pytest.mark.parametrize(("overrides", "field"), INTAKE_ERRORS, ids=[f for _, f in INTAKE_ERRORS])
def test_registration_rejects_bad_intake(session, now, overrides, field):
    with pytest.raises(InvalidInput) as err:
        register(session, now, intake=an_intake(**overrides))
    assert err.value.field == field


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(email="not-an-address"), "email"),
        (dict(email=""), "email"),
        (dict(password="short"), "password"),
        (dict(password="password123"), "password"),
        (dict(consent_health=False), "consent_health"),
        (dict(consent_rules=False), "consent_rules"),
    ],
)
def test_registration_rejects_bad_account_or_missing_consent(session, now, overrides, field):
    with pytest.raises(InvalidInput) as err:
        register(session, now, **overrides)
    assert err.value.field == field
    assert session.scalar(select(func.count(Patient.id))) == 0


def test_registration_problems_lists_every_field_at_once_and_writes_nothing(session, now):
    """The check the registration page runs beside its form validation: one problem per bad
    field, from every part of the input, and nothing stored or mailed."""
    profile_bad = {}
    for overrides, _field in PROFILE_ERRORS:
        profile_bad.update(overrides)  # the last bad value of each field
    problems = patients.registration_problems(
        session,
        now,
        email="not-an-address",
        password="short",
        profile=a_profile(**profile_bad),
        intake=an_intake(problems=["nonsense"], urgent=True, urgency_code=""),
        consent_health=False,
        consent_rules=False,
    )
    fields = [p.field for p in problems]
    assert len(fields) == len(set(fields))
    assert set(fields) == {f for _, f in PROFILE_ERRORS} | {
        "email",
        "password",
        "problems",
        "urgency_code",
        "consent_health",
        "consent_rules",
    }
    assert session.scalar(select(func.count(User.id))) == 0
    assert session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_phone_is_stored_in_e164():
    assert patients.normalise_phone("0228 1234567") == "+492281234567"
    assert patients.normalise_phone("+43 1 5134567") == "+4315134567"
    assert patients.normalise_phone("") == ""


# --- the availability grid ------------------------------------------------------------------------


def test_grid_cells_merge_into_windows():
    windows = patients.windows_from_grid(["0-480", "0-600", "0-840", "3-1080"])
    assert windows == [(0, 480, 720), (0, 840, 960), (3, 1080, 1200)]


def test_whole_day_selects_every_block():
    assert patients.windows_from_grid([], ["4"]) == [(4, 480, 1200)]


@pytest.mark.parametrize("cell", ["9-480", "0-481", "x", "0-"])
def test_grid_rejects_foreign_cells(cell):
    with pytest.raises(InvalidInput):
        patients.windows_from_grid([cell])


def test_grid_shows_stored_windows():
    cells, exact = patients.grid_from_windows([(1, 480, 720)])
    assert cells == {"1-480", "1-600"} and exact
    _cells, exact = patients.grid_from_windows([(1, 500, 720)])
    assert not exact


# --- verification and matchability ---------------------------------------------------------------


def _token_from(mail: OutboxMessage, marker: str) -> str:
    start = mail.body_text.index(marker) + len(marker)
    return mail.body_text[start:].split()[0].strip()


def test_verification_link_verifies_once(session, now):
    result = register(session, now)
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "verify_email"))
    token = _token_from(mail, "/patient/verify/")
    assert patients.verify_email(session, now, token).id == result.user.id
    assert result.user.email_verified_at == now
    assert patients.verify_email(session, now, token) is None


def test_unverified_patient_is_never_matchable(session, now):
    result = register(session, now)
    assert not patients.is_matchable(result.patient, result.user, now.date())


def test_verified_active_patient_is_matchable(session, now):
    patient = make_patient(session)
    assert patients.is_matchable(patient, patient.user, now.date())


@pytest.mark.parametrize(
    "change",
    [
        dict(status=PatientStatus.PAUSED),
        dict(status=PatientStatus.BOOKED),
        dict(status=PatientStatus.DELETED),
        dict(consent_health_at=None),
        dict(consent_rules_at=None),
        dict(paused_until=dt.date(2026, 12, 24)),
    ],
)
def test_not_matchable(session, now, change):
    patient = make_patient(session, **change)
    assert not patients.is_matchable(patient, patient.user, now.date())


def test_disabled_account_is_not_matchable(session, now):
    patient = make_patient(session, user=make_user(session, is_enabled=False))
    assert not patients.is_matchable(patient, patient.user, now.date())


# --- profile ----------------------------------------------------------------------------------


def test_update_profile_replaces_windows_and_confirms(session, now):
    patient = make_patient(session)
    later = now + dt.timedelta(days=3)
    patients.update_profile(
        session, later, patient, a_profile(windows=[(5, 480, 600)]), patient.user
    )
    session.expire_all()
    assert [(w.weekday, w.start_min, w.end_min) for w in patient.availability] == [(5, 480, 600)]
    assert patient.first_name == "Quirin" and patient.last_confirmed_at == later


def test_profile_round_trip(session, now):
    patient = register(session, now).patient
    session.expire_all()
    assert dataclasses.asdict(patients.profile_of(patient)) == dataclasses.asdict(
        a_profile(phone="+4917623456789")
    )


def test_needs_an_accessible_room_is_a_profile_field(session, now):
    """Issue 19: set at registration or later; matching reads it as a hard filter."""
    patient = make_patient(session)
    patients.update_profile(
        session, now, patient, a_profile(needs_accessible_room=True), patient.user
    )
    session.expire_all()
    assert patient.needs_accessible_room is True
    assert patients.profile_of(patient).needs_accessible_room is True


# --- pause / reactivate ---------------------------------------------------------------------------


def test_pause_and_reactivate(session, now, settings):
    patient = make_patient(session)
    patients.pause(session, now, patient, dt.date(2026, 12, 20), patient.user, settings=settings)
    assert patient.status == PatientStatus.PAUSED and patient.paused_until == dt.date(2026, 12, 20)
    assert not patients.is_matchable(patient, patient.user, now.date())
    patients.reactivate(session, now, patient, patient.user)
    assert patient.status == PatientStatus.ACTIVE and patient.paused_until is None
    assert patients.is_matchable(patient, patient.user, now.date())


def test_pause_until_a_past_date_is_refused(session, now, settings):
    patient = make_patient(session)
    with pytest.raises(InvalidInput):
        patients.pause(session, now, patient, now.date(), patient.user, settings=settings)


def test_active_patient_cannot_reactivate(session, now):
    patient = make_patient(session)
    with pytest.raises(NotAllowed):
        patients.reactivate(session, now, patient, patient.user)


def test_pause_withdraws_pending_offers(session, now, settings):
    patient = make_patient(session)
    offer = _offer(session, now, patient)
    patients.pause(session, now, patient, None, patient.user, settings=settings)
    session.refresh(offer)
    assert offer.status == OfferStatus.WITHDRAWN


def _slot(session, now, practice=None, *, days=2):
    practice = practice or make_practice(session)
    therapist = make_therapist(session, practice)
    slot = Slot(
        practice_id=practice.id,
        therapist_id=therapist.id,
        start_at=now + dt.timedelta(days=days),
        minutes=50,
        status=SlotStatus.OFFERING,
        offer_deadline_at=now + dt.timedelta(days=1),
        created_at=now,
    )
    session.add(slot)
    session.flush()
    return slot


def _offer(session, now, patient, slot=None):
    slot = slot or _slot(session, now)
    offer = Offer(
        slot_id=slot.id,
        patient_id=patient.id,
        token_hash=f"{patient.id:064d}"[-64:],
        status=OfferStatus.PENDING,
        sent_at=now,
        expires_at=now + dt.timedelta(hours=12),
    )
    session.add(offer)
    session.flush()
    return offer


def test_release_as_no_fit_restores_the_lists(session, now):
    practices = [make_practice(session), make_practice(session)]
    patient = make_patient(session, lists=practices, pool=True)
    slot = _slot(session, now, practices[0])
    booking = Booking(
        slot_id=slot.id, patient_id=patient.id, status=BookingStatus.CONFIRMED, created_at=now
    )
    session.add(booking)
    waitlist.leave_all_for_booking(session, now, patient)
    patient.status = PatientStatus.BOOKED
    session.flush()
    assert not patients.can_reactivate(session, now, patient)
    booking.status = BookingStatus.RELEASED
    session.flush()
    assert patients.can_reactivate(session, now, patient)
    assert patients.reactivate(session, now, patient, patient.user) == 3
    assert all(e.status == EntryStatus.ACTIVE for e in waitlist.list_entries(session, patient))


def test_a_left_list_is_not_restored_by_reactivation(session, now):
    practice = make_practice(session)
    patient = make_patient(session, lists=[practice])
    entry = waitlist.get_entry(session, patient, practice)
    waitlist.leave_list(session, now, patient, entry)
    patient.status = PatientStatus.PAUSED
    patients.reactivate(session, now, patient, patient.user)
    assert entry.status == EntryStatus.REMOVED and entry.removed_reason == RemovalReason.LEFT


# --- export -------------------------------------------------------------------------------------


def test_export_contains_everything_entered(session, now):
    practice = make_practice(session, name="Praxis Sonnenschein")
    result = register(session, now, practice=practice)
    waitlist.join_list(session, now, result.patient, None)
    data = patients.export_data(session, now, result.patient, result.user)
    data = json.loads(json.dumps(data))  # serialisable
    assert data["account"]["email"] == EMAIL
    profile = data["profile"]
    assert (profile["first_name"], profile["last_name"], profile["phone"]) == (
        "Quirin",
        "Zettelmeyer",
        "+4917623456789",
    )
    assert profile["birth_date"] == "1988-03-14" and profile["postcode"] == "53111"
    assert profile["gender"] == "m" and profile["max_distance_km"] == 15
    assert profile["languages"] == ["de", "en"] and profile["methods"] == ["vt", "emdr"]
    assert profile["therapist_gender_wish"] == "f" and profile["insurance"] == "gkv"
    assert profile["video"] == "wanted" and profile["group"] == "acceptable"
    assert data["availability"] == [
        {"weekday": 0, "from": "08:00", "to": "12:00"},
        {"weekday": 2, "from": "16:00", "to": "20:00"},
    ]
    assert data["clinical"]["problem_areas"] == ["anxiety", "trauma"]
    assert data["clinical"]["description"] == "Schlafe schlecht seit dem Unfall."
    assert data["clinical"]["urgent"] is True and data["clinical"]["urgency_code"] == "PTV11ABC123"
    assert data["consents"]["health_data_at"] and data["consents"]["no_show_rules_at"]
    lists = {(w["practice"], w["regional_pool"], w["via_practice_link"]) for w in data["waitlists"]}
    assert lists == {("Praxis Sonnenschein", False, True), (None, True, False)}


def test_export_is_audited(session, now):
    patient = make_patient(session)
    patients.export_data(session, now, patient, patient.user)
    assert (
        session.scalar(select(AuditEvent.action).where(AuditEvent.patient_id == patient.id))
        == "patient.exported"
    )


# --- erasure ----------------------------------------------------------------------------------


def find_everywhere(session, needles: list[str]) -> list[tuple[str, str]]:
    """Every (table, column) whose text holds one of the needles: every text column of every
    table."""
    hits = []
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
        if not columns:
            continue
        for row in session.execute(select(*columns)).all():
            for column, value in zip(columns, row, strict=True):
                if value is None:
                    continue
                text = (
                    value
                    if isinstance(value, str)
                    else json.dumps(value, ensure_ascii=False, default=str)
                )
                hits.extend((table.name, column.name) for n in needles if n.lower() in text.lower())
    return hits


NEEDLES = ["Quirin", "Zettelmeyer", EMAIL, "+4917623456789", "17623456789", "Schlafe schlecht"]


def _full_history(session, now):
    """A registered patient with lists, an offer, a booking, notes and mails."""
    practice = make_practice(session)
    result = register(session, now, practice=practice)
    patient, user = result.patient, result.user
    user.email_verified_at = now
    waitlist.join_list(session, now, patient, None)
    _offer(session, now, patient, _slot(session, now, practice))
    booked_slot = _slot(session, now, practice, days=5)
    session.add(
        Booking(
            slot_id=booked_slot.id,
            patient_id=patient.id,
            status=BookingStatus.CONFIRMED,
            created_at=now,
            booked_by_id=user.id,
        )
    )
    session.add(
        ClinicalNote(
            patient_id=patient.id, practice_id=practice.id, text="Quirin wirkt müde", created_at=now
        )
    )
    session.add(
        CallNote(patient_id=patient.id, text="Zettelmeyer ruft nach 16 Uhr zurück", created_at=now)
    )
    patients.send_verification(session, now, user)
    session.flush()
    assert set(find_everywhere(session, NEEDLES)) >= {
        ("patients", "first_name"),
        ("users", "email"),
        ("outbox_messages", "to_addr"),
    }
    return patient, user


def test_delete_account_erases_name_email_phone_everywhere(session, now, settings):
    patient, user = _full_history(session, now)
    patients.delete_account(session, now, user, patient, PASSWORD, settings=settings)
    session.commit()
    session.expire_all()
    assert find_everywhere(session, NEEDLES) == []
    assert session.get(User, user.id) is None
    assert session.scalar(select(func.count(PatientClinical.patient_id))) == 0
    assert session.scalar(select(func.count(Availability.id))) == 0


def test_delete_account_keeps_anonymous_counts(session, now, settings):
    patient, user = _full_history(session, now)
    patients.delete_account(session, now, user, patient, PASSWORD, settings=settings)
    session.flush()
    shell = session.get(Patient, patient.id)
    assert shell.status == PatientStatus.DELETED and shell.user_id is None
    assert (
        session.scalar(
            select(func.count(WaitlistEntry.id)).where(WaitlistEntry.patient_id == patient.id)
        )
        == 2
    )
    assert (
        session.scalar(select(Booking.status).where(Booking.patient_id == patient.id))
        == BookingStatus.CANCELLED
    )
    # Cancelled through the offer engine: the practice gets the time offered again.
    assert (
        session.scalar(select(func.count(Slot.id)).where(Slot.reposted_from_id.is_not(None))) == 1
    )
    assert (
        session.scalar(select(Offer.status).where(Offer.patient_id == patient.id))
        == OfferStatus.WITHDRAWN
    )
    assert (
        session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "patient.erased")
        )
        == 1
    )


def test_delete_account_needs_the_password(session, now, settings):
    patient, user = _full_history(session, now)
    with pytest.raises(InvalidInput) as err:
        patients.delete_account(session, now, user, patient, "wrong password!", settings=settings)
    assert err.value.field == "password"
    assert patient.status == PatientStatus.ACTIVE


def test_entries_of_an_erased_patient_are_closed(session, now, settings):
    practice = make_practice(session)
    patient = make_patient(session, lists=[practice])
    add_to_list(session, patient, None)
    patients.erase_personal_data(session, now, patient, None, reason="test", settings=settings)
    session.flush()
    reasons = set(
        session.scalars(
            select(WaitlistEntry.removed_reason).where(WaitlistEntry.patient_id == patient.id)
        )
    )
    assert reasons == {RemovalReason.PURGED}


def test_pause_audits_each_withdrawn_offer_and_the_slot_moves_on_at_once(session, now, settings):
    from ptmatch.domain import offers
    from ptmatch.models import AuditEvent

    practice = make_practice(session, wave_rules=[[None, 1, 240]])  # one offer per wave
    therapist = make_therapist(session, practice)
    first = make_patient(session, lists=[practice], added_at=now - dt.timedelta(days=90))
    second = make_patient(session, lists=[practice], added_at=now - dt.timedelta(days=10))
    slot = offers.post_slot(
        session,
        now,
        therapist.user,
        therapist,
        start_at=now + dt.timedelta(hours=30),
        minutes=50,
        kind="sprechstunde",
        modality="in_person",
        mode="auto",
        settings=settings,
    )
    offered = session.scalars(select(Offer).where(Offer.slot_id == slot.id)).all()
    assert [o.patient_id for o in offered] == [first.id]

    patients.pause(session, now, first, None, first.user, settings=settings)

    event = session.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "offer.withdrawn", AuditEvent.patient_id == first.id
        )
    )
    assert (
        event is not None
        and event.details["reason"] == "paused"
        and event.details["offer_id"] == offered[0].id
    )
    pending = session.scalars(
        select(Offer).where(Offer.slot_id == slot.id, Offer.status == OfferStatus.PENDING)
    ).all()
    assert [o.patient_id for o in pending] == [second.id]
