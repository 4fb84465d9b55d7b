"""The nightly backup: when BACKUP_DIR is set, once a day after BACKUP_HOUR, then retention."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from ptmatch.config import Settings
from ptmatch.ops import backup
from ptmatch.scheduler.jobs import Job

log = logging.getLogger("ptmatch.backup")


def nightly_backup(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Runs every 10 minutes and does something at most once a day. Its own connections:
    the job's session stays unused."""
    return 1 if backup.nightly(settings, now, log.info) else 0


JOBS = [Job("backup", nightly_backup, default_seconds=600)]
