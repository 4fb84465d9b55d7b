"""Abuse throttles (issue 16): request rate limits and failed-login delays, kept in the database.

Both hold across gunicorn workers and hosts because every decision is one conditional upsert
(INSERT ... ON CONFLICT DO UPDATE ... RETURNING) on a row of the app's own database: two workers
counting the same key at once are serialised by the row, and neither can lose the other's hit.

- Rate limits count requests of one kind (registration, login, ...) per client address in a
  window that starts with the first request and restarts when it has run out.
- Failed logins are counted per client address and per (login name, client address). After the
  free failures, the next attempt of that key waits BASE * 2^(extra failures), up to a maximum.
  Keying the per-account throttle on the pair means one client can only delay itself: it cannot
  lock somebody else out of their account for long. The login name is hashed, and counted whether
  or not an account exists, so a throttle says nothing an unknown address wouldn't.

Security records: callers commit them even when the request itself fails.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ptmatch.config import Settings
from ptmatch.models import LoginThrottle, RateCounter


def _insert(session: Session, model):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


# --- request rate limits ----------------------------------------------------------------------


def count_request(
    session: Session, now: dt.datetime, kind: str, client: str, limit: int, window_seconds: int
) -> bool:
    """Count one request of `kind` from `client`; False when it is over the limit."""
    key = f"{kind}:{client}"[:200]
    ins = _insert(session, RateCounter).values(key=key, window_start=now, count=1)
    expired = RateCounter.window_start <= now - dt.timedelta(seconds=window_seconds)
    stmt = ins.on_conflict_do_update(
        index_elements=[RateCounter.key],
        set_={
            "count": case((expired, 1), else_=RateCounter.count + 1),
            "window_start": case(
                (expired, ins.excluded.window_start), else_=RateCounter.window_start
            ),
        },
    ).returning(RateCounter.count)
    count = session.execute(stmt).scalar_one()
    return count <= limit


def purge(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Forget counters that can no longer matter (a scheduler job)."""
    old_window = now - dt.timedelta(seconds=max(settings.RATE_LIMIT_WINDOW_SECONDS, 3600))
    old_failure = now - dt.timedelta(hours=settings.THROTTLE_FORGET_HOURS)
    gone = session.execute(delete(RateCounter).where(RateCounter.window_start < old_window))
    gone2 = session.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.last_failed_at < old_failure)
        .where((LoginThrottle.blocked_until.is_(None)) | (LoginThrottle.blocked_until < now))
    )
    return gone.rowcount + gone2.rowcount


# --- failed logins ------------------------------------------------------------------------------


def login_hash(login: str) -> str:
    """The throttle's name for a login: a hash of the address as typed (trimmed, lower-cased)."""
    return hashlib.sha256((login or "").strip().lower().encode("utf-8", "replace")).hexdigest()


def login_keys(login: str, client: str, settings: Settings) -> list[tuple[str, str, int]]:
    """(key, login hash, free failures) of the two throttles an attempt counts toward."""
    name = login_hash(login)
    return [
        (f"pair:{name}:{client}"[:200], name, settings.THROTTLE_PAIR_FREE_FAILURES),
        (f"client:{client}"[:200], "", settings.THROTTLE_CLIENT_FREE_FAILURES),
    ]


def blocked_until(
    session: Session, now: dt.datetime, keys: list[tuple[str, str, int]]
) -> dt.datetime | None:
    """When the latest block of these keys ends, or None if none is blocked now."""
    until = session.scalar(
        select(func.max(LoginThrottle.blocked_until))
        .where(LoginThrottle.key.in_([k for k, _name, _free in keys]))
        .where(LoginThrottle.blocked_until > now)
    )
    return until


def delay_after(failures: int, free: int, settings: Settings) -> dt.timedelta | None:
    """The wait imposed after `failures` failures, or None while they are free."""
    extra = failures - free
    if extra < 0:
        return None
    seconds = settings.THROTTLE_BASE_SECONDS * 2 ** min(extra, 30)
    return dt.timedelta(seconds=min(seconds, settings.THROTTLE_MAX_SECONDS))


def register_failure(
    session: Session, now: dt.datetime, keys: list[tuple[str, str, int]], settings: Settings
) -> None:
    """Count one failure toward each key, and block it when its free failures are spent."""
    stale = LoginThrottle.last_failed_at < now - dt.timedelta(hours=settings.THROTTLE_FORGET_HOURS)
    for key, name, free in keys:
        ins = _insert(session, LoginThrottle).values(
            key=key, login=name, failures=1, last_failed_at=now
        )
        stmt = ins.on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "failures": case((stale, 1), else_=LoginThrottle.failures + 1),
                "last_failed_at": ins.excluded.last_failed_at,
            },
        ).returning(LoginThrottle.failures)
        failures = session.execute(stmt).scalar_one()
        wait = delay_after(failures, free, settings)
        if wait is not None:
            row = session.get(LoginThrottle, key, populate_existing=True)
            row.blocked_until = now + wait
    session.flush()


def clear_pair(session: Session, login: str, client: str) -> None:
    """A full login succeeded: this client's failures for this login are forgiven."""
    name = login_hash(login)
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == f"pair:{name}:{client}"[:200]))


def clear_login(session: Session, login: str) -> None:
    """A reset mail was used: every client's delay for this login ends."""
    session.execute(delete(LoginThrottle).where(LoginThrottle.login == login_hash(login)))
