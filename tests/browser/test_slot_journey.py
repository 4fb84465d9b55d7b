"""A therapist on a phone (and a desktop): logs in with password and TOTP, posts a free hour
"Morgen" in at most three taps; two offered patients open their mailed links, the first
accepts, the second sees "taken", and the first finds her booking when she opens the link
again. Every page checked (see conftest)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ptmatch import clock, demo
from ptmatch.models import Booking, Offer, OfferStatus, OutboxMessage, Patient, Slot
from tests.browser.conftest import PHONE, VIEWPORTS
from tests.browser.journeys import login, nav

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def demo_data(session, now):
    demo.load(session, now)
    session.commit()


def offer_links(session, slot_id: int) -> dict[int, str]:
    session.rollback()  # a fresh snapshot: the app committed since
    links = {}
    for offer in session.scalars(select(Offer).where(Offer.slot_id == slot_id)):
        user_id = session.get(Patient, offer.patient_id).user_id
        body = session.scalar(
            select(OutboxMessage.body_text)
            .where(OutboxMessage.kind == "offer", OutboxMessage.user_id == user_id)
            .order_by(OutboxMessage.id.desc())
        )
        if body is None:  # a phone-only caller: the offer became a call task, no mail
            continue
        links[offer.id] = re.search(r"https?://\S+/o/\S+", body).group(0)
    return links


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_therapist_posts_tomorrow_and_first_answer_wins(open_browser, demo_data, viewport, session):
    therapist = open_browser(viewport)
    login(therapist, "sommer@demo.ptmatch.de")
    page = therapist.page
    # From the landing page: the menu (phone only), "Freie Termine", "Morgen".
    taps = 2 if viewport == PHONE else 1
    nav(therapist, "Freie Termine")
    tomorrow = clock.now().astimezone(BERLIN).date() + dt.timedelta(days=1)
    weekday = ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"][tomorrow.weekday()]
    morgen = therapist.button(re.compile("^Morgen"))
    assert weekday in morgen.inner_text()  # the button says which day "Morgen" is
    therapist.click(morgen)
    taps += 1
    assert taps <= 3
    assert re.search(r"/termine/\d+$", page.url), page.url
    assert "angeboten" in therapist.text()

    slot = session.scalars(select(Slot).order_by(Slot.id.desc())).first()
    start = slot.start_at.astimezone(BERLIN)
    assert start.date() == tomorrow
    links = list(offer_links(session, slot.id).values())
    assert len(links) >= 2, "the demo data should give this slot at least two fitting patients"

    first, second = open_browser(viewport), open_browser(viewport)
    first.goto(links[0])
    second.goto(links[1])
    assert "Termin annehmen" in first.text() and "Termin annehmen" in second.text()
    first.click(first.button("Termin annehmen"))
    assert "Ihr Termin ist gebucht" in first.text()
    second.click(second.button("Termin annehmen"))
    assert "schon vergeben" in second.text()
    # The booked patient opens her link again: her booking, not "no longer available".
    first.goto(links[0])
    assert "Ihr Termin ist gebucht" in first.text()

    session.rollback()  # a fresh snapshot: the app committed since
    booking = session.scalar(select(Booking).where(Booking.slot_id == slot.id))
    offers = {o.status for o in session.scalars(select(Offer).where(Offer.slot_id == slot.id))}
    assert booking is not None and OfferStatus.ACCEPTED in offers and OfferStatus.TAKEN in offers

    # The therapist sees the booking; cancelling needs a second, deliberate tap.
    therapist.goto(f"/termine/{slot.id}")
    assert "Gebucht" in therapist.text()
    page.get_by_text("Termin absagen").first.click()
    confirm = therapist.button("Ja, Termin absagen")
    assert confirm.is_visible()


def test_a_slot_nobody_can_take_says_why(open_browser, demo_data, session):
    """A Saturday hour: nobody in the demo data is free on Saturdays, and the page says so."""
    therapist = open_browser(PHONE)
    login(therapist, "sommer@demo.ptmatch.de")
    therapist.goto("/termine/neu")
    page = therapist.page
    today = clock.now().astimezone(BERLIN).date()
    saturday = today + dt.timedelta(days=(5 - today.weekday()) % 7 or 7)
    page.get_by_text("Anderes Datum").click()
    page.fill("#day", saturday.isoformat())
    page.fill("#start_time", "10:00")
    therapist.click(therapist.button("Am gewählten Datum"))
    why = page.locator("#why-nobody")
    assert why.is_visible()
    assert "samstags" in why.inner_text()
