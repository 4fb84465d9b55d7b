"""Outbox delivery job: every OUTBOX_SECONDS, send what is due (SMTP, or .eml files in
development)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from ptmatch import clock
from ptmatch.config import Settings
from ptmatch.notifications.delivery import deliver_due
from ptmatch.scheduler.jobs import Job

log = logging.getLogger("ptmatch.outbox")
_warned = False


def deliver_outbox(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Deliver due mails. Commits its own claims and marks (see ptmatch.notifications.delivery)."""
    global _warned
    if settings.ENV == "production" and not settings.SMTP_HOST and not _warned:
        log.warning(
            "SMTP_HOST is empty: mails are written to %s instead of being sent", settings.MAIL_DIR
        )
        _warned = True
    # The real clock (frozen in tests) stamps claims and renews their lease during the run.
    return deliver_due(session, now, settings, clock=clock.now)


JOBS = [Job("outbox", deliver_outbox, "OUTBOX_SECONDS", 5)]
