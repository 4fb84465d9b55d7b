"""Write audit events. Details hold ids and codes only, never names, contacts or clinical text."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from ptmatch.db import note_event
from ptmatch.models import AuditEvent, User


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
    return event
