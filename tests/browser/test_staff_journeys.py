"""Staff in a real browser: the secretariat finds a caller by a phone number written another
way (and by a name without its umlaut) and accepts an offer for them; an admin approves a
new therapist. Every page checked (see conftest)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ptmatch import demo
from ptmatch.config import Settings
from ptmatch.domain import offers
from ptmatch.models import Booking, Offer, Patient, Practice, Therapist, User
from tests.browser.conftest import VIEWPORTS
from tests.browser.journeys import login, nav
from tests.factories import make_therapist

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def demo_data(session, now):
    demo.load(session, now)
    session.commit()


def _weekday_within_a_week(now) -> dt.date:
    day = now.astimezone(BERLIN).date() + dt.timedelta(days=3)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return day


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_secretariat_finds_caller_by_phone_and_accepts_for_them(
    open_browser, demo_data, viewport, session, now, settings: Settings
):
    sommer = session.scalar(select(User).where(User.email == "sommer@demo.ptmatch.de"))
    therapist = session.scalar(select(Therapist).where(Therapist.user_id == sommer.id))
    start = dt.datetime.combine(_weekday_within_a_week(now), dt.time(15), tzinfo=BERLIN)
    slot = offers.post_slot(
        session, now, sommer, therapist, start_at=start.astimezone(dt.UTC), minutes=50,
        settings=settings,
    )  # fmt: skip
    session.commit()
    offer = next(  # a caller with an account: phone-only ones are worked from the call queue
        o
        for o in session.scalars(select(Offer).where(Offer.slot_id == slot.id))
        if session.get(Patient, o.patient_id).user_id is not None
    )
    caller = session.get(Patient, offer.patient_id)
    digits = caller.phone.replace("+49", "0").replace(" ", "")
    written_otherwise = f"{digits[:4]} / {digits[4:]}"  # "0170 / 0000003" for "+4917000000 03"

    b = open_browser(viewport)
    login(b, "sekretariat@demo.ptmatch.de")
    page = b.page
    # A name without its umlaut finds it.
    page.fill("#q", "Kruger")
    b.click(b.button("Suchen", exact=True))
    assert "Krüger" in b.text()
    page.fill("#q", written_otherwise)
    b.click(b.button("Suchen", exact=True))
    b.click(page.get_by_role("link", name=caller.last_name))
    assert "So weit kann ich" not in b.text()
    b.click(b.button("Für die Person annehmen").first)
    assert "Termin gebucht" in b.text()
    line = page.locator(".booking-line").first
    practice = session.get(Practice, slot.practice_id)
    assert practice.street in line.inner_text()  # something to read out on the phone
    assert "hier gebucht" in b.text()
    session.rollback()
    assert session.scalar(select(Booking).where(Booking.slot_id == slot.id)).patient_id == (
        caller.id
    )


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_admin_approves_a_new_therapist(open_browser, demo_data, viewport, session):
    practice = session.scalar(select(Practice).where(Practice.slug == "sommer"))
    newcomer = make_therapist(session, practice=practice, approved_at=None)
    session.commit()
    email = newcomer.user.email

    b = open_browser(viewport)
    login(b, "admin@demo.ptmatch.de")
    nav(b, "Therapeut:innen")
    page = b.page
    row = page.locator(".list-group-item", has_text=email)
    b.click(row.get_by_role("button", name="Freischalten"))
    assert page.locator(".list-group-item", has_text=email).count() == 0
    session.rollback()
    assert session.get(Therapist, newcomer.id).approved_at is not None
