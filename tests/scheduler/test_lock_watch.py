"""Issue 16: the active scheduler re-checks its lock every few seconds and stops its jobs at once
when the lock is lost: the advisory lock's connection terminated (PostgreSQL), or the lock file
removed (SQLite). A lost lock stops the jobs within 10 s."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from sqlalchemy import text

from ptmatch.clock import pause
from ptmatch.db import make_engine, make_session_factory
from ptmatch.scheduler.jobs import Job
from ptmatch.scheduler.lock import SchedulerLock
from ptmatch.scheduler.runner import run_while_held

LIMIT = 10.0  # seconds from losing the lock to the last job run


class Ticks:
    def __init__(self) -> None:
        self.times: list[float] = []

    def job(self, session, now, settings) -> int:
        self.times.append(time.monotonic())
        return 1


def _run_and_lose(settings, sessions, lock, lose) -> tuple[Ticks, float, float]:
    """Run a 1-second job under `lock`; once it has ticked, `lose()` the lock. Returns the ticks,
    when the lock was lost, and when run_while_held returned."""
    ticks = Ticks()
    settings = dataclasses.replace(settings, SCHEDULER_LOCK_CHECK_SECONDS=1)
    stop = threading.Event()
    runner = threading.Thread(
        target=run_while_held,
        args=(settings, sessions, lock, [Job("tick", ticks.job, None, 1)], stop),
    )
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while len(ticks.times) < 2:
            assert time.monotonic() < deadline, "the job never ran"
            pause(0.05)
        assert lock.still_held()
        lost_at = time.monotonic()
        lose()
        runner.join(LIMIT + 5)
        returned_at = time.monotonic()
        assert not runner.is_alive(), "the scheduler kept running after losing its lock"
    finally:
        stop.set()
        runner.join(10)
    pause(2.5)  # would a job still tick after the runner returned?
    return ticks, lost_at, returned_at


@pytest.mark.postgres
def test_terminated_advisory_lock_stops_the_jobs_within_10_s(settings, engine, sessions):
    lock = SchedulerLock(engine, settings.SCHEDULER_LOCK_FILE)
    assert lock.try_acquire()
    pid = lock.backend_pid()

    def terminate():
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()

    try:
        ticks, lost_at, returned_at = _run_and_lose(settings, sessions, lock, terminate)
        assert returned_at - lost_at <= LIMIT
        assert max(ticks.times) - lost_at <= LIMIT
        assert not lock.still_held()
        # The standby (any other connection) can take the lock now.
        standby = SchedulerLock(engine, settings.SCHEDULER_LOCK_FILE)
        assert standby.try_acquire()
        standby.release()
    finally:
        lock.release()


def test_removed_lock_file_stops_the_jobs_within_10_s(settings, tmp_path):
    sqlite_url = "sqlite:///" + str(tmp_path / "lockwatch.sqlite")
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine, settings)
    lock_file = tmp_path / "scheduler.lock"
    lock = SchedulerLock(engine, str(lock_file))
    assert lock.try_acquire()
    try:
        ticks, lost_at, returned_at = _run_and_lose(settings, sessions, lock, lock_file.unlink)
        assert returned_at - lost_at <= LIMIT
        assert max(ticks.times) - lost_at <= LIMIT
        assert not lock.still_held()
    finally:
        lock.release()
        engine.dispose()


def test_a_held_lock_keeps_the_jobs_running(settings, tmp_path):
    engine = make_engine("sqlite:///" + str(tmp_path / "held.sqlite"))
    lock = SchedulerLock(engine, str(tmp_path / "scheduler.lock"))
    assert lock.try_acquire()
    ticks, stop = Ticks(), threading.Event()
    fast = dataclasses.replace(settings, SCHEDULER_LOCK_CHECK_SECONDS=1)
    sessions = make_session_factory(engine, settings)
    runner = threading.Thread(
        target=run_while_held, args=(fast, sessions, lock, [Job("t", ticks.job, None, 1)], stop)
    )
    runner.start()
    pause(3.5)
    assert runner.is_alive() and len(ticks.times) >= 3
    stop.set()
    runner.join(10)
    lock.release()
    engine.dispose()
