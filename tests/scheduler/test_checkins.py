"""The "still looking?" timeline with a fixed clock: 30 days → mail, +14 → paused, +180 → purged.
Every step run twice with the same clock gives the same result and no second mail."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from ptmatch.domain import checkins, patients
from ptmatch.models import (
    AuditEvent,
    OutboxMessage,
    OutboxStatus,
    Patient,
    PatientClinical,
    PatientStatus,
    User,
)
from ptmatch.scheduler.jobs import all_jobs
from tests.domain.test_patients import find_everywhere
from tests.factories import make_patient, make_practice

DAY = dt.timedelta(days=1)


@pytest.fixture
def patient(session, now):
    p = make_patient(
        session,
        first_name="Wendelin",
        last_name="Quastenberg",
        phone="+4915112345678",
        lists=[make_practice(session)],
        last_confirmed_at=now,
        created_at=now - 5 * DAY,
    )
    p.user.email = "wendelin.q@example.org"
    session.flush()
    return p


def run(session, when, settings) -> int:
    count = checkins.run_checkins(session, when, settings)
    session.commit()
    session.expire_all()
    return count


def mails(session, kind: str) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)))


def actions(session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_job_is_registered():
    assert "checkins" in {job.name for job in all_jobs()}


def test_nothing_before_thirty_days(session, now, settings, patient):
    assert run(session, now + 30 * DAY - dt.timedelta(minutes=1), settings) == 0
    assert mails(session, "checkin") == []


def test_thirty_days_send_one_checkin_mail(session, now, settings, patient):
    t1 = now + 30 * DAY
    assert run(session, t1, settings) == 1
    assert run(session, t1, settings) == 0
    sent = mails(session, "checkin")
    assert len(sent) == 1 and sent[0].to_addr == "wendelin.q@example.org"
    assert "/patient/checkin/" in sent[0].body_text and "Wendelin" not in sent[0].body_text
    assert session.get(Patient, patient.id).checkin_sent_at == t1
    assert actions(session).count("patient.checkin_sent") == 1


def test_fourteen_days_without_answer_pause(session, now, settings, patient):
    t1 = now + 30 * DAY
    run(session, t1, settings)
    assert run(session, t1 + 14 * DAY - dt.timedelta(minutes=1), settings) == 0
    t2 = t1 + 14 * DAY
    assert run(session, t2, settings) == 1
    assert run(session, t2, settings) == 0
    p = session.get(Patient, patient.id)
    assert p.status == PatientStatus.PAUSED and p.status_changed_at == t2
    assert not patients.is_matchable(p, p.user, t2.date())
    assert len(mails(session, "paused")) == 1 and len(mails(session, "checkin")) == 1
    assert actions(session).count("patient.checkin_paused") == 1


def test_an_answer_prevents_the_pause_and_restarts_the_clock(session, now, settings, patient):
    t1 = now + 30 * DAY
    run(session, t1, settings)
    patients.confirm_still_looking(session, t1 + 2 * DAY, session.get(Patient, patient.id), None)
    session.commit()
    assert run(session, t1 + 14 * DAY, settings) == 0
    assert session.get(Patient, patient.id).status == PatientStatus.ACTIVE
    assert run(session, t1 + 2 * DAY + 30 * DAY, settings) == 1
    assert len(mails(session, "checkin")) == 2


def test_answer_after_the_pause_reactivates(session, now, settings, patient):
    t1 = now + 30 * DAY
    run(session, t1, settings)
    run(session, t1 + 14 * DAY, settings)
    patients.confirm_still_looking(session, t1 + 20 * DAY, session.get(Patient, patient.id), None)
    session.commit()
    assert session.get(Patient, patient.id).status == PatientStatus.ACTIVE


def _until_purge(session, settings, now):
    t1 = now + 30 * DAY
    run(session, t1, settings)
    t2 = t1 + 14 * DAY
    run(session, t2, settings)
    return t2 + 180 * DAY


NEEDLES = ["Wendelin", "Quastenberg", "wendelin.q@example.org", "+4915112345678"]


def test_silent_for_180_days_after_the_pause_purges(session, now, settings, patient):
    t3 = _until_purge(session, settings, now)
    assert run(session, t3 - dt.timedelta(minutes=1), settings) == 0
    assert run(session, t3, settings) == 1
    p = session.get(Patient, patient.id)
    assert p.status == PatientStatus.DELETED and p.first_name == "" and p.phone == ""
    assert session.get(PatientClinical, patient.id) is None
    purged = mails(session, "purged")
    assert len(purged) == 1 and purged[0].to_addr == "wendelin.q@example.org"
    # Only the account address is left, for the notice, and nothing else names the patient.
    assert {t for t, _c in find_everywhere(session, NEEDLES)} == {"users", "outbox_messages"}


def test_purge_run_twice_is_the_same(session, now, settings, patient):
    t3 = _until_purge(session, settings, now)
    run(session, t3, settings)
    assert run(session, t3, settings) == 0
    assert len(mails(session, "purged")) == 1
    assert actions(session).count("patient.erased") == 1


def test_address_goes_once_the_notice_was_delivered(session, now, settings, patient):
    t3 = _until_purge(session, settings, now)
    run(session, t3, settings)
    user_id = patient.user_id
    notice = mails(session, "purged")[0]
    notice.status = OutboxStatus.SENT
    notice.sent_at = t3 + dt.timedelta(minutes=1)
    session.commit()
    assert run(session, t3 + dt.timedelta(minutes=2), settings) == 1
    assert session.get(User, user_id) is None
    assert find_everywhere(session, NEEDLES) == []
    assert actions(session).count("patient.erasure_completed") == 1
    assert run(session, t3 + dt.timedelta(minutes=2), settings) == 0


def test_undelivered_notice_is_dropped_after_a_grace_period(session, now, settings, patient):
    t3 = _until_purge(session, settings, now)
    run(session, t3, settings)
    assert run(session, t3 + checkins.PURGE_NOTICE_GRACE - dt.timedelta(minutes=1), settings) == 0
    assert run(session, t3 + checkins.PURGE_NOTICE_GRACE, settings) == 1
    assert find_everywhere(session, NEEDLES) == []


def test_a_login_during_the_pause_is_not_silence(session, now, settings, patient):
    t3 = _until_purge(session, settings, now)
    user = session.get(User, patient.user_id)
    user.last_login_at = t3 - 10 * DAY
    session.commit()
    run(session, t3, settings)
    assert session.get(Patient, patient.id).status == PatientStatus.PAUSED


def test_pause_with_an_end_date_ends_on_that_day(session, now, settings, patient):
    patients.pause(
        session,
        now,
        session.get(Patient, patient.id),
        dt.date(2026, 12, 10),
        None,
        settings=settings,
    )
    session.commit()
    assert run(session, dt.datetime(2026, 12, 9, 22, 59, tzinfo=dt.UTC), settings) == 0
    assert (
        run(session, dt.datetime(2026, 12, 9, 23, 0, tzinfo=dt.UTC), settings) == 1
    )  # midnight in Berlin
    p = session.get(Patient, patient.id)
    assert p.status == PatientStatus.ACTIVE and p.paused_until is None


def test_pause_with_an_end_date_is_never_purged_before_it(session, now, settings, patient):
    patients.pause(
        session, now, session.get(Patient, patient.id), dt.date(2028, 1, 1), None, settings=settings
    )
    session.commit()
    run(session, now + 400 * DAY, settings)
    assert session.get(Patient, patient.id).status == PatientStatus.PAUSED


def test_booked_patients_get_no_checkin(session, now, settings, patient):
    session.get(Patient, patient.id).status = PatientStatus.BOOKED
    session.commit()
    assert run(session, now + 60 * DAY, settings) == 0


def test_settings_change_the_timeline(session, now, settings, patient):
    settings = replace(settings, CHECKIN_DAYS=7)
    assert run(session, now + 7 * DAY, settings) == 1


def test_registration_counts_as_the_first_confirmation(session, now, settings):
    make_patient(session, last_confirmed_at=None, created_at=now - 31 * DAY)
    session.commit()
    assert run(session, now, settings) == 1
    assert (
        session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "checkin"))
        == 1
    )
