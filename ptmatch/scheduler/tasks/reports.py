"""The monthly report mail: on the 1st (Berlin time), every enabled admin gets a link to last
month's region statistics. The mail carries no figure; the page shows them after login.

Once per admin and month: the outbox dedupe key ``stats_report:<YYYY-MM>:<user id>``, so the
job may look every hour and run twice.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ptmatch import links
from ptmatch.config import Settings
from ptmatch.models import Role, User
from ptmatch.notifications import outbox
from ptmatch.scheduler.jobs import Job

BERLIN = ZoneInfo("Europe/Berlin")


def previous_month(now: dt.datetime) -> str:
    """``YYYY-MM`` of the month before ``now`` (Berlin time)."""
    first = now.astimezone(BERLIN).date().replace(day=1)
    last = first - dt.timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def mail_monthly_report(session: Session, now: dt.datetime, settings: Settings) -> int:
    """On the 1st of a month: enqueue the report link for every enabled admin (once)."""
    if not settings.STATS_REPORT_MAIL or now.astimezone(BERLIN).day != 1:
        return 0
    month = previous_month(now)
    count = 0
    for admin in session.scalars(select(User).where(User.role == Role.ADMIN).order_by(User.id)):
        if not admin.is_enabled:
            continue
        if outbox.enqueue(
            session,
            now,
            kind="stats_report",
            dedupe_key=f"stats_report:{month}:{admin.id}",
            link_path=links.admin_statistics_month(month),
            to_user=admin,
        ):
            count += 1
    session.flush()
    return count


JOBS = [Job("monthly_report", mail_monthly_report, None, default_seconds=3600)]
