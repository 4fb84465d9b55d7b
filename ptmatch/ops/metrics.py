"""Prometheus metrics. Labels never carry personal data: only event kinds, job names,
endpoint names (the view, never the path: paths carry tokens), methods and status codes.

- Counters move on committed events (`ptmatch.db.note_event`: every audit action, plus
  "mail.sent"/"mail.dead" from the outbox), wherever they happen: web workers and the
  scheduler. Under gunicorn (and for the scheduler on the same host) set
  PROMETHEUS_MULTIPROC_DIR to one empty directory for all processes: prometheus_client then
  keeps the values in files and /metrics adds them up.
- Gauges are read from the database at scrape time, so every web host reports the same:
  outbox depth and oldest pending mail, dead mails, open offers, seconds since each job ran.
- A request-latency histogram per endpoint.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ptmatch.db import publish_events_on_commit
from ptmatch.models import Offer, OfferStatus, OutboxMessage, OutboxStatus
from ptmatch.ops import heartbeat

CONTENT_TYPE = CONTENT_TYPE_LATEST

# event noted on commit -> counter (name without the _total suffix, help)
_COUNTED = {
    "slot.posted": ("ptmatch_slots_posted", "Slots posted"),
    "offer.sent": ("ptmatch_offers_sent", "Offers sent (slot and group offers)"),
    "offer.accepted": ("ptmatch_offers_accepted", "Offers accepted"),
    "offer.taken": ("ptmatch_offers_taken", "Offers closed because another patient was faster"),
    "offer.declined": ("ptmatch_offers_declined", "Offers declined"),
    "offer.expired": ("ptmatch_offers_expired", "Offers expired unanswered"),
    "booking.created": ("ptmatch_bookings", "Bookings made"),
    "mail.sent": ("ptmatch_mails_sent", "Mails delivered"),
    "mail.dead": ("ptmatch_mails_dead", "Mails given up (dead)"),
    "account.login": ("ptmatch_logins", "Successful logins"),
    "account.locked": ("ptmatch_lockouts", "Accounts locked after failed logins"),
}
COUNTERS: dict[str, Counter] = {
    event: Counter(name, help_text) for event, (name, help_text) in _COUNTED.items()
}
REQUEST_SECONDS = Histogram(
    "ptmatch_request_seconds",
    "Request latency per endpoint",
    ["endpoint", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def count_events(names: Iterable[str]) -> None:
    for name in names:
        counter = COUNTERS.get(name)
        if counter is not None:
            counter.inc()


def watch(sessions: sessionmaker[Session]) -> None:
    """Count the events of every committed transaction of sessions made by `sessions`."""
    publish_events_on_commit(sessions, count_events)


def observe_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(endpoint or "none", method, str(status)).observe(seconds)


class DatabaseGauges:
    """A collector that reads the gauges from the database when scraped."""

    def __init__(self, session: Session, now: dt.datetime):
        self.session = session
        self.now = now

    def collect(self):
        yield from gauges(self.session, self.now)


def gauges(session: Session, now: dt.datetime) -> list[GaugeMetricFamily]:
    waiting = (OutboxStatus.PENDING, OutboxStatus.SENDING)
    by_status = dict(
        session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    )
    oldest = session.scalar(
        select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status.in_(waiting))
    )
    open_offers = session.scalar(
        select(func.count()).select_from(Offer).where(Offer.status == OfferStatus.PENDING)
    )
    depth = GaugeMetricFamily("ptmatch_outbox_queue_depth", "Mails waiting to be sent")
    depth.add_metric([], sum(by_status.get(s, 0) for s in waiting))
    dead = GaugeMetricFamily("ptmatch_outbox_dead", "Dead mails in the outbox now")
    dead.add_metric([], by_status.get(OutboxStatus.DEAD, 0))
    age = GaugeMetricFamily(
        "ptmatch_outbox_oldest_pending_seconds", "Age of the oldest mail waiting (0: none)"
    )
    age.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    offers = GaugeMetricFamily("ptmatch_open_offers", "Offers waiting for an answer")
    offers.add_metric([], open_offers or 0)
    beat = GaugeMetricFamily(
        "ptmatch_scheduler_heartbeat_age_seconds",
        "Seconds since the active scheduler's heartbeat (absent: never)",
    )
    scheduler_age = heartbeat.scheduler_age(session, now)
    if scheduler_age is not None:
        beat.add_metric([], scheduler_age)
    jobs = GaugeMetricFamily(
        "ptmatch_job_last_run_age_seconds",
        "Seconds since each scheduler job last ran successfully",
        labels=["job"],
    )
    for name, seconds in sorted(heartbeat.job_ages(session, now).items()):
        jobs.add_metric([name], seconds)
    return [depth, dead, age, offers, beat, jobs]


def exposition(session: Session, now: dt.datetime) -> bytes:
    """The /metrics page: this process's (or, in multiprocess mode, all processes')
    counters and histogram, then the database gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        base = CollectorRegistry()
        multiprocess.MultiProcessCollector(base)
    else:
        base = REGISTRY
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseGauges(session, now))
    return generate_latest(base) + generate_latest(database)
