"""The practice API's own rules: keys (created, shown once, revoked, checked), webhook
endpoints, re-sending a delivery, and idempotent requests. What the API *does* with slots and
bookings is the domain's usual functions (`offers.post_slot`, `offers.cancel_slot`, ...):
one rule, two doors."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import secrets
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ptmatch.catalog import N_
from ptmatch.config import Settings
from ptmatch.domain import access, audit
from ptmatch.domain.errors import InvalidInput, NotAllowed, NotFound
from ptmatch.models import (
    ApiIdempotency,
    ApiKey,
    DeliveryStatus,
    Therapist,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)

SCOPES = ("slots:read", "slots:write", "bookings:read", "bookings:write", "stats:read")
KEY_PREFIX = "ptm_"
MAX_KEYS = 20
MAX_ENDPOINTS = 5


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _require_admin(session: Session, actor: User | None) -> int:
    practice_id = access.api_admin_practice_id(session, actor)
    if practice_id is None:
        raise NotAllowed(N_("Schnittstellen-Schlüssel verwaltet eine Therapeutin der Praxis."))
    return practice_id


# --- keys --------------------------------------------------------------------------------------


def create_key(
    session: Session, now: dt.datetime, actor: User | None, name: str, scopes
) -> tuple[ApiKey, str]:
    """A new key for the actor's practice. Returns the row and the key itself, which is
    shown once and never stored."""
    practice_id = _require_admin(session, actor)
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise InvalidInput(N_("Bitte einen Namen mit höchstens 80 Zeichen angeben."), "name")
    chosen = sorted(set(scopes or ()))
    if not chosen or any(scope not in SCOPES for scope in chosen):
        raise InvalidInput(N_("Bitte mindestens eine Berechtigung wählen."), "scopes")
    active = session.scalars(
        select(ApiKey.id).where(ApiKey.practice_id == practice_id, ApiKey.revoked_at.is_(None))
    ).all()
    if len(active) >= MAX_KEYS:
        raise InvalidInput(N_("Höchstens 20 aktive Schlüssel je Praxis."), "name")
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
    key = ApiKey(
        practice_id=practice_id,
        created_by_id=actor.id,
        name=name,
        prefix=f"{KEY_PREFIX}{prefix}",
        key_hash=_hash(raw),
        scopes=" ".join(chosen),
        created_at=now,
    )
    session.add(key)
    session.flush()
    audit.record(session, now, "api.key_created", actor, practice_id=practice_id, api_key_id=key.id)
    return key, raw


def practice_keys(session: Session, actor: User | None) -> list[ApiKey]:
    practice_id = _require_admin(session, actor)
    return list(
        session.scalars(
            select(ApiKey).where(ApiKey.practice_id == practice_id).order_by(ApiKey.id.desc())
        )
    )


def revoke_key(session: Session, now: dt.datetime, actor: User | None, key_id: int) -> ApiKey:
    practice_id = _require_admin(session, actor)
    key = session.get(ApiKey, key_id)
    if key is None or key.practice_id != practice_id:
        raise NotFound(N_("Diesen Schlüssel gibt es nicht."))
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
        audit.record(
            session, now, "api.key_revoked", actor, practice_id=practice_id, api_key_id=key.id
        )
    return key


def authenticate(session: Session, now: dt.datetime, raw: str | None) -> ApiKey | None:
    """The active key for a presented secret, or None. Marks its last use (at most once a
    minute, so a busy key does not write on every call)."""
    if not raw or not raw.startswith(KEY_PREFIX) or len(raw) > 100:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == _hash(raw)))
    if key is None or key.revoked_at is not None:
        return None
    if key.last_used_at is None or now - key.last_used_at > dt.timedelta(minutes=1):
        key.last_used_at = now
    return key


def key_actor(session: Session, key: ApiKey, therapist: Therapist | None = None) -> User | None:
    """Who the key acts as: the slot's therapist (a key posts and cancels on behalf of the
    practice's therapists), or else the user who created it. Both must belong to the key's
    practice; the domain function then checks the rest as for the portal."""
    if therapist is not None:
        if therapist.practice_id != key.practice_id:
            return None
        return therapist.user
    user = session.get(User, key.created_by_id) if key.created_by_id else None
    if user is None or access.api_admin_practice_id(session, user) != key.practice_id:
        return None
    return user


def practice_therapists(session: Session, practice_id: int) -> list[Therapist]:
    """The approved therapists of a practice, for the API's list."""
    return list(
        session.scalars(
            select(Therapist)
            .where(Therapist.practice_id == practice_id, Therapist.approved_at.is_not(None))
            .order_by(Therapist.id)
        )
    )


# --- webhook endpoints ----------------------------------------------------------------------


def check_webhook_url(url: str, settings: Settings) -> str:
    """HTTPS only. Plain HTTP is allowed to a loopback address in development (for trying it
    out against a local receiver)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if len(url) > 500 or not parts.hostname or parts.username or parts.password:
        raise InvalidInput(N_("Bitte eine vollständige https://-Adresse angeben."), "url")
    if parts.scheme == "https":
        return url
    loopback = parts.hostname == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        pass
    if parts.scheme == "http" and loopback and settings.ENV == "development":
        return url
    raise InvalidInput(N_("Bitte eine vollständige https://-Adresse angeben."), "url")


def add_endpoint(
    session: Session, now: dt.datetime, actor: User | None, url: str, settings: Settings
) -> WebhookEndpoint:
    practice_id = _require_admin(session, actor)
    url = check_webhook_url(url, settings)
    count = len(
        session.scalars(
            select(WebhookEndpoint.id).where(
                WebhookEndpoint.practice_id == practice_id, WebhookEndpoint.disabled_at.is_(None)
            )
        ).all()
    )
    if count >= MAX_ENDPOINTS:
        raise InvalidInput(N_("Höchstens fünf Webhook-Adressen je Praxis."), "url")
    endpoint = WebhookEndpoint(
        practice_id=practice_id,
        url=url,
        secret="whsec_" + secrets.token_urlsafe(32),
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    audit.record(
        session, now, "api.webhook_added", actor, practice_id=practice_id, endpoint_id=endpoint.id
    )
    return endpoint


def practice_endpoints(session: Session, actor: User | None) -> list[WebhookEndpoint]:
    practice_id = _require_admin(session, actor)
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.practice_id == practice_id)
            .order_by(WebhookEndpoint.id.desc())
        )
    )


def remove_endpoint(
    session: Session, now: dt.datetime, actor: User | None, endpoint_id: int
) -> WebhookEndpoint:
    practice_id = _require_admin(session, actor)
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.practice_id != practice_id:
        raise NotFound(N_("Diese Webhook-Adresse gibt es nicht."))
    if endpoint.disabled_at is None:
        endpoint.disabled_at = now
        session.flush()
        audit.record(
            session,
            now,
            "api.webhook_removed",
            actor,
            practice_id=practice_id,
            endpoint_id=endpoint.id,
        )
    return endpoint


def recent_deliveries(
    session: Session, actor: User | None, limit: int = 50
) -> list[tuple[WebhookDelivery, WebhookEndpoint]]:
    practice_id = _require_admin(session, actor)
    return list(
        session.execute(
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookEndpoint.practice_id == practice_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        ).tuples()
    )


def resend_delivery(
    session: Session, now: dt.datetime, actor: User | None, delivery_id: int
) -> WebhookDelivery:
    """A dead (or failing) delivery goes out again with a fresh attempt count."""
    practice_id = _require_admin(session, actor)
    row = session.execute(
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id)
    ).first()
    if row is None or row[1].practice_id != practice_id:
        raise NotFound(N_("Diese Zustellung gibt es nicht."))
    delivery, endpoint = row
    if endpoint.disabled_at is not None:
        raise InvalidInput(N_("Die Webhook-Adresse ist entfernt."))
    if delivery.status in (DeliveryStatus.DEAD, DeliveryStatus.PENDING):
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = now
        delivery.claimed_at = None
        session.flush()
        audit.record(
            session,
            now,
            "api.webhook_resent",
            actor,
            practice_id=practice_id,
            delivery_id=delivery.id,
        )
    return delivery


# --- idempotent requests ----------------------------------------------------------------------


class IdempotencyConflict(Exception):
    """The key was used with another body (or its first request is still running)."""


def request_fingerprint(payload) -> str:
    return _hash(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str))


def replay(session: Session, practice_id: int, key: str, fingerprint: str) -> ApiIdempotency | None:
    """The stored answer for (practice, key), or None if the key is new. Raises
    IdempotencyConflict if the key was used with another body."""
    row = session.scalar(
        select(ApiIdempotency).where(
            ApiIdempotency.practice_id == practice_id, ApiIdempotency.key == key
        )
    )
    if row is None:
        return None
    if row.request_hash != fingerprint or row.response is None:
        raise IdempotencyConflict
    return row


def replay_row(session: Session, practice_id: int, key: str) -> ApiIdempotency:
    return session.scalar(
        select(ApiIdempotency).where(
            ApiIdempotency.practice_id == practice_id, ApiIdempotency.key == key
        )
    )


def claim_key(
    session: Session, now: dt.datetime, practice_id: int, key: str, fingerprint: str
) -> ApiIdempotency | None:
    """Reserve the key in this transaction (the unique constraint decides a race: a second
    request with the same key waits for the first to commit, then fails here). Returns the
    reservation, or None if another request holds the key."""
    row = ApiIdempotency(practice_id=practice_id, key=key, request_hash=fingerprint, created_at=now)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


def forget_old_keys(session: Session, now: dt.datetime, settings: Settings) -> int:
    cutoff = now - dt.timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    return session.execute(
        delete(ApiIdempotency).where(ApiIdempotency.created_at < cutoff)
    ).rowcount


# --- listing with a cursor ----------------------------------------------------------------------


def encode_cursor(start_at: dt.datetime, row_id: int) -> str:
    import base64

    raw = json.dumps([start_at.astimezone(dt.UTC).isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    import base64

    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        start, row_id = json.loads(raw)
        when = dt.datetime.fromisoformat(start)
        if when.tzinfo is None or not isinstance(row_id, int) or isinstance(row_id, bool):
            raise ValueError
        return when, row_id
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput(N_("Ungültiger Cursor."), "cursor") from None


def slot_page(
    session: Session,
    practice_id: int,
    *,
    start_from: dt.datetime | None,
    start_to: dt.datetime | None,
    status=None,
    cursor: str | None,
    limit: int,
):
    """A practice's slots by start time, `limit` at a time; returns (slots, next cursor)."""
    from sqlalchemy import and_, or_

    from ptmatch.models import Slot

    query = select(Slot).where(Slot.practice_id == practice_id)
    if start_from is not None:
        query = query.where(Slot.start_at >= start_from)
    if start_to is not None:
        query = query.where(Slot.start_at < start_to)
    if status is not None:
        query = query.where(Slot.status == status)
    if cursor:
        after, after_id = decode_cursor(cursor)
        query = query.where(
            or_(Slot.start_at > after, and_(Slot.start_at == after, Slot.id > after_id))
        )
    rows = list(session.scalars(query.order_by(Slot.start_at, Slot.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].start_at, rows[-1].id) if more else None


def booking_page(
    session: Session,
    practice_id: int,
    *,
    start_from: dt.datetime | None,
    start_to: dt.datetime | None,
    cursor: str | None,
    limit: int,
):
    """A practice's bookings by appointment time; returns ([(booking, slot, patient)], next)."""
    from sqlalchemy import and_, or_

    from ptmatch.models import Booking, Patient, Slot

    query = (
        select(Booking, Slot, Patient)
        .join(Slot, Slot.id == Booking.slot_id)
        .join(Patient, Patient.id == Booking.patient_id)
        .where(Slot.practice_id == practice_id)
    )
    if start_from is not None:
        query = query.where(Slot.start_at >= start_from)
    if start_to is not None:
        query = query.where(Slot.start_at < start_to)
    if cursor:
        after, after_id = decode_cursor(cursor)
        query = query.where(
            or_(Slot.start_at > after, and_(Slot.start_at == after, Booking.id > after_id))
        )
    rows = list(
        session.execute(query.order_by(Slot.start_at, Booking.id).limit(limit + 1)).tuples()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1][1].start_at, rows[-1][0].id) if more else None
