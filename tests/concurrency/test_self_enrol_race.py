"""Issue 19: 20 patients enrol themselves into a group with 3 seats left, all at once (real
commits, a `threading.Barrier` start gate). Exactly 3 get a seat, the other 17 join the
waitlist at positions 1-17 in the order they got through, and the group never goes above its
maximum. Runs on PostgreSQL too when PTMATCH_TEST_DATABASE_URL is set."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from ptmatch.db import settings_of
from ptmatch.domain import groups
from ptmatch.models import (
    EnrollmentStatus,
    GroupEnrollment,
    GroupProgram,
    OutboxMessage,
    Patient,
    Preference,
    User,
)
from tests.factories import make_group, make_patient, make_practice, make_therapist

THREADS = 20


def test_twenty_self_enrol_for_three_seats(sessions, now):
    with sessions() as s:
        practice = make_practice(s)
        therapist = make_therapist(s, practice, offers_group=True)
        group = make_group(s, therapist, min_participants=2, max_participants=8, enrolled_count=5)
        pairs = []
        for _ in range(THREADS):
            patient = make_patient(s, group_pref=Preference.WANTED)
            pairs.append((patient.id, patient.user_id))
        s.commit()
        group_id = group.id

    barrier = threading.Barrier(THREADS)
    outcomes, errors = [], []
    lock = threading.Lock()

    def attempt(patient_id, user_id):
        try:
            with sessions() as s:
                patient, user = s.get(Patient, patient_id), s.get(User, user_id)
                grp = s.get(GroupProgram, group_id)
                s.commit()
                barrier.wait(timeout=30)
                enrollment = groups.self_enrol(s, now, user, grp, patient, settings_of(s))
                s.commit()
                with lock:
                    outcomes.append((enrollment.status, enrollment.position))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    enrolled = [o for o in outcomes if o[0] == EnrollmentStatus.ENROLLED]
    waiting = sorted(pos for status, pos in outcomes if status == EnrollmentStatus.WAITLISTED)
    assert len(enrolled) == 3
    assert waiting == list(range(1, THREADS - 3 + 1))
    with sessions() as s:
        assert s.get(GroupProgram, group_id).enrolled_count == 8
        rows = s.execute(
            select(GroupEnrollment.status, GroupEnrollment.position, GroupEnrollment.changed_at)
            .where(GroupEnrollment.group_id == group_id)
            .order_by(GroupEnrollment.id)
        ).all()
        assert sum(1 for r in rows if r.status == EnrollmentStatus.ENROLLED) == 3
        # "In order": the waitlist positions follow the order the rows were written.
        positions = [r.position for r in rows if r.status == EnrollmentStatus.WAITLISTED]
        assert positions == sorted(positions)
        assert (
            s.scalar(
                select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "group_enrolled")
            )
            == 3
        )
        s.commit()
