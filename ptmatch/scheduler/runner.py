"""The scheduler process: APScheduler interval jobs, each in its own session and commit."""

from __future__ import annotations

import logging
import threading
import time

from ptmatch import clock
from ptmatch.config import Settings
from ptmatch.db import make_engine, make_session_factory
from ptmatch.domain.passwords import use_settings as apply_process_settings
from ptmatch.ops import heartbeat, logs, metrics
from ptmatch.scheduler.jobs import Job, all_jobs
from ptmatch.scheduler.lock import SchedulerLock
from ptmatch.scheduler.wakeup import OutboxSender

log = logging.getLogger("ptmatch.scheduler")


def run_job(sessions, job: Job, settings: Settings, now=None) -> int:
    """Run one job in its own transaction; a failure rolls back and is logged, not raised.
    A successful run also records itself (`job:<name>` row, read by /metrics)."""
    started = time.monotonic()
    with sessions() as session:
        try:
            now = now or clock.now()
            count = job.func(session, now, settings) or 0
            heartbeat.job_ran(session, job.name, now, count)
            session.commit()
        except Exception:
            session.rollback()
            log.exception("job %s failed", job.name)
            count = None
    if settings.LOG_JSON:
        logs.log_job(
            job=job.name, ok=count is not None, count=count or 0, seconds=time.monotonic() - started
        )
    return count or 0


def run_once(settings: Settings) -> dict[str, int]:
    engine = make_engine(settings.DATABASE_URL)
    sessions = make_session_factory(engine, settings)
    metrics.watch(sessions)
    return {job.name: run_job(sessions, job, settings) for job in all_jobs()}


def run(settings: Settings, standby_poll_seconds: float = 5.0) -> None:
    """The scheduler process: stand by until the lock is ours, run the jobs while it stays
    ours, and go back to standing by the moment it is lost."""
    if settings.LOG_JSON:
        logs.use_json_logs()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s scheduler %(levelname)s %(message)s"
    )
    apply_process_settings(settings)
    engine = make_engine(settings.DATABASE_URL)
    sessions = make_session_factory(engine, settings)
    metrics.watch(sessions)
    lock = SchedulerLock(engine, settings.SCHEDULER_LOCK_FILE)
    try:
        while True:
            wait_for_lock(lock, standby_poll_seconds)
            log.info("scheduler active")
            try:
                run_while_held(settings, sessions, lock)
            finally:
                lock.release()
            log.warning("scheduler lock lost: jobs stopped; standing by")
    except (KeyboardInterrupt, SystemExit):
        pass


def wait_for_lock(lock: SchedulerLock, poll_seconds: float) -> None:
    announced = False
    while not lock.try_acquire():
        if not announced:
            log.info("another scheduler is active; standing by")
            announced = True
        clock.pause(poll_seconds)


def run_while_held(
    settings: Settings,
    sessions,
    lock: SchedulerLock,
    jobs: list[Job] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run the jobs until the lock is lost (checked every SCHEDULER_LOCK_CHECK_SECONDS) or
    `stop` is set. On loss no job starts any more: the scheduled ones are removed, and a job
    that was already waiting for its turn finds the fence down and does nothing."""
    from apscheduler.schedulers.background import BackgroundScheduler

    stop = stop or threading.Event()
    held = threading.Event()
    held.set()
    scheduler = BackgroundScheduler(timezone="UTC")
    jobs = jobs if jobs is not None else all_jobs()
    # The outbox has a loop of its own: woken by NOTIFY at commit (PostgreSQL), polling
    # besides (ptmatch.scheduler.wakeup); fenced like every job.
    outbox_job = next((job for job in jobs if job.name == "outbox"), None)
    sender = (
        OutboxSender(settings, lambda: _fenced(held, sessions, outbox_job, settings)).start()
        if outbox_job is not None
        else None
    )
    for job in jobs:
        if job is outbox_job:
            continue
        scheduler.add_job(
            _fenced,
            "interval",
            seconds=job.interval(settings),
            args=[held, sessions, job, settings],
            id=job.name,
            max_instances=1,
            coalesce=True,
            # APScheduler runs on real time, not business time (frozen in tests): start now.
            next_run_time=clock.SystemClock().now(),
        )
    scheduler.start()
    try:
        while not stop.wait(settings.SCHEDULER_LOCK_CHECK_SECONDS):
            if not lock.still_held():
                break
    finally:
        held.clear()
        if sender is not None:
            sender.stop()
        scheduler.remove_all_jobs()
        scheduler.shutdown(wait=False)


def _fenced(held: threading.Event, sessions, job: Job, settings: Settings) -> int:
    if not held.is_set():  # the lock was lost after this run was queued
        return 0
    return run_job(sessions, job, settings)
