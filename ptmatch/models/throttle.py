"""Abuse counters (issue 16), in the database so they hold across gunicorn workers and hosts.

- `RateCounter`: requests per client address and kind in a window (registration, login, ...).
- `LoginThrottle`: failed logins per key (a client address, or an address pair of login name
  and client) with an exponential delay before the next attempt is evaluated.
- `ResetRequest`: a password-reset request waiting for the scheduler, so the reset form does
  the same (tiny) work for every address and the mail work happens out of band.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ptmatch.db import Base, UTCDateTime


class RateCounter(Base):
    __tablename__ = "rate_counters"

    # "<kind>:<client address>"; one row per key, its window restarts when it has run out.
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class LoginThrottle(Base):
    __tablename__ = "login_throttles"

    # "client:<address>" or "pair:<login hash>:<address>"; never a readable e-mail address.
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    # The login-name hash for pair keys ("" otherwise), so a reset can clear them all.
    login: Mapped[str] = mapped_column(String(64), index=True, default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ResetRequest(Base):
    __tablename__ = "reset_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(5), default="de")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
