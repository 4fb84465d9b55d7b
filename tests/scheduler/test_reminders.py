"""Reminders: REMINDER_HOURS before a confirmed booking, exactly once."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlalchemy import select

from ptmatch.models import BookingStatus, OutboxMessage, Role
from ptmatch.scheduler.jobs import all_jobs
from ptmatch.scheduler.runner import run_job
from ptmatch.scheduler.tasks.reminders import send_reminders
from tests.factories import make_patient, make_therapist, make_user
from tests.notifications.helpers import make_booking

H = dt.timedelta(hours=1)
BOOKED_EARLY = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def _setup(session, **booking):
    patient = make_patient(session)
    therapist = make_therapist(session)
    return make_booking(session, patient, therapist, **{"created_at": BOOKED_EARLY, **booking})


def _mails(session):
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")))


def test_reminder_within_24_hours(session, now, settings):
    booking = _setup(session, start_at=now + 23 * H)
    assert send_reminders(session, now, settings) == 1
    [mail] = _mails(session)
    assert mail.dedupe_key == f"reminder:{booking.id}"
    assert mail.user_id == booking.patient.user_id
    assert "Mittwoch, 25. November 2026, 09:00 Uhr" in mail.body_text  # 08:00 UTC
    assert "https://ptmatch.test/patient/" in mail.body_text
    assert booking.reminder_sent_at == now


def test_no_reminder_yet_for_a_booking_further_away(session, now, settings):
    booking = _setup(session, start_at=now + 25 * H)
    assert send_reminders(session, now, settings) == 0
    assert booking.reminder_sent_at is None


def test_reminder_hours_is_a_setting(session, now, settings):
    _setup(session, start_at=now + 40 * H)
    assert send_reminders(session, now, replace(settings, REMINDER_HOURS=48)) == 1


def test_reminder_once_only(sessions, session, now, settings):
    _setup(session, start_at=now + 20 * H)
    session.commit()
    job = next(j for j in all_jobs() if j.name == "reminders")
    assert run_job(sessions, job, settings, now=now) == 1
    assert run_job(sessions, job, settings, now=now + H) == 0
    assert run_job(sessions, job, settings, now=now + 2 * H) == 0
    assert len(_mails(session)) == 1


def test_a_reset_marker_still_gives_one_mail(session, now, settings):
    booking = _setup(session, start_at=now + 20 * H)
    send_reminders(session, now, settings)
    booking.reminder_sent_at = None  # e.g. a second scheduler raced the first one
    assert send_reminders(session, now + H, settings) == 0
    assert len(_mails(session)) == 1


def test_no_reminder_for_cancelled_or_past_bookings(session, now, settings):
    _setup(session, start_at=now + 5 * H, status=BookingStatus.CANCELLED)
    _setup(session, start_at=now - H)
    assert send_reminders(session, now, settings) == 0


def test_no_reminder_for_a_booking_made_inside_the_window(session, now, settings):
    booking = _setup(session, start_at=now + 20 * H, created_at=now - H)
    assert send_reminders(session, now, settings) == 0
    assert booking.reminder_sent_at is None


def test_reminder_in_the_patients_language(session, now, settings):
    user = make_user(session, Role.PATIENT, locale="en")
    booking = make_booking(
        session,
        make_patient(session, user=user),
        make_therapist(session),
        start_at=now + 10 * H,
        created_at=BOOKED_EARLY,
    )
    send_reminders(session, now, settings)
    [mail] = _mails(session)
    assert (mail.locale, mail.subject) == ("en", "Reminder of your appointment")
    assert booking.reminder_sent_at == now


def test_patient_without_account_gets_a_call_task_instead_of_a_mail(session, now, settings):
    from ptmatch.models import CallKind, CallTask

    booking = _setup(session, start_at=now + 10 * H)
    booking.patient.user_id = None
    session.flush()
    assert send_reminders(session, now, settings) == 1  # issue 13: the secretariat calls
    assert booking.reminder_sent_at == now and _mails(session) == []
    [task] = session.query(CallTask).all()
    assert (task.kind, task.patient_id) == (CallKind.REMINDER, booking.patient_id)
