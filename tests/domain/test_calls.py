"""Issue 13: phone-only callers are reached. An offer to a patient without email opens a call
task; the secretariat records the outcome; "not reached" passes the place on at once;
"accepted" books. Longer answer windows for phone-only patients; reminders and check-ins
become call tasks. No answer deadline in the night (across a DST change)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ptmatch.domain import calls, checkins, offer_machine, offers, secretariat
from ptmatch.domain.errors import InvalidInput, NotFound, SlotTaken
from ptmatch.models import (
    Booking,
    BookingStatus,
    CallKind,
    CallOutcome,
    CallStatus,
    CallTask,
    Offer,
    OfferMode,
    OfferStatus,
    OutboxMessage,
    PatientStatus,
    RegisteredVia,
    Role,
)
from ptmatch.scheduler.tasks.reminders import send_reminders
from tests.conftest import NOW
from tests.factories import (
    make_patient,
    make_practice,
    make_secretary,
    make_slot,
    make_therapist,
    make_user,
)

UTC = dt.UTC


@pytest.fixture
def one_by_one(settings):
    """Waves of one offer (four hours to answer), so "the next candidate" is visible."""
    return dataclasses.replace(settings, WAVE_RULES=((None, 1, 240),))


@pytest.fixture
def world(session):
    practice = make_practice(session, name="Praxis am Markt")
    therapist = make_therapist(session, practice)
    secretary = make_secretary(session, [practice])
    return practice, therapist, secretary


def _phone_only(session, practice, secretary, **overrides):
    """A caller the secretariat registered: no account, verbal consent recorded."""
    patient = make_patient(
        session,
        lists=[practice],
        registered_via=RegisteredVia.SECRETARIAT,
        consent_recorded_by_id=secretary.id,
        **overrides,
    )
    patient.user_id = None
    session.flush()
    return patient


def _auto_slot(session, therapist, settings):
    slot = make_slot(session, therapist, offer_mode=OfferMode.AUTO)
    offers.send_next_wave(session, NOW, slot, settings)
    return slot


def _offers(session, slot):
    return {o.patient_id: o for o in session.query(Offer).filter_by(slot_id=slot.id)}


def test_an_offer_to_a_phone_only_patient_opens_a_call_task(session, world, one_by_one):
    practice, therapist, secretary = world
    caller = _phone_only(session, practice, secretary, added_at=NOW - dt.timedelta(days=300))
    slot = _auto_slot(session, therapist, one_by_one)
    offer = _offers(session, slot)[caller.id]
    [row] = secretariat.call_queue(session, NOW, secretary)
    assert row.kind == CallKind.OFFER
    assert (row.patient_id, row.name, row.phone) == (caller.id, caller.full_name, caller.phone)
    assert row.practice == "Praxis am Markt"
    assert (row.start_at, row.minutes) == (slot.start_at, slot.minutes)
    assert row.due_at == offer.expires_at
    assert session.query(OutboxMessage).filter_by(kind="offer").count() == 0
    # A secretary of another practice does not see the task.
    other = make_secretary(session, [make_practice(session)])
    assert secretariat.call_queue(session, NOW, other) == []


def test_phone_only_patients_get_a_longer_answer_window(session, world, one_by_one):
    practice, therapist, secretary = world
    caller = _phone_only(session, practice, secretary, added_at=NOW - dt.timedelta(days=300))
    mailed = make_patient(session, lists=[practice], added_at=NOW - dt.timedelta(days=200))
    wide = dataclasses.replace(one_by_one, WAVE_RULES=((None, 2, 120),))
    slot = _auto_slot(session, therapist, wide)
    by_patient = _offers(session, slot)
    assert by_patient[mailed.id].expires_at == NOW + dt.timedelta(minutes=120)
    assert by_patient[caller.id].expires_at == NOW + dt.timedelta(
        minutes=120 * wide.PHONE_ANSWER_FACTOR
    )


def test_not_reached_passes_the_place_on_at_once(session, world, one_by_one):
    practice, therapist, secretary = world
    caller = _phone_only(session, practice, secretary, added_at=NOW - dt.timedelta(days=300))
    nxt = make_patient(session, lists=[practice], added_at=NOW - dt.timedelta(days=200))
    slot = _auto_slot(session, therapist, one_by_one)
    assert set(_offers(session, slot)) == {caller.id}
    [row] = secretariat.call_queue(session, NOW, secretary)
    secretariat.record_call_outcome(
        session, NOW, secretary, row.task_id, "not_reached", settings=one_by_one
    )
    by_patient = _offers(session, slot)
    assert by_patient[caller.id].status == OfferStatus.WITHDRAWN
    assert by_patient[nxt.id].status == OfferStatus.PENDING
    task = session.get(CallTask, row.task_id)
    assert (task.status, task.outcome, task.done_by_id) == (
        CallStatus.DONE,
        CallOutcome.NOT_REACHED,
        secretary.id,
    )
    assert secretariat.call_queue(session, NOW, secretary) == []
    assert session.get(type(caller), caller.id).status == PatientStatus.ACTIVE  # keeps place
    with pytest.raises(NotFound):  # done is done
        secretariat.record_call_outcome(
            session, NOW, secretary, row.task_id, "accepted", settings=one_by_one
        )


def test_accepted_books_the_slot_for_the_caller(session, world, one_by_one):
    practice, therapist, secretary = world
    caller = _phone_only(session, practice, secretary)
    slot = _auto_slot(session, therapist, one_by_one)
    [row] = secretariat.call_queue(session, NOW, secretary)
    booking = secretariat.record_call_outcome(
        session, NOW, secretary, row.task_id, CallOutcome.ACCEPTED, settings=one_by_one
    )
    assert (booking.patient_id, booking.slot_id, booking.booked_by_id) == (
        caller.id,
        slot.id,
        secretary.id,
    )
    assert session.get(CallTask, row.task_id).outcome == CallOutcome.ACCEPTED


def test_declined_declines_and_the_next_one_is_offered(session, world, one_by_one):
    practice, therapist, secretary = world
    caller = _phone_only(session, practice, secretary, added_at=NOW - dt.timedelta(days=300))
    nxt = make_patient(session, lists=[practice])
    slot = _auto_slot(session, therapist, one_by_one)
    [row] = secretariat.call_queue(session, NOW, secretary)
    secretariat.record_call_outcome(
        session, NOW, secretary, row.task_id, "declined", settings=one_by_one
    )
    by_patient = _offers(session, slot)
    assert by_patient[caller.id].status == OfferStatus.DECLINED
    assert by_patient[nxt.id].status == OfferStatus.PENDING


def test_a_mail_patient_who_accepts_first_wins_and_the_task_drops_out(session, world, one_by_one):
    practice, therapist, secretary = world
    caller = _phone_only(session, practice, secretary, added_at=NOW - dt.timedelta(days=300))
    mailed = make_patient(session, lists=[practice])
    two = dataclasses.replace(one_by_one, WAVE_RULES=((None, 2, 240),))
    slot = _auto_slot(session, therapist, two)
    by_patient = _offers(session, slot)
    assert set(by_patient) == {caller.id, mailed.id}
    [row] = secretariat.call_queue(session, NOW, secretary)
    offers.accept_offer(session, NOW, by_patient[mailed.id], mailed.user, two)
    with pytest.raises(SlotTaken):
        secretariat.record_call_outcome(
            session, NOW, secretary, row.task_id, "accepted", settings=two
        )
    assert session.query(Booking).filter_by(slot_id=slot.id).count() == 1
    assert secretariat.call_queue(session, NOW, secretary) == []


def test_an_outcome_that_does_not_fit_the_call_is_refused(session, world, one_by_one):
    practice, therapist, secretary = world
    _phone_only(session, practice, secretary)
    _auto_slot(session, therapist, one_by_one)
    [row] = secretariat.call_queue(session, NOW, secretary)
    for bad in ("still_looking", "maybe"):
        with pytest.raises(InvalidInput):
            secretariat.record_call_outcome(
                session, NOW, secretary, row.task_id, bad, settings=one_by_one
            )


def test_an_expired_offer_drops_out_of_the_queue(session, world, one_by_one):
    practice, therapist, secretary = world
    _phone_only(session, practice, secretary)
    _auto_slot(session, therapist, one_by_one)
    [row] = secretariat.call_queue(session, NOW, secretary)
    assert secretariat.call_queue(session, row.due_at, secretary) == []
    assert secretariat.call_queue(session, row.due_at - dt.timedelta(minutes=1), secretary)


def test_others_cannot_work_the_queue(session, world, one_by_one):
    practice, therapist, secretary = world
    _phone_only(session, practice, secretary)
    _auto_slot(session, therapist, one_by_one)
    [row] = secretariat.call_queue(session, NOW, secretary)
    other = make_secretary(session, [make_practice(session)])
    with pytest.raises(NotFound):
        secretariat.record_call_outcome(
            session, NOW, other, row.task_id, "accepted", settings=one_by_one
        )
    assert calls.queue(session, NOW, therapist.user) == []
    assert calls.queue(session, NOW, make_user(session, Role.ADMIN)) == []


def test_a_phone_only_reminder_is_a_call_task_once(session, world, settings):
    practice, therapist, secretary = world
    caller = _phone_only(session, practice, secretary)
    slot = make_slot(session, therapist, start_at=NOW + dt.timedelta(hours=20))
    session.add(
        Booking(
            slot_id=slot.id,
            patient_id=caller.id,
            status=BookingStatus.CONFIRMED,
            created_at=NOW - dt.timedelta(days=3),
            cancelled_by="",
        )
    )
    session.flush()
    assert send_reminders(session, NOW, settings) == 1
    assert send_reminders(session, NOW, settings) == 0
    [row] = secretariat.call_queue(session, NOW, secretary)
    assert row.kind == CallKind.REMINDER
    assert row.due_at == slot.start_at - dt.timedelta(hours=settings.REMINDER_CALL_HOURS)
    assert row.outcomes == (CallOutcome.REACHED, CallOutcome.NOT_REACHED)
    secretariat.record_call_outcome(
        session, NOW, secretary, row.task_id, "reached", settings=settings
    )
    assert secretariat.call_queue(session, NOW, secretary) == []


def test_a_phone_only_checkin_is_a_call_task_and_still_looking_confirms(session, world, settings):
    practice, therapist, secretary = world
    caller = _phone_only(session, practice, secretary)
    caller.last_confirmed_at = NOW - dt.timedelta(days=settings.CHECKIN_DAYS + 1)
    session.flush()
    checkins.run_checkins(session, NOW, settings)
    checkins.run_checkins(session, NOW, settings)
    [row] = secretariat.call_queue(session, NOW, secretary)
    assert row.kind == CallKind.CHECKIN
    later = NOW + dt.timedelta(days=2)
    secretariat.record_call_outcome(
        session, later, secretary, row.task_id, "still_looking", settings=settings
    )
    assert caller.last_confirmed_at == later
    assert secretariat.call_queue(session, later, secretary) == []


# --- the night rule -------------------------------------------------------------------------------

BERLIN_DST_END = dt.date(2026, 10, 25)  # clocks go back 03:00 -> 02:00


@pytest.mark.parametrize(
    "sent,ttl,expected",
    [
        # 22:30 CEST on the eve of the DST change + 1 h -> 08:00 CET next morning (07:00 UTC)
        (
            dt.datetime(2026, 10, 24, 19, 30, tzinfo=UTC),
            60,
            dt.datetime(2026, 10, 25, 7, 0, tzinfo=UTC),
        ),  # noqa: E501
        # 01:30 CET after the change -> 08:00 CET the same morning
        (
            dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
            30,
            dt.datetime(2026, 10, 25, 7, 0, tzinfo=UTC),
        ),  # noqa: E501
        # spring: 23:00 CET on 27 March + 2 h = 02:00 -> 08:00 CEST (06:00 UTC)
        (
            dt.datetime(2027, 3, 27, 21, 0, tzinfo=UTC),
            120,
            dt.datetime(2027, 3, 28, 6, 0, tzinfo=UTC),
        ),  # noqa: E501
        # exactly 22:00 and exactly 07:00 are daytime
        (
            dt.datetime(2026, 11, 24, 20, 0, tzinfo=UTC),
            60,
            dt.datetime(2026, 11, 24, 21, 0, tzinfo=UTC),
        ),  # noqa: E501
        (
            dt.datetime(2026, 11, 25, 5, 0, tzinfo=UTC),
            60,
            dt.datetime(2026, 11, 25, 6, 0, tzinfo=UTC),
        ),  # noqa: E501
        # 06:59 is still night
        (
            dt.datetime(2026, 11, 25, 5, 0, tzinfo=UTC),
            59,
            dt.datetime(2026, 11, 25, 7, 0, tzinfo=UTC),
        ),  # noqa: E501
    ],
)
def test_no_deadline_falls_in_the_night(sent, ttl, expected):
    far = sent + dt.timedelta(days=3)
    assert offer_machine.offer_expiry(sent, ttl, far) == expected


def test_the_night_rule_yields_when_the_slot_comes_first():
    sent = dt.datetime(2026, 11, 24, 21, 0, tzinfo=UTC)  # 22:00 Berlin
    deadline = dt.datetime(2026, 11, 25, 6, 30, tzinfo=UTC)  # 07:30 Berlin: before 08:00
    assert offer_machine.offer_expiry(sent, 60, deadline) == sent + dt.timedelta(minutes=60)
    assert offer_machine.offer_expiry(sent, 600, deadline) == deadline


def test_a_posted_slot_offer_never_expires_at_night(session, settings, world):
    practice, therapist, _ = world
    patient = make_patient(session, lists=[practice])
    evening = dt.datetime(2026, 11, 24, 20, 30, tzinfo=UTC)  # 21:30 Berlin
    slot = make_slot(session, therapist, start_at=NOW + dt.timedelta(days=3), offer_mode="auto")
    offers.send_next_wave(session, evening, slot, settings)
    offer = _offers(session, slot)[patient.id]
    assert offer.expires_at == dt.datetime(2026, 11, 25, 7, 0, tzinfo=UTC)  # 08:00 Berlin
    assert BERLIN_DST_END  # the DST cases above
