"""The offer sweep (every SWEEP_SECONDS): expire offers, send next waves, close slots whose
time ran out, and tell practices the outcome.

Idempotent and safe with two schedulers at once: every change is a conditional UPDATE
(``WHERE status = 'pending'`` ...), rows are taken with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL (a row another sweep or an accept is working on is left for the next run),
offers are unique per (slot, patient), a wave is claimed by bumping ``current_wave``
conditionally, and every mail has a deterministic dedupe key.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ptmatch.config import Settings
from ptmatch.domain import audit, offer_machine, offers
from ptmatch.models import Offer, OfferMode, OfferStatus, Slot, SlotStatus
from ptmatch.scheduler.jobs import Job

log = logging.getLogger("ptmatch.scheduler")
BATCH = 500


def expire_offers(session: Session, now: dt.datetime) -> int:
    """PENDING slot offers past their deadline → EXPIRED (they already were, on read)."""
    rows = session.execute(
        select(Offer.id, Offer.patient_id, Offer.slot_id)
        .where(
            Offer.status == OfferStatus.PENDING, Offer.expires_at <= now, Offer.slot_id.is_not(None)
        )
        .order_by(Offer.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    count = 0
    for offer_id, patient_id, slot_id in rows:
        if offer_machine.set_offer_status(session, offer_id, OfferStatus.EXPIRED, now, live=False):
            audit.record(
                session,
                now,
                "offer.expired",
                None,
                patient_id=patient_id,
                slot_id=slot_id,
                offer_id=offer_id,
            )
            count += 1
    return count


def close_due_slots(session: Session, now: dt.datetime) -> int:
    """Slots still offering after their offer deadline → UNFILLED, practice told."""
    due = list(
        session.scalars(
            select(Slot)
            .where(Slot.status == SlotStatus.OFFERING, Slot.offer_deadline_at <= now)
            .order_by(Slot.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    return sum(1 for slot in due if offers.close_unfilled(session, now, slot))


def advance_waves(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Auto slots with fewer open offers than their wave size get the next wave."""
    live = (
        select(Offer.slot_id, func.count(Offer.id).label("n"))
        .where(
            Offer.status == OfferStatus.PENDING, Offer.expires_at > now, Offer.slot_id.is_not(None)
        )
        .group_by(Offer.slot_id)
        .subquery()
    )
    rows = session.execute(
        select(Slot.id, Slot.practice_id, Slot.start_at, func.coalesce(live.c.n, 0))
        .outerjoin(live, live.c.slot_id == Slot.id)
        .where(
            Slot.status == SlotStatus.OFFERING,
            Slot.offer_mode == OfferMode.AUTO,
            Slot.offer_deadline_at > now,
        )
        .order_by(Slot.offer_deadline_at, Slot.id)
        .limit(BATCH)
    ).all()
    sent = 0
    for slot_id, _practice_id, _start, pending in rows:
        slot = session.get(Slot, slot_id)
        size, _ttl = offer_machine.wave_params(slot.practice, slot.start_at, now, settings)
        if pending < size:
            # Another scheduler may offer the same patient this slot a moment before us: its wave
            # stands.
            sent += offers.move_on(session, now, [slot.id], settings)
    return sent


def notify_outcomes(session: Session, now: dt.datetime) -> int:
    """Safety net: a booked or unfilled slot whose practice was not told yet."""
    slots = list(
        session.scalars(
            select(Slot)
            .where(
                Slot.status.in_([SlotStatus.BOOKED, SlotStatus.UNFILLED]),
                Slot.outcome_notified_at.is_(None),
            )
            .order_by(Slot.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    return sum(1 for slot in slots if offers.notify_outcome(session, now, slot))


def sweep(session: Session, now: dt.datetime, settings: Settings) -> int:
    """One pass; returns the number of changes (expired, closed, offers sent, notices)."""
    count = expire_offers(session, now)
    count += close_due_slots(session, now)
    count += advance_waves(session, now, settings)
    count += notify_outcomes(session, now)
    session.flush()
    return count


JOBS = [Job("offer_sweep", sweep, "SWEEP_SECONDS", default_seconds=30)]
