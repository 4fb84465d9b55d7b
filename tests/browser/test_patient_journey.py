"""A new patient, in a real browser: registers, confirms the address by the link in the
dev mailbox, joins two practice lists and the regional pool. At phone and desktop width,
in German and in English; every page checked (see conftest)."""

from __future__ import annotations

import re

import pytest

from ptmatch import demo
from tests.browser.conftest import PHONE, VIEWPORTS

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_data(session, now):
    demo.load(session, now)
    session.commit()


def register_and_join(b, email: str, english: bool = False) -> None:
    page = b.page
    b.goto("/")
    if english:
        b.click(b.button("English"))
    b.goto("/patient/registrieren")
    if b.viewport == PHONE:  # long labels ("Persönlichkeitsstörung") wrap, never overlap
        assert page.evaluate(_OVERLAPPING_LABELS) == []
    # First a submit with nothing filled in: every error at once, a summary on top.
    b.click(b.button("Registrieren" if not english else "Register", exact=True))
    summary = page.locator("#form-errors")
    assert summary.is_visible()
    assert summary.locator("a").count() >= 5
    # The time grid is marked as required, and its error is in the first round.
    assert summary.locator("a[href='#availability']").count() == 1
    page.fill("#email", email)
    page.fill("#password", "ein langes Passwort 2026")
    page.fill("#password_repeat", "ein langes Passwort 2026")
    page.fill("#first_name", "Jana")
    page.fill("#last_name", "Krüger")
    page.fill("#birth_date", "1990-04-01")
    page.fill("#postcode", "53115")
    page.locator("input[name=whole_days][value='1']").check()
    page.locator("input[name=whole_days][value='3']").check()
    page.locator("#consent_health").check()
    page.locator("#consent_rules").check()
    b.click(b.button("Registrieren" if not english else "Register", exact=True))
    assert "/patient/registriert" in page.url

    # The verification link, as the dev mailbox shows it.
    b.goto("/dev/mail")
    b.click(page.locator("#outbox-rows a").first)
    link = page.locator("a", has_text=re.compile(r"/patient/verify/")).first.get_attribute("href")
    b.goto(link)
    b.click(b.button("E-Mail-Adresse bestätigen" if not english else "Confirm email address"))

    # Log in and pick where to wait.
    if "/auth/login" in page.url:
        page.fill("#email", email)
        page.fill("#password", "ein langes Passwort 2026")
        b.click(b.button("Anmelden" if not english else "Log in", exact=True))
    assert "/patient" in page.url
    # Active, but on no list yet: the dashboard says so instead of "you receive offers".
    b.goto("/patient/")
    assert page.locator("#no-list").is_visible()
    if b.viewport == PHONE:
        page.get_by_role("button", name=re.compile("Menü|Menu")).click()
    b.click(
        page.locator("#nav").get_by_role(
            "link", name="Praxen finden" if not english else "Find practices"
        )
    )
    assert page.locator("#nav a[aria-current=page]").count() == 1
    finder = b.text()
    # Distances in the reader's locale ("1,2 km" / "1.2 km"), and the therapists by name.
    assert re.search(r"\d,\d km" if not english else r"\d\.\d km", finder), finder[:1500]
    assert "Sommer" in finder
    join = "Auf die Warteliste" if not english else "Join the waitlist"
    for _ in range(2):
        b.click(page.get_by_role("button", name=re.compile(join)).first)
    b.goto("/patient/praxen")
    b.click(b.button("Beitreten" if not english else "Join", exact=True))
    text = b.text()
    assert text.count("Warteliste" if not english else "aitlist") >= 1
    b.goto("/patient/")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_patient_registers_verifies_and_joins_lists(open_browser, demo_data, viewport, session):
    from sqlalchemy import select

    from ptmatch.models import Patient, User, WaitlistEntry

    b = open_browser(viewport)
    register_and_join(b, "jana@example.org")
    user = session.scalar(select(User).where(User.email == "jana@example.org"))
    patient = session.scalar(select(Patient).where(Patient.user_id == user.id))
    entries = session.scalars(select(WaitlistEntry).where(WaitlistEntry.patient_id == patient.id))
    kinds = sorted("pool" if e.practice_id is None else "practice" for e in entries)
    assert kinds == ["pool", "practice", "practice"]


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_same_journey_in_english(open_browser, demo_data, viewport):
    b = open_browser(viewport, locale="en-GB")
    register_and_join(b, "jane@example.org", english=True)
    assert b.page.locator("html").get_attribute("lang") == "en"
    assert "Übersicht" not in b.text()


_OVERLAPPING_LABELS = """() => Array.from(document.querySelectorAll('.form-check-label'))
  .filter(e => {
    const range = document.createRange();
    range.selectNodeContents(e);
    const text = range.getBoundingClientRect(), box = e.parentElement.getBoundingClientRect();
    return text.right > box.right + 1;  // the words run out of their column
  })
  .map(e => e.textContent.trim())"""
