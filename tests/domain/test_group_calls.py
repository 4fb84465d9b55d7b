"""Issue 13: a group seat offered to a phone-only caller opens a call task in the secretariat's
queue, exactly as a slot offer does: accepted (the seat, taken for the caller), declined, or
not reached (the seat goes to the next person at once)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select

from ptmatch.domain import groups, secretariat
from ptmatch.models import (
    CallKind,
    CallOutcome,
    CallStatus,
    CallTask,
    EnrollmentStatus,
    GroupEnrollment,
    Modality,
    Offer,
    OfferStatus,
    OutboxMessage,
    Preference,
    RegisteredVia,
)
from tests.conftest import NOW
from tests.factories import make_group, make_patient, make_practice, make_secretary, make_therapist

FIRST = dt.datetime(2026, 12, 10, 16, 0, tzinfo=dt.UTC)  # Thursday 17:00 Berlin, 16 days ahead


@pytest.fixture
def one_by_one(settings):
    """One offer per free seat (four hours to answer), so "the next person" is visible."""
    return dataclasses.replace(settings, WAVE_RULES=((None, 1, 240),))


@pytest.fixture
def world(session):
    practice = make_practice(session, name="Praxis am Markt")
    therapist = make_therapist(session, practice, offers_group=True)
    secretary = make_secretary(session, [practice])
    return practice, therapist, secretary


def _caller(session, practice, secretary, days: int, *, phone_only: bool = True):
    patient = make_patient(
        session,
        lists=[practice],
        group_pref=Preference.WANTED,
        registered_via=RegisteredVia.SECRETARIAT,
        consent_recorded_by_id=secretary.id,
        added_at=NOW - dt.timedelta(days=days),
    )
    if phone_only:
        patient.user_id = None
    session.flush()
    return patient


def _group(session, therapist, settings, seats: int = 1):
    """A group of `seats` (written directly: the form asks for two at least) and its first
    wave."""
    group = make_group(
        session,
        therapist,
        title="DBT-Skillsgruppe",
        first_session_at=FIRST,
        min_participants=1,
        max_participants=seats,
    )
    groups.send_group_wave(session, NOW, group, settings)
    return group


def _offers(session, group):
    return {
        o.patient_id: o for o in session.scalars(select(Offer).where(Offer.group_id == group.id))
    }


def test_a_seat_offered_to_a_phone_only_caller_is_a_call_in_the_queue(session, world, one_by_one):
    practice, therapist, secretary = world
    caller = _caller(session, practice, secretary, 300)
    group = _group(session, therapist, one_by_one)
    offer = _offers(session, group)[caller.id]
    [row] = secretariat.call_queue(session, NOW, secretary)
    assert row.kind == CallKind.OFFER
    assert (row.patient_id, row.name, row.phone) == (caller.id, caller.full_name, caller.phone)
    assert (row.practice, row.group) == ("Praxis am Markt", "DBT-Skillsgruppe")
    assert (row.start_at, row.minutes, row.modality) == (FIRST, 100, Modality.IN_PERSON)
    assert row.due_at == offer.expires_at
    assert row.outcomes == (CallOutcome.ACCEPTED, CallOutcome.DECLINED, CallOutcome.NOT_REACHED)
    # the longer window of phone-only callers, and no mail to nobody
    assert offer.expires_at == NOW + dt.timedelta(minutes=240 * one_by_one.PHONE_ANSWER_FACTOR)
    assert session.query(OutboxMessage).filter_by(kind="group_offer").count() == 0
    task = session.get(CallTask, row.task_id)
    assert (task.group_id, task.slot_id, task.offer_id) == (group.id, None, offer.id)
    # a secretariat of another practice does not see it
    assert (
        secretariat.call_queue(session, NOW, make_secretary(session, [make_practice(session)]))
        == []
    )


def test_a_seat_offered_by_mail_opens_no_call(session, world, one_by_one):
    practice, therapist, secretary = world
    _caller(session, practice, secretary, 300, phone_only=False)
    _group(session, therapist, one_by_one)
    assert secretariat.call_queue(session, NOW, secretary) == []
    assert session.query(OutboxMessage).filter_by(kind="group_offer").count() == 1


def test_not_reached_passes_the_seat_on_and_accepted_takes_it(session, world, one_by_one):
    """End to end: offer → call task → "not reached" → the next caller is offered at once (a
    new task) → "accepted" enrols them, exactly once."""
    practice, therapist, secretary = world
    first = _caller(session, practice, secretary, 300)
    second = _caller(session, practice, secretary, 200)
    group = _group(session, therapist, one_by_one)
    assert set(_offers(session, group)) == {first.id}
    [row] = secretariat.call_queue(session, NOW, secretary)
    assert row.patient_id == first.id
    secretariat.record_call_outcome(
        session, NOW, secretary, row.task_id, "not_reached", settings=one_by_one
    )
    by_patient = _offers(session, group)
    assert by_patient[first.id].status == OfferStatus.WITHDRAWN
    assert by_patient[second.id].status == OfferStatus.PENDING
    done = session.get(CallTask, row.task_id)
    assert (done.status, done.outcome, done.done_by_id) == (
        CallStatus.DONE,
        CallOutcome.NOT_REACHED,
        secretary.id,
    )
    [row] = secretariat.call_queue(session, NOW, secretary)
    assert row.patient_id == second.id
    enrollment = secretariat.record_call_outcome(
        session, NOW, secretary, row.task_id, "accepted", settings=one_by_one
    )
    assert isinstance(enrollment, GroupEnrollment)
    assert (enrollment.patient_id, enrollment.status) == (second.id, EnrollmentStatus.ENROLLED)
    session.refresh(group)
    assert group.enrolled_count == 1
    assert _offers(session, group)[second.id].responded_by_id == secretary.id
    assert secretariat.call_queue(session, NOW, secretary) == []
    # nobody was enrolled twice, and the first caller holds no seat
    enrolled = session.scalars(
        select(GroupEnrollment.patient_id).where(GroupEnrollment.group_id == group.id)
    ).all()
    assert enrolled == [second.id]


def test_declined_declines_and_the_seat_moves_on(session, world, one_by_one):
    practice, therapist, secretary = world
    first = _caller(session, practice, secretary, 300)
    second = _caller(session, practice, secretary, 200)
    group = _group(session, therapist, one_by_one)
    [row] = secretariat.call_queue(session, NOW, secretary)
    secretariat.record_call_outcome(
        session, NOW, secretary, row.task_id, "declined", settings=one_by_one
    )
    by_patient = _offers(session, group)
    assert by_patient[first.id].status == OfferStatus.DECLINED
    assert by_patient[second.id].status == OfferStatus.PENDING
    [row] = secretariat.call_queue(session, NOW, secretary)
    assert row.patient_id == second.id
