"""The scheduler's heartbeat and the last run of each job, as rows (`SchedulerBeat`).

The active scheduler writes `scheduler` every HEARTBEAT_SECONDS (the `heartbeat` job) and
`job:<name>` in the transaction of each successful job run. /readyz and /metrics read them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ptmatch.config import Settings
from ptmatch.db import is_sqlite
from ptmatch.models.ops import JOB_PREFIX, SCHEDULER_BEAT, SchedulerBeat


def beat(session: Session, name: str, now: dt.datetime, count: int = 0) -> None:
    """Upsert the row `name` (one statement: two writers never collide on the insert)."""
    dialect = sqlite if is_sqlite(session.get_bind()) else postgresql
    stmt = dialect.insert(SchedulerBeat).values(name=name, at=now, count=count)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[SchedulerBeat.name], set_={"at": now, "count": count}
        )
    )


def heartbeat_job(session: Session, now: dt.datetime, settings: Settings) -> int:
    """The `heartbeat` job: the active scheduler is alive."""
    beat(session, SCHEDULER_BEAT, now)
    return 1


def job_ran(session: Session, job_name: str, now: dt.datetime, count: int) -> None:
    """Record a successful run of a job, in the job's own transaction."""
    beat(session, JOB_PREFIX + job_name, now, count)


def last_beats(session: Session) -> dict[str, dt.datetime]:
    """name -> time of the last beat."""
    return dict(session.execute(select(SchedulerBeat.name, SchedulerBeat.at)).all())


def scheduler_age(session: Session, now: dt.datetime) -> float | None:
    """Seconds since the scheduler's last heartbeat (None: it never beat)."""
    at = session.scalar(select(SchedulerBeat.at).where(SchedulerBeat.name == SCHEDULER_BEAT))
    return None if at is None else (now - at).total_seconds()


def job_ages(session: Session, now: dt.datetime) -> dict[str, float]:
    """Job name -> seconds since its last successful run."""
    return {
        name[len(JOB_PREFIX) :]: (now - at).total_seconds()
        for name, at in last_beats(session).items()
        if name.startswith(JOB_PREFIX)
    }
