"""Issue 13: place and patient move on. A therapy place released as "no fit" is re-posted for
the same weekly time; a patient may reactivate themselves 7 days after an appointment the
practice never marked (not before); the no-show policy pauses, mails and audits; a second
open slot at an overlapping time is refused with the clash named."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ptmatch.domain import offers, patients
from ptmatch.domain.errors import Clash, NotAllowed
from ptmatch.models import (
    AuditEvent,
    Booking,
    BookingStatus,
    CareStage,
    Offer,
    OfferStatus,
    OutboxMessage,
    PatientStatus,
    Slot,
    SlotKind,
    SlotStatus,
)
from tests.conftest import NOW
from tests.factories import make_offer, make_patient, make_practice, make_slot, make_therapist

TUESDAY_10 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)  # Tuesday 10:00 Berlin


@pytest.fixture
def world(session):
    practice = make_practice(session)
    return practice, make_therapist(session, practice)


def _book(session, settings, slot, patient):
    return offers.accept_offer(
        session, NOW, make_offer(session, slot, patient), patient.user, settings
    )


def test_a_released_therapy_place_is_reposted_for_the_same_weekly_time(session, world, settings):
    practice, therapist = world
    first = make_patient(session, lists=[practice], care_stage=CareStage.THERAPY)
    first.ptv11_date = dt.date(2026, 11, 1)
    second = make_patient(
        session, lists=[practice], care_stage=CareStage.THERAPY, ptv11_date=dt.date(2026, 11, 2)
    )
    place = make_slot(session, therapist, start_at=TUESDAY_10, kind=SlotKind.THERAPY_PLACE)
    booking = _book(session, settings, place, first)
    session.flush()
    later = dt.datetime(2026, 12, 9, 12, 0, tzinfo=dt.UTC)  # after the 2nd session (8 Dec)
    offers.mark_booking(session, later, therapist.user, booking, BookingStatus.ATTENDED)
    offers.release_booking(session, later, therapist.user, booking)
    new = session.query(Slot).filter(Slot.reposted_from_id == place.id).one()
    assert new.kind == SlotKind.THERAPY_PLACE and new.status == SlotStatus.OFFERING
    assert new.start_at == dt.datetime(2026, 12, 15, 9, 0, tzinfo=dt.UTC)  # Tuesday 10:00
    assert new.offer_deadline_at < new.start_at
    offered = {o.patient_id for o in session.query(Offer).filter_by(slot_id=new.id)}
    assert offered == {second.id}  # who had the place is not offered it again


def test_the_weekly_repost_keeps_the_local_time_across_dst(world, session):
    practice, therapist = world
    summer = dt.datetime(2026, 10, 20, 8, 0, tzinfo=dt.UTC)  # Tuesday 10:00 CEST
    slot = make_slot(session, therapist, start_at=summer, kind=SlotKind.THERAPY_PLACE)
    assert offers.next_weekly_start(slot, NOW) == dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def test_a_released_one_off_slot_is_not_reposted(session, world, settings):
    practice, therapist = world
    patient = make_patient(session, lists=[practice])
    slot = make_slot(session, therapist, start_at=TUESDAY_10)
    booking = _book(session, settings, slot, patient)
    offers.release_booking(session, NOW, therapist.user, booking)
    assert session.query(Slot).filter(Slot.reposted_from_id == slot.id).count() == 0


def test_self_reactivation_seven_days_after_an_unmarked_appointment_and_not_before(
    session, world, settings
):
    practice, therapist = world
    patient = make_patient(session, lists=[practice])
    slot = make_slot(session, therapist, start_at=TUESDAY_10)
    _book(session, settings, slot, patient)
    assert patient.status == PatientStatus.BOOKED
    almost = TUESDAY_10 + dt.timedelta(days=7) - dt.timedelta(minutes=1)
    assert not patients.can_reactivate(session, almost, patient)
    with pytest.raises(NotAllowed):
        patients.reactivate(session, almost, patient, patient.user)
    week = TUESDAY_10 + dt.timedelta(days=7)
    assert patients.can_reactivate(session, week, patient)
    assert patients.reactivate(session, week, patient, patient.user) == 1
    assert patient.status == PatientStatus.ACTIVE


def test_a_marked_appointment_is_not_a_reason_to_reactivate(session, world, settings):
    practice, therapist = world
    patient = make_patient(session, lists=[practice])
    slot = make_slot(session, therapist, start_at=TUESDAY_10, kind=SlotKind.THERAPY_PLACE)
    patient.care_stage = CareStage.ANY
    patient.ptv11_date = dt.date(2026, 11, 1)
    booking = _book(session, settings, slot, patient)
    week = TUESDAY_10 + dt.timedelta(days=7)
    offers.mark_booking(session, week, therapist.user, booking, BookingStatus.ATTENDED)
    # Attended: the booking is no longer "confirmed"; the stage does not move for a place.
    assert patient.care_stage == CareStage.ANY


def test_the_no_show_policy_pauses_mails_and_audits(session, world, settings, sessions):
    practice, therapist = world
    patient = make_patient(session, lists=[practice])
    other_slot = make_slot(session, therapist, start_at=NOW + dt.timedelta(days=5))
    pending = make_offer(session, other_slot, patient)
    for day in (1, 2):
        slot = make_slot(
            session, therapist, start_at=TUESDAY_10 + dt.timedelta(days=day), minutes=50
        )
        booking = Booking(
            slot_id=slot.id,
            patient_id=patient.id,
            status=BookingStatus.CONFIRMED,
            created_at=NOW,
            cancelled_by="",
        )
        session.add(booking)
        slot.status = SlotStatus.BOOKED
        session.flush()
        after = slot.start_at + dt.timedelta(hours=1)
        offers.mark_booking(session, after, therapist.user, booking, BookingStatus.NO_SHOW)
        if day == 1:
            assert patient.status == PatientStatus.ACTIVE  # one is not enough
    assert patient.status == PatientStatus.PAUSED
    assert session.get(Offer, pending.id).status == OfferStatus.WITHDRAWN
    mails = session.query(OutboxMessage).filter_by(kind="paused_no_show").all()
    assert [m.user_id for m in mails] == [patient.user_id]
    event = session.query(AuditEvent).filter_by(action="patient.paused_no_show").one()
    assert event.patient_id == patient.id


def test_the_no_show_policy_can_be_switched_off(session, world, settings):
    practice, therapist = world
    session.info["settings"] = dataclasses.replace(settings, NO_SHOW_PAUSE_AFTER=0)
    try:
        patient = make_patient(session, lists=[practice])
        for day in (1, 2, 3):
            slot = make_slot(session, therapist, start_at=TUESDAY_10 + dt.timedelta(days=day))
            booking = Booking(
                slot_id=slot.id,
                patient_id=patient.id,
                status=BookingStatus.CONFIRMED,
                created_at=NOW,
                cancelled_by="",
            )
            session.add(booking)
            session.flush()
            offers.mark_booking(
                session, slot.start_at + dt.timedelta(hours=1), therapist.user, booking, "no_show"
            )
        assert patient.status == PatientStatus.ACTIVE
        assert offers.no_show_count(session, patient) == 3
    finally:
        session.info["settings"] = settings


def test_a_second_open_slot_at_an_overlapping_time_is_refused_with_the_clash_named(
    session, world, settings
):
    _, therapist = world
    start = NOW + dt.timedelta(days=2)
    offers.post_slot(
        session,
        NOW,
        therapist.user,
        therapist,
        start_at=start,
        minutes=50,
        mode="manual",
        settings=settings,
    )
    with pytest.raises(Clash) as err:
        offers.post_slot(
            session,
            NOW,
            therapist.user,
            therapist,
            start_at=start + dt.timedelta(minutes=30),
            minutes=50,
            mode="manual",
            settings=settings,
        )
    assert err.value.field == "start_time"
    assert "Sprechstunde" in err.value.message
