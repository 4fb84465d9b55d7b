"""Write audit events. Details hold ids and codes only, never names, contacts or clinical text.

Some events are also a practice's webhook events (`WEBHOOK_EVENTS`): recording one queues a
signed delivery to each of the practice's webhook endpoints, in the same transaction. So
every door that books or cancels (portal, secretariat, API, jobs) tells the practice
software the same way.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ptmatch.db import note_event
from ptmatch.models import AuditEvent, Slot, User
from ptmatch.notifications import webhooks


def record(
    session: Session,
    now: dt.datetime,
    action: str,
    actor: User | None = None,
    *,
    patient_id: int | None = None,
    subject_user_id: int | None = None,
    practice_id: int | None = None,
    **details,
) -> AuditEvent:
    event = AuditEvent(
        at=now,
        actor_id=actor.id if actor is not None else None,
        actor_role=str(actor.role) if actor is not None else "system",
        action=action,
        patient_id=patient_id,
        subject_user_id=subject_user_id,
        practice_id=practice_id,
        details=details or None,
    )
    session.add(event)
    note_event(session, action)  # metrics count it if the transaction commits
    hook = WEBHOOK_EVENTS.get(action)
    if hook is not None and practice_id is not None and details.get("slot_id"):
        _webhook(session, now, hook, practice_id, details)
    return event


def record_many(
    session: Session,
    now: dt.datetime,
    action: str,
    actor: User | None,
    events: list[dict],
) -> int:
    """The same rows as `record` once per item of `events` (each a dict of `record`'s keyword
    arguments: patient_id, practice_id, subject_user_id and details), in one INSERT."""
    if not events:
        return 0
    columns = ("patient_id", "subject_user_id", "practice_id")
    rows = []
    for event in events:
        details = {k: v for k, v in event.items() if k not in columns}
        rows.append(
            {
                "at": now,
                "actor_id": actor.id if actor is not None else None,
                "actor_role": str(actor.role) if actor is not None else "system",
                "action": action,
                "patient_id": event.get("patient_id"),
                "subject_user_id": event.get("subject_user_id"),
                "practice_id": event.get("practice_id"),
                "details": details or None,
            }
        )
    session.flush()
    session.connection().execute(insert(AuditEvent.__table__), rows)
    for _row in rows:
        note_event(session, action)  # metrics count each, as with `record`
    return len(rows)


# audit action -> webhook event
WEBHOOK_EVENTS = {
    "booking.created": "slot.booked",
    "slot.unfilled": "slot.unfilled",
    "booking.cancelled": "booking.cancelled",
}


def _webhook(session: Session, now: dt.datetime, hook: str, practice_id: int, details) -> None:
    slot = session.get(Slot, details["slot_id"])
    data = {"slot_id": slot.id, "start_at": slot.start_at, "minutes": slot.minutes}
    if details.get("booking_id"):
        data["booking_id"] = details["booking_id"]
    if hook == "booking.cancelled":
        data["cancelled_by"] = details.get("by") or ""
    dedupe = f"booking:{details['booking_id']}" if "booking_id" in data else f"slot:{slot.id}"
    webhooks.emit(session, now, practice_id, hook, dedupe, **data)
