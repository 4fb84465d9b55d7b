"""Steps the browser journeys share: demo data, logging in (password and TOTP on the frozen
clock), reading a mailed link as the person would find it."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select

from ptmatch import clock, demo
from ptmatch.models import OutboxMessage, User
from tests.browser.conftest import PHONE

TOTP = {email: secret for email, _role, _name, secret in demo.STAFF}


def login(b, email: str, password: str = demo.DEMO_PASSWORD, english: bool = False) -> None:
    """Password, then (staff) the current TOTP code of the app's clock. Each login moves the
    frozen clock by a TOTP step, since a code may be used only once."""
    page = b.page
    b.goto("/auth/login")
    page.fill("#email", email)
    page.fill("#password", password)
    b.click(b.button("Log in" if english else "Anmelden", exact=True))
    if email in TOTP:
        clock.get_source().advance(seconds=30)
        page.fill("#code", pyotp.TOTP(TOTP[email]).at(clock.now()))
        b.click(b.button("Confirm" if english else "Bestätigen", exact=True))
    assert "/auth/" not in page.url, b.text()[:500]


def nav(b, name: str) -> None:
    """Follow a navbar link (opening the collapsed menu on a phone)."""
    page = b.page
    if b.viewport == PHONE:
        page.get_by_role("button", name=re.compile("Menü|Menu")).click()
    b.click(page.locator("#nav").get_by_role("link", name=name, exact=True))
    assert page.locator("#nav a[aria-current=page]").count() == 1


def mailed_link(session, email: str, kind: str, pattern: str = r"https?://\S+") -> str:
    """The newest link of that kind of mail to that address (its outbox row)."""
    session.rollback()  # a fresh snapshot: the app committed since
    user = session.scalar(select(User).where(User.email == email))
    body = session.scalar(
        select(OutboxMessage.body_text)
        .where(OutboxMessage.kind == kind, OutboxMessage.user_id == user.id)
        .order_by(OutboxMessage.id.desc())
    )
    assert body, f"no {kind} mail to {email}"
    return re.search(pattern, body).group(0)
