"""The monthly report mail: on the 1st, each enabled admin gets one link, no figures."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlalchemy import select

from ptmatch.models import OutboxMessage, Role
from ptmatch.scheduler.jobs import all_jobs
from ptmatch.scheduler.tasks.reports import mail_monthly_report, previous_month
from tests.factories import make_slot, make_therapist, make_user

FIRST = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)  # 1 December, 00:30 in Berlin


def _mails(session):
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "stats_report")))


def test_admins_get_one_link_on_the_first(session, settings):
    admin = make_user(session, Role.ADMIN)
    make_user(session, Role.ADMIN, is_enabled=False)
    make_user(session, Role.THERAPIST)
    make_slot(session, make_therapist(session))  # something to report on
    assert mail_monthly_report(session, FIRST, settings) == 1
    assert mail_monthly_report(session, FIRST + dt.timedelta(hours=1), settings) == 0
    [mail] = _mails(session)
    assert mail.user_id == admin.id
    assert mail.dedupe_key == f"stats_report:2026-11:{admin.id}"
    assert "https://ptmatch.test/admin/statistik/monat/2026-11" in mail.body_text
    body = mail.body_text.replace("2026-11", "")
    assert not any(ch.isdigit() for ch in body.split("https://")[0])  # no figure in the text


def test_no_mail_on_other_days_or_when_switched_off(session, settings):
    make_user(session, Role.ADMIN)
    assert mail_monthly_report(session, FIRST - dt.timedelta(hours=1), settings) == 0  # 30 Nov
    off = replace(settings, STATS_REPORT_MAIL=False)
    assert mail_monthly_report(session, FIRST, off) == 0
    assert _mails(session) == []


def test_previous_month_and_the_job_is_registered():
    assert previous_month(FIRST) == "2026-11"
    assert previous_month(dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)) == "2025-12"
    assert "monthly_report" in {job.name for job in all_jobs()}


def test_the_link_opens_that_month(client, login_as, session):
    admin = make_user(session, Role.ADMIN)
    session.commit()
    login_as(admin)
    response = client.get("/admin/statistik/monat/2026-11")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/statistik?von=2026-11-01&bis=2026-11-30")
    assert client.get("/admin/statistik/monat/2026-13").status_code == 404
