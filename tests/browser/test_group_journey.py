"""A group offer, in a real browser: the therapist creates a group, a fitting patient opens
the mailed link and accepts; a reload of the result shows her place (no 405), and so does
opening the link again. Every page checked (see conftest)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ptmatch import clock, demo
from ptmatch.models import GroupEnrollment, Offer, OutboxMessage, Patient
from tests.browser.conftest import VIEWPORTS
from tests.browser.journeys import login, nav

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def demo_data(session, now):
    demo.load(session, now)
    session.commit()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_group_offer_is_accepted(open_browser, demo_data, viewport, session):
    therapist = open_browser(viewport)
    login(therapist, "sommer@demo.ptmatch.de")
    nav(therapist, "Gruppen")
    therapist.click(therapist.link("Neue Gruppe"))
    page = therapist.page
    start = clock.now().astimezone(BERLIN).date() + dt.timedelta(days=14)
    while start.weekday() != 2:  # a Wednesday
        start += dt.timedelta(days=1)
    page.fill("#title", "Achtsamkeit bei Ängsten")
    page.fill("#start_date", start.isoformat())
    page.fill("#start_time", "16:00")
    therapist.click(therapist.button("Gruppe anlegen und Angebote senden"))
    assert re.search(r"/praxis/gruppen/\d+$", page.url), therapist.text()[:800]

    session.rollback()
    offer = next(  # a patient with an account (a phone-only one gets a call task, no mail)
        o
        for o in session.scalars(select(Offer).where(Offer.group_id.is_not(None)))
        if session.get(Patient, o.patient_id).user_id is not None
    )
    user_id = session.get(Patient, offer.patient_id).user_id
    body = session.scalar(
        select(OutboxMessage.body_text).where(
            OutboxMessage.kind == "group_offer", OutboxMessage.user_id == user_id
        )
    )
    link = re.search(r"https?://\S+/g/\S+", body).group(0)

    patient = open_browser(viewport)
    patient.goto(link)
    patient.click(patient.page.get_by_role("button", name="Zusagen", exact=True))
    assert "Sie sind angemeldet" in patient.text()
    assert "/annehmen" not in patient.page.url  # a reload must not hit the POST-only URL
    patient.page.reload()
    patient.check()
    assert "Sie sind angemeldet" in patient.text()
    patient.goto(link)
    assert "Sie sind angemeldet" in patient.text()

    session.rollback()
    assert session.scalar(
        select(GroupEnrollment).where(GroupEnrollment.patient_id == offer.patient_id)
    )
