"""Issue 13 (build 10): a practice keeps a patient's identity only while it has a live booking
(or group place) with them, or IDENTITY_ACCESS_DAYS (90) after the appointment; then only the
pseudonym. Patients on the practice's own list keep their names; the secretariat never sees
clinical data, inside the window or out."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select

from ptmatch.domain import access, workbench
from ptmatch.domain.errors import NotFound
from ptmatch.models import (
    BookingStatus,
    EnrollmentStatus,
    GroupEnrollment,
    Offer,
    OfferStatus,
    Patient,
)
from tests.conftest import NOW
from tests.factories import (
    make_group,
    make_patient,
    make_practice,
    make_secretary,
    make_slot,
    make_therapist,
)
from tests.notifications.helpers import make_booking

DAY = dt.timedelta(days=1)
APPOINTMENT = NOW + 3 * DAY  # the booked appointment, three days ahead of the frozen clock


@pytest.fixture
def world(session):
    x, y = make_practice(session, name="Praxis X"), make_practice(session, name="Praxis Y")
    therapist = make_therapist(session, x)
    return {
        "x": x,
        "therapist": therapist,
        "ther": therapist.user,
        "sec": make_secretary(session, [x]),
        # waits on Y's list only: X knows them through the booking alone
        "patient": make_patient(session, lists=[y], last_name="Fenster"),
        "own": make_patient(session, lists=[x], last_name="Eigenliste"),
    }


def _visible(session, actor, now) -> set[int]:
    return set(
        session.scalars(
            select(Patient.id).where(access.identity_visible_clause(session, actor, now))
        )
    )


def _book(session, world, patient, start_at=APPOINTMENT):
    return make_booking(
        session, patient, world["therapist"], start_at=start_at, status=BookingStatus.ATTENDED
    )


def test_a_booked_patient_is_named_while_the_appointment_is_ahead(session, world):
    _book(session, world, world["patient"])
    acc = access.patient_access(session, world["ther"], world["patient"], NOW)
    assert acc.identity and acc.clinical
    assert world["patient"].id in _visible(session, world["ther"], NOW)


@pytest.mark.parametrize(("days", "named"), [(89, True), (90, True), (91, False)])
def test_identity_ends_90_days_after_the_appointment(session, world, days, named):
    patient = world["patient"]
    _book(session, world, patient)
    later = APPOINTMENT + days * DAY
    for actor in (world["ther"], world["sec"]):
        acc = access.patient_access(session, actor, patient, later)
        assert acc.identity is named, (actor.role, days)
        assert (patient.id in _visible(session, actor, later)) is named
    label = access.patient_label(session, world["ther"], patient, later)
    assert label == (patient.full_name if named else access.pseudonym_of(session, patient.id))
    assert access.patient_access(session, world["ther"], patient, later).clinical is named
    # the secretariat never sees clinical data, inside the window or out
    assert not access.patient_access(session, world["sec"], patient, later).clinical
    assert not access.can_view_clinical(session, world["sec"], patient, later)


def test_after_the_window_the_file_is_closed_to_the_practice(session, world):
    patient = world["patient"]
    _book(session, world, patient)
    file = workbench.load_patient_file(session, APPOINTMENT + 89 * DAY, world["ther"], patient.id)
    assert file is not None
    with pytest.raises(NotFound):
        workbench.load_patient_file(session, APPOINTMENT + 91 * DAY, world["ther"], patient.id)


def test_patients_on_the_practice_list_keep_their_names(session, world):
    own = world["own"]
    _book(session, world, own)
    years_later = APPOINTMENT + 800 * DAY
    assert access.patient_access(session, world["ther"], own, years_later).identity
    assert own.id in _visible(session, world["ther"], years_later)


def test_the_window_is_a_setting(session, world):
    patient = world["patient"]
    _book(session, world, patient)
    session.info["settings"] = dataclasses.replace(
        session.info["settings"], IDENTITY_ACCESS_DAYS=10
    )
    assert access.patient_access(session, world["ther"], patient, APPOINTMENT + 9 * DAY).identity
    assert not access.patient_access(
        session, world["ther"], patient, APPOINTMENT + 11 * DAY
    ).identity


def test_a_group_place_counts_from_the_last_session(session, world):
    world["therapist"].offers_group = True
    patient = world["patient"]
    group = make_group(session, world["therapist"], first_session_at=APPOINTMENT, session_count=10)
    session.add(
        GroupEnrollment(
            group_id=group.id,
            patient_id=patient.id,
            status=EnrollmentStatus.ENROLLED,
            created_at=NOW,
        )
    )
    session.flush()
    # ten weekly sessions: the last one nine weeks after the first (same Berlin wall time)
    last = APPOINTMENT + dt.timedelta(weeks=9)
    for days, named in ((89, True), (91, False)):
        at = last + days * DAY
        assert access.patient_access(session, world["ther"], patient, at).identity is named
        assert (patient.id in _visible(session, world["ther"], at)) is named


def test_the_slot_page_names_a_booked_patient_only_within_the_window(session, world):
    patient = world["patient"]
    slot = make_slot(session, world["therapist"], start_at=APPOINTMENT)
    offer = Offer(
        slot_id=slot.id,
        patient_id=patient.id,
        status=OfferStatus.ACCEPTED,
        wave=1,
        score=1,
        token_hash="x" * 64,
        sent_at=NOW,
        expires_at=NOW + DAY,
    )
    session.add(offer)
    session.flush()
    for days, named in ((89, True), (91, False)):
        at = APPOINTMENT + days * DAY
        [shown] = access.show_offers(session, world["ther"], at, slot, [offer])
        assert (shown.label == patient.full_name) is named, days
        assert access.patient_access(session, world["ther"], patient, at).identity is named
