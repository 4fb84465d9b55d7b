"""Operations: the scheduler's heartbeat and the last run of each job, one row per name.

Rows, not log lines, so /readyz and /metrics on any web host can read them. Names:
`scheduler` (the active scheduler, every HEARTBEAT_SECONDS) and `job:<job name>` (the last
successful run of that job). No personal data.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ptmatch.db import Base, UTCDateTime

SCHEDULER_BEAT = "scheduler"
JOB_PREFIX = "job:"


class SchedulerBeat(Base):
    __tablename__ = "scheduler_beats"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)  # what the last run did
