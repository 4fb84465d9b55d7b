"""/readyz: may this instance take traffic? The database answers, the schema is at the
Alembic head, and the scheduler's heartbeat is fresh. Each check is named, so a 503 says
which one failed. Details hold no personal data (they are shown to anyone who asks)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.orm import Session

from ptmatch.config import Settings
from ptmatch.migrate import alembic_config
from ptmatch.ops import heartbeat


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@functools.cache
def code_heads() -> frozenset[str]:
    """The Alembic head(s) this code expects (read once: the files do not change at runtime)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def schema_heads(connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


def checks(session: Session, settings: Settings, now: dt.datetime) -> list[Check]:
    """All readiness checks, in the caller's session (read only); stops after the database
    check if the database does not answer."""
    try:
        session.execute(text("SELECT 1"))
        at = schema_heads(session.connection())
    except Exception as err:  # any driver error means: not ready
        session.rollback()
        return [Check("database", False, type(err).__name__)]
    result = [Check("database", True)]
    want = code_heads()
    result.append(
        Check(
            "schema",
            at == want,
            "at head"
            if at == want
            else f"database at {sorted(at) or 'none'}, code at {sorted(want)}",
        )
    )
    try:
        age = heartbeat.scheduler_age(session, now)
    except Exception as err:
        result.append(Check("scheduler", False, type(err).__name__))
        return result
    limit = settings.HEARTBEAT_STALE_SECONDS
    if age is None:
        result.append(Check("scheduler", False, "no heartbeat yet"))
    else:
        result.append(
            Check("scheduler", age <= limit, f"last heartbeat {age:.0f} s ago (limit {limit} s)")
        )
    return result
