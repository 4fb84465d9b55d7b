"""Outbox delivery: claim due messages, send them, mark them; back off on failure.

Lifecycle of a row: PENDING --claim--> SENDING --sent--> SENT
                                              \\--failed--> PENDING (next_attempt_at later)
                                              \\--failed N times / permanent--> DEAD
A re-send by an admin (ptmatch.domain.admin) turns DEAD back into PENDING with a fresh
attempt count.

Claiming is its own short, committed transaction, so two senders never take the same row:
`UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)` on PostgreSQL; on SQLite the
same UPDATE without the lock clause, which SQLite runs under its single write lock (and
ptmatch.db opens every transaction with BEGIN IMMEDIATE besides).
The SMTP conversation runs with no transaction open (no lock held while the network is slow),
and each mark is again a short transaction, conditional on our claim still standing.

A claim is a lease of OUTBOX_CLAIM_TIMEOUT_SECONDS (60 s): while a batch is sending, the
sender renews the lease of the rows it still holds every third of it, so a slow SMTP server
never lets another sender take them over. A sender that dies (killed between "sent" and
"marked", or mid-batch) stops renewing; a lease later another run reclaims its rows and
re-sends them with the same Message-ID (receivers can fold the duplicate; the outbox keeps
one row per dedupe key).
Attempts are counted at claim time, so even a message that kills the sender ends up DEAD.

This is the one job that commits itself (claim, then one commit per mark): holding one
transaction across a batch of SMTP calls would either lock the database or lose the marks.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from ptmatch.config import Settings
from ptmatch.db import is_sqlite, note_event
from ptmatch.models import OutboxMessage, OutboxStatus
from ptmatch.notifications.senders import (
    Envelope,
    PermanentError,
    Sender,
    SendError,
    TemporaryError,
    TransportError,
    envelope_for,
    make_sender,
    make_sms_sender,
)

log = logging.getLogger("ptmatch.outbox")


def backoff(attempts: int, settings: Settings) -> dt.timedelta:
    """Delay before the next attempt after `attempts` failed ones: base * 2^(attempts-1), capped."""
    base = settings.OUTBOX_BACKOFF_SECONDS
    cap = settings.OUTBOX_BACKOFF_MAX_SECONDS
    return dt.timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


@dataclass(frozen=True)
class Claim:
    """A row this sender holds: what to send, and the claim the marks are conditional on."""

    outbox_id: int
    attempts: int
    claimed_at: dt.datetime
    envelope: Envelope


def _claimable(now: dt.datetime, settings: Settings):
    stale_before = now - dt.timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS)
    return or_(
        and_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now),
        and_(
            OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.claimed_at <= stale_before
        ),
    )


def lock_due(
    session: Session, now: dt.datetime, settings: Settings, limit: int
) -> list[OutboxMessage]:
    """Take up to `limit` due rows (PENDING and due, or SENDING with an expired claim) and
    flip them to SENDING. Flushes, does not commit: the caller commits to publish the claim.

    Each step is one UPDATE over a sub-select, so the transaction writes before it reads:
    on SQLite it queues for the write lock instead of failing on a stale read snapshot, and
    on PostgreSQL the sub-select skips rows another sender has locked.
    """
    stale_before = now - dt.timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS)
    max_attempts = settings.OUTBOX_MAX_ATTEMPTS
    skip_locked = not is_sqlite(session.get_bind())

    def ids(criteria, limit_to: int | None = None):
        stmt = select(OutboxMessage.id).where(criteria)
        if limit_to is not None:
            stmt = stmt.order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit_to)
        if skip_locked:
            stmt = stmt.with_for_update(skip_locked=True)
        return OutboxMessage.id.in_(stmt.scalar_subquery())

    # A stale claim on the last allowed attempt never reported back: give up, do not loop forever.
    given_up = (
        session.execute(
            update(OutboxMessage)
            .where(
                ids(
                    and_(
                        OutboxMessage.status == OutboxStatus.SENDING,
                        OutboxMessage.claimed_at <= stale_before,
                        OutboxMessage.attempts >= max_attempts,
                    )
                )
            )
            .values(
                status=OutboxStatus.DEAD,
                claimed_at=None,
                last_error="sender stopped before recording the result (claim expired)",
            )
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    for outbox_id in given_up:
        log.warning("outbox message %s dead: claim expired on the last attempt", outbox_id)
        note_event(session, "mail.dead")
    claimed = (
        session.execute(
            update(OutboxMessage)
            .where(ids(_claimable(now, settings), limit))
            .values(
                status=OutboxStatus.SENDING, claimed_at=now, attempts=OutboxMessage.attempts + 1
            )
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    if not claimed:
        return []
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.id.in_(claimed))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .execution_options(populate_existing=True)
        )
    )


def claim_due(
    session: Session, now: dt.datetime, settings: Settings, limit: int | None = None
) -> list[Claim]:
    """Claim due rows and commit the claim; returns detached envelopes ready to send."""
    limit = limit or settings.OUTBOX_BATCH
    mail_from = settings.MAIL_FROM
    try:
        rows = lock_due(session, now, settings, limit)
        claims = [Claim(row.id, row.attempts, now, envelope_for(row, mail_from)) for row in rows]
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return claims


def _mine(claim: Claim):
    return and_(
        OutboxMessage.id == claim.outbox_id,
        OutboxMessage.status == OutboxStatus.SENDING,
        OutboxMessage.claimed_at == claim.claimed_at,
    )


def renew_claims(session: Session, claims: list[Claim], now: dt.datetime) -> list[Claim]:
    """Extend the lease of the rows we still hold to `now`; returns those claims, renewed.
    A row another sender has taken over meanwhile drops out (we must not send it)."""
    held = []
    for claim in claims:
        result = session.execute(update(OutboxMessage).where(_mine(claim)).values(claimed_at=now))
        if result.rowcount == 1:
            held.append(replace(claim, claimed_at=now))
        else:
            log.warning("outbox message %s: claim lost before sending", claim.outbox_id)
    session.commit()
    return held


def mark_sent(session: Session, claim: Claim, now: dt.datetime) -> bool:
    """Record a delivery. False if our claim was taken over meanwhile (the other run marks)."""
    result = session.execute(
        update(OutboxMessage)
        .where(_mine(claim))
        .values(status=OutboxStatus.SENT, sent_at=now, claimed_at=None, last_error="")
    )
    if result.rowcount == 1:
        note_event(session, "mail.sent")
    session.commit()
    return result.rowcount == 1


def _record_failure(
    session: Session, claim: Claim, now: dt.datetime, settings: Settings, error: SendError
) -> bool:
    dead = isinstance(error, PermanentError) or claim.attempts >= settings.OUTBOX_MAX_ATTEMPTS
    values = {"claimed_at": None, "last_error": str(error)[:500] or type(error).__name__}
    if dead:
        values["status"] = OutboxStatus.DEAD
    else:
        values.update(
            status=OutboxStatus.PENDING, next_attempt_at=now + backoff(claim.attempts, settings)
        )
    result = session.execute(update(OutboxMessage).where(_mine(claim)).values(**values))
    if dead and result.rowcount == 1:
        note_event(session, "mail.dead")
    # Addresses and bodies stay out of the log: the id leads to the row.
    log.warning(
        "outbox message %s attempt %s failed%s: %s",
        claim.outbox_id,
        claim.attempts,
        " (dead)" if dead else "",
        type(error).__name__,
    )
    return result.rowcount == 1


def mark_failed(
    session: Session, claims: list[Claim], now: dt.datetime, settings: Settings, error: SendError
) -> None:
    """Back off (PENDING with a later next_attempt_at), or DEAD after the last attempt."""
    for claim in claims:
        _record_failure(session, claim, now, settings, error)
    session.commit()


def deliver_due(
    session: Session,
    now: dt.datetime,
    settings: Settings,
    sender: Sender | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    sms_sender: Sender | None = None,
) -> int:
    """Deliver every due message (up to OUTBOX_PER_RUN). Returns how many were sent.

    Mails go to `sender` (default: the settings' mail sender), SMS rows to `sms_sender`
    (default: the settings' SMS sender; with SMS_SENDER "none" an SMS row is dead at once).
    `clock` tells the time while the run goes on (the scheduler passes ptmatch.clock.now); it
    stamps claims, marks and lease renewals. Without it, time stands still at `now`.
    A transport failure (server down, login refused) backs off the rest of the batch on that
    channel and ends the run after the batch; a failure of one message backs off that
    message only.
    """
    current = clock or (lambda: now)
    renew_after = dt.timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS / 3)
    own_sender, own_sms = sender is None, sms_sender is None
    sender = sender or make_sender(settings)
    sms_sender = sms_sender or make_sms_sender(settings)
    budget = settings.OUTBOX_PER_RUN
    sent = 0
    try:
        while budget > 0:
            leased_at = current()
            claims = claim_due(session, leased_at, settings, min(settings.OUTBOX_BATCH, budget))
            if not claims:
                break
            budget -= len(claims)
            down: dict[bool, TransportError] = {}  # channel (is SMS) -> why it is down
            while claims:
                if current() - leased_at >= renew_after:
                    leased_at = current()
                    claims = renew_claims(session, claims, leased_at)
                    if not claims:
                        break
                claim = claims.pop(0)
                is_sms = claim.envelope.is_sms
                if is_sms in down:
                    mark_failed(session, [claim], current(), settings, down[is_sms])
                    continue
                channel = sms_sender if is_sms else sender
                try:
                    if channel is None:
                        raise PermanentError("SMS is off (SMS_SENDER none)")
                    channel.send(claim.envelope)
                except TransportError as err:
                    down[is_sms] = err
                    mark_failed(session, [claim], current(), settings, err)
                    continue
                except SendError as err:
                    mark_failed(session, [claim], current(), settings, err)
                    continue
                except Exception as err:  # a bug in a sender must not stop the other mails
                    log.exception("outbox message %s: unexpected error", claim.outbox_id)
                    mark_failed(
                        session,
                        [claim],
                        current(),
                        settings,
                        TemporaryError(f"{type(err).__name__}: {err}"),
                    )
                    continue
                mark_sent(session, claim, current())
                sent += 1
            if down:
                return sent
    finally:
        if own_sender:
            sender.close()
        if own_sms and sms_sender is not None:
            sms_sender.close()
    return sent


# --- administration ---------------------------------------------------------------


def status_counts(session: Session) -> dict[OutboxStatus, int]:
    rows = session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    counts = dict.fromkeys(OutboxStatus, 0)
    counts.update({OutboxStatus(status): n for status, n in rows})
    return counts


def dead_messages(session: Session, *, page: int = 1, per_page: int = 50) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.DEAD)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .offset((max(page, 1) - 1) * per_page)
            .limit(per_page)
        )
    )


def retrying_messages(session: Session, *, limit: int = 20) -> list[OutboxMessage]:
    """Pending rows that already failed at least once, next attempt first."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.attempts > 0)
            .order_by(OutboxMessage.next_attempt_at)
            .limit(limit)
        )
    )
