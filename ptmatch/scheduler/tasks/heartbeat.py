"""The scheduler's heartbeat: a row written every HEARTBEAT_SECONDS (read by /readyz)."""

from __future__ import annotations

from ptmatch.ops.heartbeat import heartbeat_job
from ptmatch.scheduler.jobs import Job

JOBS = [Job("heartbeat", heartbeat_job, "HEARTBEAT_SECONDS", 5)]
