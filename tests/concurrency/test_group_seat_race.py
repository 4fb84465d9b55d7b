"""The last seat of a group, accepted by many at once: exactly one gets it (real commits).

Threads start from a `threading.Barrier`; each ends its read transaction before waiting
(on SQLite every transaction is BEGIN IMMEDIATE). The same tests run on PostgreSQL when
PTMATCH_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import func, select

from ptmatch.domain import groups
from ptmatch.domain.errors import SlotTaken
from ptmatch.domain.tokens import new_token
from ptmatch.models import (
    EnrollmentStatus,
    GroupEnrollment,
    GroupProgram,
    Offer,
    OfferStatus,
    OutboxMessage,
    User,
)
from tests.factories import make_group, make_patient, make_practice, make_therapist

THREADS = 10


def _offer(s, group, patient, **overrides):
    fields = dict(
        group_id=group.id,
        patient_id=patient.id,
        wave=1,
        token_hash=new_token()[1],
        status=OfferStatus.PENDING,
        score=0,
        sent_at=group.created_at,
        expires_at=group.created_at + dt.timedelta(hours=24),
    )
    fields.update(overrides)
    offer = Offer(**fields)
    s.add(offer)
    s.flush()
    return offer


def _race(sessions, now, pairs):
    """Every (offer id, user id) accepts at once; returns the outcomes and any errors."""
    barrier = threading.Barrier(len(pairs))
    outcomes, errors = [], []

    def attempt(offer_id, user_id):
        try:
            with sessions() as s:
                offer, user = s.get(Offer, offer_id), s.get(User, user_id)
                s.commit()
                barrier.wait(timeout=30)
                try:
                    enrollment = groups.accept_group_offer(s, now, offer, user)
                    s.commit()
                    outcomes.append(enrollment.status)
                except SlotTaken:
                    s.rollback()
                    outcomes.append("taken")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes, errors


def test_last_seat_goes_to_exactly_one_of_ten(sessions, now):
    with sessions() as s:
        practice = make_practice(s)
        therapist = make_therapist(s, practice, offers_group=True)
        group = make_group(s, therapist, min_participants=2, max_participants=3, enrolled_count=2)
        pairs = []
        for _ in range(THREADS):
            patient = make_patient(s, lists=[practice])
            pairs.append((_offer(s, group, patient).id, patient.user_id))
        s.commit()
        group_id = group.id

    outcomes, errors = _race(sessions, now, pairs)

    assert errors == []
    assert sorted(outcomes) == sorted(
        [EnrollmentStatus.ENROLLED] + [EnrollmentStatus.WAITLISTED] * (THREADS - 1)
    )
    with sessions() as s:
        assert s.get(GroupProgram, group_id).enrolled_count == 3
        positions = s.scalars(
            select(GroupEnrollment.position).where(
                GroupEnrollment.group_id == group_id,
                GroupEnrollment.status == EnrollmentStatus.WAITLISTED,
            )
        ).all()
        assert sorted(positions) == list(range(1, THREADS))
        assert (
            s.scalar(
                select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "group_enrolled")
            )
            == 1
        )
        s.commit()


def test_freed_seat_goes_to_exactly_one_waitlisted(sessions, now):
    with sessions() as s:
        practice = make_practice(s)
        therapist = make_therapist(s, practice, offers_group=True)
        group = make_group(s, therapist, min_participants=2, max_participants=3, enrolled_count=2)
        pairs = []
        for position in range(1, THREADS + 1):
            patient = make_patient(s, lists=[practice])
            offer = _offer(
                s, group, patient
            )  # a seat offer: the waitlisted patient's own row, re-opened
            s.add(
                GroupEnrollment(
                    group_id=group.id,
                    patient_id=patient.id,
                    status=EnrollmentStatus.WAITLISTED,
                    position=position,
                    created_at=now,
                )
            )
            pairs.append((offer.id, patient.user_id))
        s.commit()
        group_id = group.id

    outcomes, errors = _race(sessions, now, pairs)

    assert errors == []
    assert sorted(outcomes, key=str) == sorted(
        [EnrollmentStatus.ENROLLED] + ["taken"] * (THREADS - 1), key=str
    )
    with sessions() as s:
        assert s.get(GroupProgram, group_id).enrolled_count == 3
        statuses = s.scalars(
            select(GroupEnrollment.status).where(GroupEnrollment.group_id == group_id)
        ).all()
        assert sorted(statuses) == sorted(
            [EnrollmentStatus.ENROLLED] + [EnrollmentStatus.WAITLISTED] * (THREADS - 1)
        )
        offer_statuses = s.scalars(select(Offer.status).where(Offer.group_id == group_id)).all()
        assert sorted(offer_statuses) == sorted(
            [OfferStatus.ACCEPTED] + [OfferStatus.TAKEN] * (THREADS - 1)
        )
        s.commit()
