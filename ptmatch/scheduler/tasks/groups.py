"""The group sweep: expire group offers, decide groups at their decision time, send next waves.

Decision: ``GROUP_DECISION_HOURS`` (48) before the first session an OPEN group below its
minimum is CANCELLED (participants and waitlisted patients are told; open offers are
withdrawn), one at or above it is CONFIRMED (participants are told). Seats freed before the
start go to the waitlist in order; free seats without a waitlist go to new candidates.

Idempotent and safe with two schedulers at once: every change is a conditional UPDATE
(``WHERE status = 'open'`` / ``'pending'``), group rows are taken with ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, a wave is claimed by bumping ``current_wave`` conditionally, and
every mail has a deterministic dedupe key (``group_cancelled:<enrolment id>`` ...).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ptmatch.config import Settings
from ptmatch.domain import groups
from ptmatch.models import GroupProgram, GroupStatus
from ptmatch.scheduler.jobs import Job

BATCH = 200


def decide_due_groups(session: Session, now: dt.datetime, settings: Settings) -> int:
    """OPEN groups whose decision time has come → CANCELLED or CONFIRMED."""
    horizon = now + dt.timedelta(hours=groups.decision_hours(settings))
    due = list(
        session.scalars(
            select(GroupProgram)
            .where(
                GroupProgram.status == GroupStatus.OPEN, GroupProgram.first_session_at <= horizon
            )
            .order_by(GroupProgram.first_session_at, GroupProgram.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    return sum(1 for group in due if groups.decide_group(session, now, group, settings) is not None)


def advance_group_waves(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Groups with free seats before their offer deadline get their next wave."""
    live = list(
        session.scalars(
            select(GroupProgram)
            .where(
                GroupProgram.status.in_(groups.LIVE_GROUP),
                GroupProgram.first_session_at > now,
                GroupProgram.enrolled_count < GroupProgram.max_participants,
            )
            .order_by(GroupProgram.first_session_at, GroupProgram.id)
            .limit(BATCH)
        )
    )
    return sum(groups.move_on(session, now, group, settings) for group in live)


def sweep_groups(session: Session, now: dt.datetime, settings: Settings) -> int:
    """One pass; returns the number of changes (expired offers, decisions, offers sent)."""
    count = groups.expire_group_offers(session, now)
    count += decide_due_groups(session, now, settings)
    count += advance_group_waves(session, now, settings)
    session.flush()
    return count


JOBS = [Job("group_sweep", sweep_groups, "SWEEP_SECONDS", default_seconds=30)]
