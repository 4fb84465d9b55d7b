"""Appointment reminders: REMINDER_HOURS (24) before each confirmed booking, once.

Once = `Booking.reminder_sent_at` (the job skips marked bookings) plus the outbox dedupe key
`reminder:<booking id>` (two overlapping runs still write one mail). A booking made inside
the reminder window gets none: its confirmation mail, minutes old, already names the time.
A patient without an account (phone-only) gets a call task in the secretariat's queue
instead, due REMINDER_CALL_HOURS before the start (same dedupe key).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ptmatch import links
from ptmatch.config import Settings
from ptmatch.domain import calls
from ptmatch.models import Booking, BookingStatus, CallKind, Patient, Slot, User
from ptmatch.notifications import outbox, sms
from ptmatch.scheduler.jobs import Job

BATCH = 500


def send_reminders(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Enqueue a reminder for every confirmed booking starting within REMINDER_HOURS."""
    window = dt.timedelta(hours=settings.REMINDER_HOURS)
    rows = session.execute(
        select(Booking, Slot.start_at, User, Slot.practice_id, Patient.user_id)
        .join(Slot, Slot.id == Booking.slot_id)
        .join(Patient, Patient.id == Booking.patient_id)
        .outerjoin(User, User.id == Patient.user_id)
        .where(
            Booking.status == BookingStatus.CONFIRMED,
            Booking.reminder_sent_at.is_(None),
            Slot.start_at > now,
            Slot.start_at <= now + window,
        )
        .order_by(Slot.start_at)
        .limit(BATCH)
    ).all()
    count = 0
    for booking, start_at, user, practice_id, user_id in rows:
        if booking.created_at > start_at - window:
            continue  # booked inside the window: the confirmation was the reminder
        # An SMS besides the mail or the call, if the patient chose it (a phone-only patient
        # has no login: the link is the public start page).
        sms.enqueue_for_patient(
            session,
            now,
            booking.patient,
            kind="reminder",
            dedupe_key=f"reminder:{booking.id}",
            link_path=links.patient_home() if user_id is not None else links.home(),
        )
        if user is not None and user.is_enabled:
            if outbox.enqueue(
                session,
                now,
                kind="reminder",
                dedupe_key=f"reminder:{booking.id}",
                link_path=links.patient_home(),
                to_user=user,
                when=start_at,
            ):
                count += 1
        elif user_id is None:
            due = max(now, start_at - dt.timedelta(hours=settings.REMINDER_CALL_HOURS))
            if calls.open_call(
                session,
                now,
                kind=CallKind.REMINDER,
                patient_id=booking.patient_id,
                due_at=due,
                dedupe_key=f"reminder:{booking.id}",
                slot_id=booking.slot_id,
                practice_id=practice_id,
            ):
                count += 1
        booking.reminder_sent_at = now
    session.flush()
    return count


JOBS = [Job("reminders", send_reminders, "REMINDER_SECONDS", 60)]
