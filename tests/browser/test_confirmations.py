"""The confirmation boxes of issue 15 (point 4) in a real browser, at 390 and 1280 px: a
therapist cancels a posted slot (every open offer is withdrawn), a patient cancels her
booking, a practice takes someone off its list. Each first opens the box, which says what
will happen, takes the way back ("Nein, … behalten": nothing changes), then opens it again
and confirms. Every page and every open box checked (see conftest)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ptmatch import demo
from ptmatch.config import Settings
from ptmatch.domain import offers
from ptmatch.models import (
    Booking,
    BookingStatus,
    EntryStatus,
    Offer,
    OfferStatus,
    Patient,
    Slot,
    SlotStatus,
    Therapist,
    User,
    WaitlistEntry,
)
from tests.browser.conftest import VIEWPORTS
from tests.browser.journeys import login

BERLIN = ZoneInfo("Europe/Berlin")
THERAPIST = "sommer@demo.ptmatch.de"


@pytest.fixture
def demo_data(session, now):
    demo.load(session, now)
    session.commit()


def _therapist(session) -> tuple[User, Therapist]:
    user = session.scalar(select(User).where(User.email == THERAPIST))
    return user, session.scalar(select(Therapist).where(Therapist.user_id == user.id))


def _posted_slot(session, now, settings: Settings) -> Slot:
    """A weekday afternoon three to seven days ahead, posted with its first wave of offers."""
    user, therapist = _therapist(session)
    day = now.astimezone(BERLIN).date() + dt.timedelta(days=3)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    start = dt.datetime.combine(day, dt.time(15), tzinfo=BERLIN).astimezone(dt.UTC)
    slot = offers.post_slot(
        session, now, user, therapist, start_at=start, minutes=50, settings=settings
    )
    session.commit()
    return slot


def _fresh(session) -> None:
    """Read what the app committed: a new snapshot, nothing kept from before."""
    session.rollback()
    session.expire_all()


def _open_then_keep(b, action: str, keep: str, confirm) -> str:
    """Open the box (its text is returned), check the page with it open, take the way back
    and check again: the real button is hidden once more."""
    page = b.page
    assert not confirm.is_visible()
    page.locator("details.confirm-box > summary").get_by_text(action, exact=True).click()
    assert confirm.is_visible()
    said = page.locator("details.confirm-box").inner_text()
    b.check()
    way_back = page.locator("details.confirm-box > summary").get_by_text(keep, exact=True)
    assert way_back.is_visible()
    way_back.click()
    assert not confirm.is_visible() and not way_back.is_visible()
    b.check()
    return said


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_therapist_cancels_a_posted_slot_only_after_confirming(
    open_browser, demo_data, viewport, session, now, settings
):
    slot = _posted_slot(session, now, settings)
    pending = len(
        session.scalars(
            select(Offer).where(Offer.slot_id == slot.id, Offer.status == OfferStatus.PENDING)
        ).all()
    )
    assert pending >= 2, "the demo data should give this slot several fitting patients"

    b = open_browser(viewport)
    login(b, THERAPIST)
    b.goto(f"/termine/{slot.id}")
    confirm = b.button("Ja, Termin absagen")
    said = _open_then_keep(b, "Termin absagen …", "Nein, Termin behalten", confirm)
    assert f"{pending} offene Angebote werden zurückgezogen" in said
    b.goto(f"/termine/{slot.id}")  # kept: still offering, every offer still open
    _fresh(session)
    assert session.get(Slot, slot.id).status == SlotStatus.OFFERING

    b.page.get_by_text("Termin absagen …", exact=True).click()
    b.click(confirm)
    assert "Der Termin ist abgesagt." in b.text()
    _fresh(session)
    assert session.get(Slot, slot.id).status == SlotStatus.CANCELLED
    statuses = {o.status for o in session.scalars(select(Offer).where(Offer.slot_id == slot.id))}
    assert statuses == {OfferStatus.WITHDRAWN}


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_patient_cancels_her_booking_only_after_confirming(
    open_browser, demo_data, viewport, session, now, settings
):
    slot = _posted_slot(session, now, settings)
    offer = next(
        o
        for o in session.scalars(select(Offer).where(Offer.slot_id == slot.id))
        if session.get(Patient, o.patient_id).user_id is not None
    )
    patient_user = session.get(User, session.get(Patient, offer.patient_id).user_id)
    booking = offers.accept_offer(session, now, offer, patient_user, settings)
    session.commit()

    b = open_browser(viewport)
    login(b, patient_user.email)
    b.goto("/patient/")
    b.click(b.link("Details").first)
    assert b.page.url.endswith(f"/patient/termin/{booking.id}")
    confirm = b.button("Ja, Termin absagen")
    said = _open_then_keep(b, "Termin absagen …", "Nein, Termin behalten", confirm)
    assert "an andere Wartende vergeben" in said
    _fresh(session)
    assert session.get(Booking, booking.id).status == BookingStatus.CONFIRMED

    b.page.get_by_text("Termin absagen …", exact=True).click()
    b.click(confirm)
    assert "Ihr Termin ist abgesagt." in b.text()
    _fresh(session)
    assert session.get(Booking, booking.id).status != BookingStatus.CONFIRMED


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_practice_takes_someone_off_its_list_only_after_confirming(
    open_browser, demo_data, viewport, session
):
    _user, therapist = _therapist(session)
    entry = session.scalars(
        select(WaitlistEntry)
        .where(
            WaitlistEntry.practice_id == therapist.practice_id,
            WaitlistEntry.status == EntryStatus.ACTIVE,
        )
        .order_by(WaitlistEntry.id)
    ).first()

    b = open_browser(viewport)
    login(b, THERAPIST)
    b.goto(f"/praxis/patient/{entry.patient_id}")
    confirm = b.button("Von der Liste nehmen", exact=True)
    said = _open_then_keep(b, "Von der Liste nehmen …", "Nein, auf der Liste lassen", confirm)
    assert "Grund" in said
    _fresh(session)
    assert session.get(WaitlistEntry, entry.id).status == EntryStatus.ACTIVE

    b.page.get_by_text("Von der Liste nehmen …", exact=True).click()
    b.click(confirm)
    assert "Der Eintrag wurde von der Liste genommen." in b.text()
    _fresh(session)
    assert session.get(WaitlistEntry, entry.id).status == EntryStatus.REMOVED
