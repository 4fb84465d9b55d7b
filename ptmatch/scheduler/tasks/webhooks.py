"""Webhook jobs: send due deliveries; tell practices a booking's attendance is due (once its
appointment has ended and nobody marked it); forget old Idempotency-Keys."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ptmatch.config import Settings
from ptmatch.domain import api
from ptmatch.models import Booking, BookingStatus, Slot, WebhookEndpoint
from ptmatch.notifications import webhooks
from ptmatch.scheduler.jobs import Job

# Appointments that ended within this window are checked for a due attendance mark.
ATTENDANCE_WINDOW = dt.timedelta(days=3)


def deliver_webhooks(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Send due deliveries (commits its own claims and marks, as the mail outbox does)."""
    return webhooks.deliver_due(session, now, settings)


def attendance_due(session: Session, now: dt.datetime, settings: Settings) -> int:
    """`booking.attendance_due` for each confirmed booking whose appointment has ended, at
    practices with a webhook. Once per booking and endpoint (the delivery's dedupe key)."""
    practices = select(WebhookEndpoint.practice_id).where(WebhookEndpoint.disabled_at.is_(None))
    rows = session.execute(
        select(Booking.id, Slot)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.status == BookingStatus.CONFIRMED,
            Slot.practice_id.in_(practices),
            Slot.start_at < now,
            Slot.start_at >= now - ATTENDANCE_WINDOW,
        )
        .order_by(Slot.start_at)
    ).all()
    count = 0
    for booking_id, slot in rows:
        if slot.end_at > now:
            continue
        count += webhooks.emit(
            session,
            now,
            slot.practice_id,
            "booking.attendance_due",
            f"booking:{booking_id}",
            slot_id=slot.id,
            booking_id=booking_id,
            start_at=slot.start_at,
            minutes=slot.minutes,
        )
    session.flush()
    return count


def forget_idempotency_keys(session: Session, now: dt.datetime, settings: Settings) -> int:
    return api.forget_old_keys(session, now, settings)


JOBS = [
    Job("webhooks", deliver_webhooks, "WEBHOOK_SECONDS", 10),
    Job("attendance_due", attendance_due, None, 300),
    Job("idempotency_keys", forget_idempotency_keys, None, 3600),
]
