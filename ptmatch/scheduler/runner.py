"""The scheduler process: APScheduler interval jobs, each in its own session and commit."""

from __future__ import annotations

import logging
import time

from ptmatch import clock
from ptmatch.config import Settings
from ptmatch.db import make_engine, make_session_factory
from ptmatch.domain.passwords import use_settings as apply_process_settings
from ptmatch.scheduler.jobs import Job, all_jobs
from ptmatch.scheduler.lock import SchedulerLock
from ptmatch.scheduler.wakeup import OutboxSender

log = logging.getLogger("ptmatch.scheduler")


def run_job(sessions, job: Job, settings: Settings, now=None) -> int:
    """Run one job in its own transaction; a failure rolls back and is logged, not raised."""
    with sessions() as session:
        try:
            count = job.func(session, now or clock.now(), settings)
            session.commit()
            return count or 0
        except Exception:
            session.rollback()
            log.exception("job %s failed", job.name)
            return 0


def run_once(settings: Settings) -> dict[str, int]:
    engine = make_engine(settings.DATABASE_URL)
    sessions = make_session_factory(engine, settings)
    return {job.name: run_job(sessions, job, settings) for job in all_jobs()}


def run(settings: Settings, standby_poll_seconds: float = 5.0) -> None:
    from apscheduler.schedulers.blocking import BlockingScheduler

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s scheduler %(levelname)s %(message)s"
    )
    apply_process_settings(settings)
    engine = make_engine(settings.DATABASE_URL)
    sessions = make_session_factory(engine, settings)
    lock = SchedulerLock(engine, settings.SCHEDULER_LOCK_FILE)
    announced = False
    while not lock.try_acquire():
        if not announced:
            log.info("another scheduler is active; standing by")
            announced = True
        time.sleep(standby_poll_seconds)
    log.info("scheduler active")
    scheduler = BlockingScheduler(timezone="UTC")
    jobs = all_jobs()
    # The outbox has a loop of its own: woken by NOTIFY at commit (PostgreSQL), polling
    # besides (ptmatch.scheduler.wakeup).
    outbox_job = next(job for job in jobs if job.name == "outbox")
    sender = OutboxSender(settings, lambda: run_job(sessions, outbox_job, settings)).start()
    for job in jobs:
        if job is outbox_job:
            continue
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
        sender.stop()
        lock.release()
