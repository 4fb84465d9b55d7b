"""Webhooks: a practice's software hears of its slots and bookings.

An event is written as one delivery row per active endpoint of the practice, in the
transaction that causes it (rollback leaves no delivery), exactly like a mail in the outbox.
The scheduler's `deliver_due` job claims due rows, POSTs them with no transaction open,
and marks them: SENT on a 2xx answer, else PENDING again with backoff, DEAD after
WEBHOOK_MAX_ATTEMPTS. A practice sees its deliveries and can send a dead one again.

Bodies carry ids and times only, never a name: `{"id", "event", "created", "data"}`.
Each is signed like Stripe's: header `Ptmatch-Signature: t=<unix time>,v1=<hex>` where
hex = HMAC-SHA256(secret, f"{t}.{body}"). Receivers check the signature and that t is
recent (docs/api.md has a reference check).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
import uuid

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ptmatch.config import Settings
from ptmatch.db import is_sqlite
from ptmatch.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("ptmatch.webhooks")

EVENTS = ("slot.booked", "slot.unfilled", "booking.cancelled", "booking.attendance_due")
SIGNATURE_HEADER = "Ptmatch-Signature"
CLAIM_TIMEOUT = dt.timedelta(minutes=2)  # a SENDING row older than this is taken again
BACKOFF_CAP = dt.timedelta(hours=6)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def emit(
    session: Session,
    now: dt.datetime,
    practice_id: int,
    event: str,
    dedupe: str,
    **data,
) -> int:
    """Queue `event` for every active endpoint of the practice. `data` holds ids and times
    only. `dedupe` names the fact (e.g. "booking:7"): the same fact is sent once per
    endpoint even if it is emitted twice. Returns the number of deliveries written."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    endpoints = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.practice_id == practice_id, WebhookEndpoint.disabled_at.is_(None)
        )
    ).all()
    payload = {
        key: _iso(value) if isinstance(value, dt.datetime) else value for key, value in data.items()
    }
    written = 0
    for endpoint in endpoints:
        key = f"{event}:{dedupe}:{endpoint.id}"
        if session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.dedupe_key == key)):
            continue
        body = json.dumps(
            {
                "id": str(uuid.uuid4()),
                "event": event,
                "created": _iso(now),
                "data": {"practice_id": practice_id, **payload},
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        delivery = WebhookDelivery(
            endpoint_id=endpoint.id,
            dedupe_key=key,
            event=event,
            body=body,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            last_error="",
        )
        try:
            with session.begin_nested():
                session.add(delivery)
        except IntegrityError:
            continue  # another transaction queued the same fact first
        written += 1
    return written


def signature(secret: str, timestamp: int, body: str) -> str:
    """The header value for a body sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff(attempts: int, settings: Settings) -> dt.timedelta:
    seconds = settings.WEBHOOK_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return min(dt.timedelta(seconds=seconds), BACKOFF_CAP)


def claim_due(session: Session, now: dt.datetime, limit: int) -> list[int]:
    """Flip up to `limit` due rows to SENDING (one UPDATE over a sub-select, SKIP LOCKED on
    PostgreSQL) and return their ids. The caller commits to publish the claim."""
    due = or_(
        and_(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
        ),
        and_(
            WebhookDelivery.status == DeliveryStatus.SENDING,
            WebhookDelivery.claimed_at <= now - CLAIM_TIMEOUT,
        ),
    )
    ids = (
        select(WebhookDelivery.id)
        .where(due)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if not is_sqlite(session.get_bind()):
        ids = ids.with_for_update(skip_locked=True)
    return list(
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids.scalar_subquery()))
            .values(
                status=DeliveryStatus.SENDING,
                claimed_at=now,
                attempts=WebhookDelivery.attempts + 1,
            )
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )


def post(url: str, body: str, secret: str, timestamp: int, timeout: int) -> str | None:
    """POST one delivery. Returns None on a 2xx answer, else a short error text."""
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "ptmatch-webhooks/1",
            SIGNATURE_HEADER: signature(secret, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            if 200 <= response.status < 300:
                return None
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code}"
    except (urllib.error.URLError, OSError, ValueError) as err:
        return type(err).__name__ + ": " + str(getattr(err, "reason", err))[:200]


def deliver_due(session: Session, now: dt.datetime, settings: Settings, limit: int = 50) -> int:
    """Claim, send and mark due deliveries. Like the mail outbox this job commits itself:
    the claim, then one short transaction per mark, and no transaction open while a
    receiver is slow. Returns the number delivered."""
    claimed = claim_due(session, now, limit)
    work = []
    if claimed:
        work = session.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.attempts,
                WebhookDelivery.body,
                WebhookEndpoint.url,
                WebhookEndpoint.secret,
                WebhookEndpoint.disabled_at,
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id.in_(claimed))
            .order_by(WebhookDelivery.id)
        ).all()
    session.commit()
    sent = 0
    for row in work:
        if row.disabled_at is not None:
            error = "endpoint removed"
        else:
            error = post(
                row.url, row.body, row.secret, int(now.timestamp()), settings.WEBHOOK_TIMEOUT
            )
        if error is None:
            values = {"status": DeliveryStatus.SENT, "sent_at": now, "last_error": ""}
            sent += 1
        elif row.attempts >= settings.WEBHOOK_MAX_ATTEMPTS or row.disabled_at is not None:
            values = {"status": DeliveryStatus.DEAD, "last_error": error[:500]}
            log.warning("webhook delivery %s dead after %s attempts", row.id, row.attempts)
        else:
            values = {
                "status": DeliveryStatus.PENDING,
                "next_attempt_at": now + backoff(row.attempts, settings),
                "last_error": error[:500],
            }
        session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == row.id,
                WebhookDelivery.status == DeliveryStatus.SENDING,
                WebhookDelivery.claimed_at == now,
            )
            .values(claimed_at=None, **values)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return sent
