"""The scheduler process: APScheduler interval jobs, each in its own session and commit."""

from __future__ import annotations

import logging
import time

from ptmatch import clock
from ptmatch.config import Settings
from ptmatch.db import make_engine, make_session_factory
from ptmatch.domain.passwords import use_settings as apply_process_settings
from ptmatch.ops import heartbeat, logs, metrics
from ptmatch.scheduler.jobs import Job, all_jobs
from ptmatch.scheduler.lock import SchedulerLock

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
    from apscheduler.schedulers.blocking import BlockingScheduler

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
    announced = False
    while not lock.try_acquire():
        if not announced:
            log.info("another scheduler is active; standing by")
            announced = True
        time.sleep(standby_poll_seconds)
    log.info("scheduler active")
    scheduler = BlockingScheduler(timezone="UTC")
    for job in all_jobs():
        scheduler.add_job(
            run_job,
            "interval",
            seconds=job.interval(settings),
            args=[sessions, job, settings],
            id=job.name,
            max_instances=1,
            coalesce=True,
            next_run_time=clock.now(),
        )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        lock.release()
