"""The "still looking?" job: check-in mails, pause after silence, purge after a long pause."""

from __future__ import annotations

from ptmatch.domain.checkins import run_checkins
from ptmatch.scheduler.jobs import Job

JOBS = [Job("checkins", run_checkins, default_seconds=3600)]
