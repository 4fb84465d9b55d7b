"""The secretariat's call queue: people who gave no email address are phoned instead.

An offer to a phone-only patient (no account) opens a call task in the same transaction as
the offer: who to call, the practice, the date and time, and the deadline (the offer's own,
which is longer for phone-only patients: ``Settings.PHONE_ANSWER_FACTOR``). Their reminders
and still-looking check-ins become call tasks too. The secretariat records the outcome
(``secretariat.record_call_outcome``); "not reached" passes the place on at once.

A group seat offered to a phone-only patient opens the same kind of task (the group's title,
first session and deadline); "accepted" takes the seat (or a place on the group's waitlist).

Whether a task still needs a call is derived when read: an offer task whose offer is no
longer open (taken, expired, withdrawn) drops out of the queue without anybody closing it.
Who sees a task is the policy of ``access`` (the callers whose identity the secretary sees),
and a task about a practice's slot only the secretariats serving that practice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ptmatch.catalog import N_
from ptmatch.domain import access, audit
from ptmatch.domain.errors import NotFound
from ptmatch.models import (
    CallKind,
    CallOutcome,
    CallStatus,
    CallTask,
    GroupProgram,
    Modality,
    Offer,
    OfferStatus,
    Patient,
    Practice,
    Role,
    Slot,
    User,
)

QUEUE_LIMIT = 200
# The outcomes each kind of task can have.
OUTCOMES: dict[CallKind, tuple[CallOutcome, ...]] = {
    CallKind.OFFER: (CallOutcome.ACCEPTED, CallOutcome.DECLINED, CallOutcome.NOT_REACHED),
    CallKind.REMINDER: (CallOutcome.REACHED, CallOutcome.NOT_REACHED),
    CallKind.CHECKIN: (CallOutcome.STILL_LOOKING, CallOutcome.NOT_REACHED),
}


def is_phone_only(patient: Patient) -> bool:
    """No account, so no email: we can only phone them (a secretariat registration)."""
    return patient.user_id is None


@dataclass(frozen=True)
class QueueRow:
    task_id: int
    kind: CallKind
    patient_id: int
    name: str
    phone: str  # E.164
    practice: str
    group: str  # a group seat offer: the group's title (else empty)
    start_at: dt.datetime | None
    minutes: int | None
    modality: Modality | None
    due_at: dt.datetime
    outcomes: tuple[CallOutcome, ...]


def open_call(
    session: Session,
    now: dt.datetime,
    *,
    kind: CallKind,
    patient_id: int,
    due_at: dt.datetime,
    dedupe_key: str,
    offer_id: int | None = None,
    slot_id: int | None = None,
    group_id: int | None = None,
    practice_id: int | None = None,
) -> CallTask | None:
    """A new task, unless one with this key exists already (a job may run twice)."""
    if session.scalar(select(CallTask.id).where(CallTask.dedupe_key == dedupe_key)) is not None:
        return None
    task = CallTask(
        kind=kind,
        status=CallStatus.OPEN,
        patient_id=patient_id,
        offer_id=offer_id,
        slot_id=slot_id,
        group_id=group_id,
        practice_id=practice_id,
        due_at=due_at,
        dedupe_key=dedupe_key,
        created_at=now,
    )
    session.add(task)
    session.flush()
    audit.record(
        session,
        now,
        "call.opened",
        None,
        patient_id=patient_id,
        practice_id=practice_id,
        task_id=task.id,
        kind=str(kind),
        offer_id=offer_id,
    )
    return task


def open_offer_call(
    session: Session, now: dt.datetime, offer: Offer, target: Slot | GroupProgram
) -> CallTask:
    """The call that tells a phone-only patient about an offer (a slot or a group seat) and
    takes their answer."""
    where = {"slot_id": target.id} if isinstance(target, Slot) else {"group_id": target.id}
    return open_call(
        session,
        now,
        kind=CallKind.OFFER,
        patient_id=offer.patient_id,
        due_at=offer.expires_at,
        dedupe_key=f"offer:{offer.id}:{offer.wave}",
        offer_id=offer.id,
        practice_id=target.practice_id,
        **where,
    )


def _for_served(session: Session, actor: User):
    """A task about a practice's slot goes to the secretariats serving that practice."""
    served = access.served_practice_ids(session, actor)
    return or_(CallTask.practice_id.is_(None), CallTask.practice_id.in_(served or [-1]))


def queue(session: Session, now: dt.datetime, actor: User) -> list[QueueRow]:
    """The open calls the secretary may make, the most urgent first (offers past their
    deadline have dropped out: derived on read)."""
    if actor is None or actor.role != Role.SECRETARY:
        return []
    rows = session.execute(
        select(CallTask, Patient, Slot, GroupProgram, Practice.name)
        .join(Patient, Patient.id == CallTask.patient_id)
        .outerjoin(Slot, Slot.id == CallTask.slot_id)
        .outerjoin(GroupProgram, GroupProgram.id == CallTask.group_id)
        .outerjoin(Practice, Practice.id == CallTask.practice_id)
        .outerjoin(Offer, Offer.id == CallTask.offer_id)
        .where(
            CallTask.status == CallStatus.OPEN,
            # An offer call only while its offer is open (derived on read: no sweep needed).
            or_(
                CallTask.kind != CallKind.OFFER,
                and_(Offer.status == OfferStatus.PENDING, Offer.expires_at > now),
            ),
            access.identity_visible_clause(session, actor),
            _for_served(session, actor),
        )
        .order_by(CallTask.due_at, CallTask.id)
        .limit(QUEUE_LIMIT)
    ).all()
    return [
        QueueRow(
            task_id=task.id,
            kind=task.kind,
            patient_id=patient.id,
            name=patient.full_name,
            phone=patient.phone,
            practice=practice_name or "",
            group=group.title if group is not None else "",
            start_at=_start(slot, group),
            minutes=(slot or group).minutes if slot or group else None,
            modality=(slot or group).modality if slot or group else None,
            due_at=task.due_at,
            outcomes=OUTCOMES[task.kind],
        )
        for task, patient, slot, group, practice_name in rows
    ]


def _start(slot: Slot | None, group: GroupProgram | None) -> dt.datetime | None:
    """When the offered place begins: the slot's start, or the group's first session."""
    if slot is not None:
        return slot.start_at
    return group.first_session_at if group is not None else None


def get_task(session: Session, actor: User, task_id: int) -> CallTask:
    """An open task the secretary may work on, or NotFound."""
    task = session.get(CallTask, task_id) if isinstance(task_id, int) else None
    if (
        task is None
        or actor is None
        or actor.role != Role.SECRETARY
        or task.status != CallStatus.OPEN
        or not access.patient_access(session, actor, task.patient).act
        or (
            task.practice_id is not None
            and task.practice_id not in access.served_practice_ids(session, actor)
        )
    ):
        raise NotFound(N_("Dieser Anruf ist nicht (mehr) offen."))
    return task


def close_call(
    session: Session, now: dt.datetime, task: CallTask, outcome: CallOutcome, actor: User | None
) -> None:
    task.status = CallStatus.DONE
    task.outcome = outcome
    task.done_at = now
    task.done_by_id = actor.id if actor is not None else None
    session.flush()
    audit.record(
        session,
        now,
        "call.done",
        actor,
        patient_id=task.patient_id,
        practice_id=task.practice_id,
        task_id=task.id,
        kind=str(task.kind),
        outcome=str(outcome),
    )
