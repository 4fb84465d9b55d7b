"""Security chores (issue 16): reset mails out of band, and forgetting old abuse counters."""

from __future__ import annotations

from ptmatch.domain.accounts import send_reset_mails
from ptmatch.domain.throttle import purge
from ptmatch.scheduler.jobs import Job

JOBS = [
    Job("reset_mails", send_reset_mails, seconds_setting="OUTBOX_SECONDS"),
    Job("throttle_purge", purge, default_seconds=3600),
]
