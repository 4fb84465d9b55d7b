"""The group sweep: decision at first session minus GROUP_DECISION_HOURS (fixed clock), run
twice with the same result and no duplicate mails; expiry; next waves; freed seats."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from ptmatch.domain import groups
from ptmatch.models import (
    EnrollmentStatus,
    EntryStatus,
    GroupEnrollment,
    GroupStatus,
    Modality,
    Offer,
    OfferStatus,
    OutboxMessage,
    PatientStatus,
    Preference,
    WaitlistEntry,
)
from ptmatch.scheduler.jobs import all_jobs
from ptmatch.scheduler.tasks.groups import sweep_groups
from tests.factories import make_patient, make_practice, make_therapist

FIRST = dt.datetime(2026, 12, 10, 16, 0, tzinfo=dt.UTC)
DECISION = FIRST - dt.timedelta(hours=48)


@pytest.fixture
def practice(session):
    return make_practice(session)


@pytest.fixture
def therapist(session, practice):
    return make_therapist(session, practice, offers_group=True)


def _group_with(
    session,
    now,
    practice,
    therapist,
    settings,
    *,
    enrolled: int,
    waitlisted: int = 0,
    pending: int = 0,
    minimum: int = 3,
    maximum: int = 4,
):
    patients = [
        make_patient(session, lists=[practice], group_pref=Preference.WANTED)
        for _ in range(enrolled + waitlisted + pending)
    ]
    group = groups.create_group(
        session,
        now,
        therapist.user,
        therapist,
        title="Gruppe",
        first_session_at=FIRST,
        session_count=8,
        minutes=90,
        min_participants=minimum,
        max_participants=maximum,
        modality=Modality.IN_PERSON,
        settings=settings,
    )
    for p in patients[: enrolled + waitlisted]:
        offer = session.scalar(
            select(Offer).where(Offer.group_id == group.id, Offer.patient_id == p.id)
        )
        groups.accept_group_offer(session, now, offer, p.user)
    return group, patients


def _mails(session, kind=None):
    query = select(func.count(OutboxMessage.id))
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return session.scalar(query)


def test_job_is_registered():
    assert "group_sweep" in {job.name for job in all_jobs()}


def test_nothing_is_decided_before_the_decision_time(session, now, practice, therapist, settings):
    group, _ = _group_with(session, now, practice, therapist, settings, enrolled=1)
    sweep_groups(session, DECISION - dt.timedelta(minutes=1), settings)
    assert group.status == GroupStatus.OPEN


def test_below_minimum_is_cancelled_once_everyone_told(session, now, practice, therapist, settings):
    group, patients = _group_with(
        session,
        now,
        practice,
        therapist,
        settings,
        enrolled=3,
        waitlisted=1,
        pending=1,
        minimum=3,
        maximum=3,
    )
    groups.withdraw(
        session,
        now,
        patients[0].user,
        groups.get_enrollment(session, group.id, patients[0].id),
        settings=settings,
    )
    seat_offer, fresh_offer = (
        session.scalar(select(Offer).where(Offer.patient_id == p.id)) for p in patients[3:]
    )
    assert seat_offer.status == fresh_offer.status == OfferStatus.PENDING
    seat_offer.expires_at = fresh_offer.expires_at = FIRST - dt.timedelta(
        hours=3
    )  # still open at the decision
    session.flush()
    sweep_groups(session, DECISION, settings)
    assert group.status == GroupStatus.CANCELLED and group.decided_at == DECISION
    statuses = session.scalars(
        select(GroupEnrollment.status).where(GroupEnrollment.group_id == group.id)
    ).all()
    assert sorted(statuses) == sorted(
        [EnrollmentStatus.CANCELLED] * 3 + [EnrollmentStatus.WITHDRAWN]
    )
    assert _mails(session, "group_cancelled") == 3  # two participants and the waitlisted patient
    assert seat_offer.status == fresh_offer.status == OfferStatus.WITHDRAWN
    assert _mails(session, "offer_withdrawn") == 1  # the pending first-time offer
    total = _mails(session)

    sweep_groups(session, DECISION + dt.timedelta(minutes=1), settings)  # run twice
    assert group.status == GroupStatus.CANCELLED and group.decided_at == DECISION
    assert _mails(session) == total


def test_cancellation_keeps_other_lists_and_status(session, now, practice, therapist, settings):
    group, patients = _group_with(session, now, practice, therapist, settings, enrolled=1)
    sweep_groups(session, DECISION, settings)
    assert group.status == GroupStatus.CANCELLED
    entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.patient_id == patients[0].id))
    assert entry.status == EntryStatus.ACTIVE and patients[0].status == PatientStatus.ACTIVE


def test_at_minimum_is_confirmed_once(session, now, practice, therapist, settings):
    group, _ = _group_with(session, now, practice, therapist, settings, enrolled=3, minimum=3)
    sweep_groups(session, DECISION + dt.timedelta(seconds=30), settings)
    assert group.status == GroupStatus.CONFIRMED
    assert _mails(session, "group_confirmed") == 3
    total = _mails(session)
    sweep_groups(session, DECISION + dt.timedelta(minutes=1), settings)
    assert group.status == GroupStatus.CONFIRMED and _mails(session) == total


def test_decision_hours_come_from_settings(session, now, practice, therapist, settings):
    group, _ = _group_with(session, now, practice, therapist, settings, enrolled=3, minimum=3)
    sweep_groups(
        session, FIRST - dt.timedelta(hours=30), replace(settings, GROUP_DECISION_HOURS=24)
    )
    assert group.status == GroupStatus.OPEN
    sweep_groups(
        session, FIRST - dt.timedelta(hours=24), replace(settings, GROUP_DECISION_HOURS=24)
    )
    assert group.status == GroupStatus.CONFIRMED


def test_decide_runs_twice_directly_without_change(session, now, practice, therapist, settings):
    group, _ = _group_with(session, now, practice, therapist, settings, enrolled=1)
    assert groups.decide_group(session, DECISION, group, settings) == GroupStatus.CANCELLED
    assert groups.decide_group(session, DECISION, group, settings) is None


def test_expired_offers_are_replaced_by_the_next_wave(session, now, practice, therapist, settings):
    first = [
        make_patient(session, lists=[practice], group_pref=Preference.WANTED) for _ in range(2)
    ]
    group = groups.create_group(
        session,
        now,
        therapist.user,
        therapist,
        title="Gruppe",
        first_session_at=FIRST,
        session_count=8,
        minutes=90,
        min_participants=2,
        max_participants=2,
        modality=Modality.IN_PERSON,
        settings=settings,
    )
    late = make_patient(session, lists=[practice], group_pref=Preference.WANTED)
    later = now + dt.timedelta(days=1, minutes=1)  # the first wave's 24 hours are over
    sweep_groups(session, later, settings)
    statuses = dict(
        session.execute(
            select(Offer.patient_id, Offer.status).where(Offer.group_id == group.id)
        ).all()
    )
    assert statuses == {
        first[0].id: OfferStatus.EXPIRED,
        first[1].id: OfferStatus.EXPIRED,
        late.id: OfferStatus.PENDING,
    }
    assert group.current_wave == 2


def test_sweep_offers_a_freed_seat_to_the_waitlist(session, now, practice, therapist, settings):
    group, patients = _group_with(
        session, now, practice, therapist, settings, enrolled=2, waitlisted=1, minimum=2, maximum=2
    )
    enrollment = groups.get_enrollment(session, group.id, patients[0].id)
    # A withdrawal whose own wave was skipped (another transaction held the group): the sweep
    # catches up.
    session.execute(
        GroupEnrollment.__table__.update()
        .where(GroupEnrollment.id == enrollment.id)
        .values(status=EnrollmentStatus.WITHDRAWN)
    )
    group.enrolled_count = 1
    session.flush()
    sweep_groups(session, now + dt.timedelta(minutes=1), settings)
    seat_offer = session.scalar(
        select(Offer).where(Offer.group_id == group.id, Offer.patient_id == patients[2].id)
    )
    assert seat_offer.status == OfferStatus.PENDING and seat_offer.wave == group.current_wave
    mail = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.dedupe_key == f"group_offer:{seat_offer.id}:{seat_offer.wave}"
        )
    )
    assert mail is not None and mail.user_id == patients[2].user_id
    sweep_groups(session, now + dt.timedelta(minutes=2), settings)
    assert group.current_wave == seat_offer.wave  # nothing new: the seat offer is open


def test_no_waves_after_cancellation(session, now, practice, therapist, settings):
    group, _ = _group_with(session, now, practice, therapist, settings, enrolled=1)
    sweep_groups(session, DECISION, settings)
    make_patient(session, lists=[practice], group_pref=Preference.WANTED)
    wave = group.current_wave
    sweep_groups(session, DECISION + dt.timedelta(hours=1), settings)
    assert group.current_wave == wave
