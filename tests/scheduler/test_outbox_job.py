"""The outbox job in the scheduler: registered, interval from settings, delivers through the
runner."""

from __future__ import annotations

from dataclasses import replace

from ptmatch.models import OutboxStatus
from ptmatch.scheduler.jobs import all_jobs
from ptmatch.scheduler.runner import run_job
from tests.factories import make_user
from tests.notifications.helpers import SmtpServer, enqueue_mail, fresh


def _job():
    return next(job for job in all_jobs() if job.name == "outbox")


def test_job_is_registered_with_outbox_seconds(settings):
    assert _job().interval(replace(settings, OUTBOX_SECONDS=7)) == 7


def test_runner_delivers_to_mail_dir_without_smtp(
    sessions, session, now, settings, tmp_path, caplog
):
    row = enqueue_mail(session, now, user=make_user(session), key="job:1")
    session.commit()
    assert run_job(sessions, _job(), settings, now=now) == 1
    assert fresh(session, row.id).status == OutboxStatus.SENT
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    assert run_job(sessions, _job(), settings, now=now) == 0  # safe to run twice
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_runner_delivers_over_smtp_when_configured(sessions, session, now, settings):
    server = SmtpServer().start()
    try:
        row = enqueue_mail(session, now, user=make_user(session), key="job:smtp")
        session.commit()
        assert run_job(sessions, _job(), server.settings(settings), now=now) == 1
    finally:
        server.stop()
    assert server.inbox.message_ids() == [row.message_id]
