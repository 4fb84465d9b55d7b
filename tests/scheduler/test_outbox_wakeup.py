"""Issue 17: the outbox sender wakes on the commit that wrote a mail (PostgreSQL LISTEN /
NOTIFY), and polls besides, so a lost notification only delays a mail to the next poll."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import insert, text

from ptmatch.clock import pause
from ptmatch.models import OutboxMessage, OutboxStatus
from ptmatch.scheduler.jobs import all_jobs
from ptmatch.scheduler.runner import run_job
from ptmatch.scheduler.wakeup import OutboxSender, Waker, listen, poll_seconds
from tests.conftest import NOW
from tests.factories import make_user
from tests.notifications.helpers import enqueue_mail, fresh


def _job():
    return next(job for job in all_jobs() if job.name == "outbox")


def _wait_sent(session, row_id: int, seconds: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if fresh(session, row_id).status == OutboxStatus.SENT:
            return time.monotonic() - started
        pause(0.05)
    return None


def _raw_row(session, key: str) -> int:
    """An outbox row written without enqueue(), so without NOTIFY: a lost notification."""
    user = make_user(session)
    return session.execute(
        insert(OutboxMessage)
        .values(
            dedupe_key=key,
            kind="offer",
            user_id=user.id,
            to_addr=user.email,
            locale="de",
            subject="s",
            body_text="t",
            body_html="",
            message_id=f"<{key}@ptmatch.test>",
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=NOW,
            created_at=NOW,
            last_error="",
        )
        .returning(OutboxMessage.id)
    ).scalar_one()


def test_the_poll_is_one_second_on_sqlite_and_the_fallback_on_postgresql(settings):
    assert poll_seconds(replace(settings, DATABASE_URL="sqlite:///x.db")) == 1
    pg = replace(settings, DATABASE_URL="postgresql+psycopg://u@h/db", OUTBOX_SECONDS=5)
    assert poll_seconds(pg) == 5


def test_a_lost_notification_is_delivered_by_the_poll(sessions, session, settings):
    """No notification at all (the row was written behind enqueue's back): the poll sends it."""
    row_id = _raw_row(session, "lost:1")
    session.commit()
    settings = replace(settings, OUTBOX_SECONDS=1, OUTBOX_SQLITE_SECONDS=1)
    sender = OutboxSender(settings, lambda: run_job(sessions, _job(), settings))
    sender.threads = sender.threads[:1]  # the sender loop only: no listener, nothing wakes it
    sender.start()
    try:
        took = _wait_sent(session, row_id, 10)
    finally:
        sender.stop()
    assert took is not None
    assert sender.waker.woken == 1  # only stop() woke it: the poll did the work


@pytest.mark.postgres
def test_a_commit_that_enqueued_wakes_the_listener_and_a_rollback_does_not(
    session, settings, database_url
):
    waker, stop = Waker(), threading.Event()
    thread = threading.Thread(
        target=listen, args=(database_url, waker, stop), kwargs={"tick": 0.1}, daemon=True
    )
    thread.start()
    try:
        assert waker.wait(10)  # the first wake-up: listening now
        user = make_user(session)
        session.commit()
        enqueue_mail(session, user=user, key="rolled:1")
        session.rollback()
        assert not waker.wait(1.0)
        enqueue_mail(session, user=make_user(session), key="kept:1")
        enqueue_mail(session, user=make_user(session), key="kept:2")
        assert not waker.wait(0.5)  # nothing before the commit
        session.commit()
        assert waker.wait(5)
    finally:
        stop.set()
        thread.join(5)


@pytest.mark.postgres
def test_the_sender_delivers_at_once_on_notify_not_at_the_poll(sessions, session, settings):
    settings = replace(settings, OUTBOX_SECONDS=600)  # the poll would take ten minutes
    sender = OutboxSender(settings, lambda: run_job(sessions, _job(), settings)).start()
    try:
        pause(1.5)  # listening (and the first run after connecting is done)
        row = enqueue_mail(session, user=make_user(session), key="notify:1")
        session.commit()
        took = _wait_sent(session, row.id, 10)
    finally:
        sender.stop()
    assert took is not None and took < 5


@pytest.mark.postgres
def test_the_listener_reconnects_and_catches_up(sessions, session, settings, database_url):
    settings = replace(settings, OUTBOX_SECONDS=600)
    waker, stop = Waker(), threading.Event()
    thread = threading.Thread(
        target=listen,
        args=(database_url, waker, stop),
        kwargs={"tick": 0.1, "retry_seconds": 0.2},
        daemon=True,
    )
    thread.start()
    try:
        assert waker.wait(10)
        session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN ptmatch_outbox%' AND pid <> pg_backend_pid()"
            )
        )
        session.commit()
        assert waker.wait(10)  # reconnected: woken once for whatever came meanwhile
        enqueue_mail(session, user=make_user(session), key="after:1")
        session.commit()
        assert waker.wait(5)
    finally:
        stop.set()
        thread.join(5)
