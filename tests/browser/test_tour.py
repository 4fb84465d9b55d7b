"""Every page of every role's menu, in a real browser at phone and desktop width (and the
public pages): each one checked like the journeys' pages (axe, overflow, console, Nu)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ptmatch import demo
from ptmatch.models import Patient, User
from tests.browser.conftest import PHONE, VIEWPORTS
from tests.browser.journeys import login

STAFF = ["sommer@demo.ptmatch.de", "sekretariat@demo.ptmatch.de", "admin@demo.ptmatch.de"]


@pytest.fixture
def demo_data(session, now):
    demo.load(session, now)
    session.commit()


def visit_menu(b) -> list[str]:
    """Open every link of the navbar (the menu button first on a phone); returns the paths."""
    page = b.page
    hrefs = page.locator("#nav a.nav-link").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))"
    )
    for href in hrefs:
        b.goto(href)
        if b.viewport == PHONE:
            page.get_by_role("button", name="Menü").click()
        link = page.locator(f"#nav a.nav-link[href='{href}']")
        assert link.get_attribute("aria-current") == "page", href
    return hrefs


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("email", STAFF, ids=["therapist", "secretariat", "admin"])
def test_staff_menu_pages(open_browser, demo_data, viewport, email):
    b = open_browser(viewport)
    login(b, email)
    assert len(visit_menu(b)) >= 4


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_patient_and_public_pages(open_browser, demo_data, viewport, session):
    b = open_browser(viewport)
    for path in ("/", "/hilfe", "/auth/login", "/auth/reset", "/patient/registrieren", "/p/sommer"):
        b.goto(path)
    user = session.scalar(select(User).join(Patient, Patient.user_id == User.id).limit(1))
    login(b, user.email)
    assert len(visit_menu(b)) >= 4
    for path in ("/patient/angaben", "/patient/pause", "/patient/loeschen", "/auth/password"):
        b.goto(path)
