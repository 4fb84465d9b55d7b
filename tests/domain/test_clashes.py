"""Clashes with the therapist's calendar: overlap, buffer, modality-switch buffer, weekly places."""

from __future__ import annotations

import datetime as dt

import pytest

from ptmatch.domain.clashes import find_clash
from ptmatch.models import BookingStatus, Modality, SlotKind, SlotStatus
from tests.factories import empty_tables_quickly, make_patient, make_slot, make_therapist

START = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)  # Wednesday 14:00 Berlin, 50 minutes
MIN = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _clean_database(engine):
    """The quick cleanup (tests.factories.empty_tables_quickly) instead of TRUNCATE."""
    yield
    empty_tables_quickly(engine)


def _clash(session, therapist, start, modality=Modality.IN_PERSON, **kwargs):
    return find_clash(session, therapist, start, 50, modality, **kwargs)


def test_overlap_names_the_appointment(session):
    therapist = make_therapist(session)
    make_slot(session, therapist, start_at=START)
    what = _clash(session, therapist, START + 20 * MIN)
    assert what == "Sprechstunde in Präsenz (angeboten) am 25.11.2026 von 14:00 bis 14:50 Uhr"


def test_booked_appointment_is_named_as_booked(session):
    therapist = make_therapist(session)
    make_slot(session, therapist, start_at=START, status=SlotStatus.BOOKED)
    assert "(gebucht)" in _clash(session, therapist, START)


def test_buffer_counts(session):
    therapist = make_therapist(session, buffer_minutes=10, switch_buffer_minutes=0)
    make_slot(session, therapist, start_at=START)
    assert _clash(session, therapist, START + 59 * MIN) is not None  # 9 minutes after the end
    assert _clash(session, therapist, START + 60 * MIN) is None  # exactly the buffer
    assert _clash(session, therapist, START - 60 * MIN) is None  # ends 10 minutes before
    assert _clash(session, therapist, START - 59 * MIN) is not None


def test_modality_switch_needs_the_longer_buffer(session):
    therapist = make_therapist(session, buffer_minutes=10, switch_buffer_minutes=30)
    make_slot(session, therapist, start_at=START, modality=Modality.IN_PERSON)
    after_15 = START + 65 * MIN
    assert _clash(session, therapist, after_15, Modality.IN_PERSON) is None
    assert _clash(session, therapist, after_15, Modality.VIDEO) is not None
    assert _clash(session, therapist, START + 80 * MIN, Modality.VIDEO) is None


def test_cancelled_and_unfilled_slots_and_other_therapists_do_not_clash(session):
    therapist = make_therapist(session)
    make_slot(session, therapist, start_at=START, status=SlotStatus.CANCELLED)
    make_slot(session, therapist, start_at=START + 5 * MIN, status=SlotStatus.UNFILLED)
    make_slot(session, make_therapist(session), start_at=START)
    assert _clash(session, therapist, START) is None


def test_ignore_slot_id(session):
    therapist = make_therapist(session)
    slot = make_slot(session, therapist, start_at=START)
    assert _clash(session, therapist, START, ignore_slot_id=slot.id) is None


def test_weekly_therapy_place_blocks_the_same_time_in_later_weeks(session):
    therapist = make_therapist(session)
    make_slot(
        session, therapist, start_at=START, kind=SlotKind.THERAPY_PLACE, status=SlotStatus.BOOKED
    )
    three_weeks = START + dt.timedelta(weeks=3)
    assert _clash(session, therapist, three_weeks) is not None
    assert _clash(session, therapist, three_weeks + dt.timedelta(days=1)) is None
    assert _clash(session, therapist, START - dt.timedelta(weeks=1)) is None  # before it begins


def test_weekly_place_keeps_local_time_across_dst(session):
    therapist = make_therapist(session)
    march = dt.datetime(2027, 3, 17, 13, 0, tzinfo=dt.UTC)  # Wed 14:00 CET
    make_slot(
        session, therapist, start_at=march, kind=SlotKind.THERAPY_PLACE, offer_deadline_at=march
    )
    april_same_local = dt.datetime(2027, 4, 7, 12, 0, tzinfo=dt.UTC)  # Wed 14:00 CEST
    assert _clash(session, therapist, april_same_local) is not None
    assert _clash(session, therapist, april_same_local + 60 * MIN) is None


def test_new_weekly_place_clashes_with_a_later_one_off_slot(session):
    therapist = make_therapist(session)
    make_slot(session, therapist, start_at=START + dt.timedelta(weeks=5))
    assert _clash(session, therapist, START, weekly=True) is not None
    assert _clash(session, therapist, START) is None


def test_released_therapy_place_no_longer_recurs(session):
    from ptmatch.models import Booking

    therapist = make_therapist(session)
    slot = make_slot(
        session, therapist, start_at=START, kind=SlotKind.THERAPY_PLACE, status=SlotStatus.BOOKED
    )
    patient = make_patient(session)
    session.add(
        Booking(
            slot_id=slot.id, patient_id=patient.id, status=BookingStatus.RELEASED, created_at=START
        )
    )
    session.flush()
    assert _clash(session, therapist, START + dt.timedelta(weeks=2)) is None
