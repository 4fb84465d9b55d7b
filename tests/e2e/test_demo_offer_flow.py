"""Issue 5's "done when", through the web on the demo data: a therapist posts a slot, the
fitting demo patients get offer mails, the first to accept is booked, the next one sees
"taken", and the winner has left every other list."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ptmatch import demo
from ptmatch.models import (
    Booking,
    EntryStatus,
    Offer,
    OfferStatus,
    OutboxMessage,
    Patient,
    PatientStatus,
    User,
    WaitlistEntry,
)
from tests.conftest import NOW

BERLIN = ZoneInfo("Europe/Berlin")


def _weekday_within_a_week() -> dt.date:
    """3-6 days ahead (a wave of three by default) on a weekday the demo patients are free."""
    day = NOW.astimezone(BERLIN).date() + dt.timedelta(days=3)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return day


def test_post_offer_first_accept_wins_on_demo_data(app, client, session, login_as):
    demo.load(session, NOW)
    session.commit()
    sommer = session.scalar(select(User).where(User.email == "sommer@demo.ptmatch.de"))
    login_as(sommer)
    resp = client.post(
        "/termine/neu",
        data={
            "start_time": "15:00",
            "day": _weekday_within_a_week().isoformat(),
            "minutes": "50",
            "kind": "sprechstunde",
            "modality": "in_person",
            "mode": "auto",
            "on_day": "1",
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    session.commit()

    offers = session.scalars(select(Offer).where(Offer.status == OfferStatus.PENDING)).all()
    assert len(offers) >= 3, "the demo data should give a slot at least three fitting patients"
    links = {}
    for offer in offers:
        user_id = session.get(Patient, offer.patient_id).user_id
        body = session.scalar(
            select(OutboxMessage.body_text).where(
                OutboxMessage.kind == "offer", OutboxMessage.user_id == user_id
            )
        )
        links[offer.patient_id] = re.search(r"https?://[^/\s]+(/o/\S+)", body).group(1)

    first, second, third = (app.test_client() for _ in range(3))
    winner_id, loser_id, third_id = list(links)[:3]
    for c, pid in ((first, winner_id), (second, loser_id), (third, third_id)):
        assert "Termin annehmen" in c.get(links[pid]).get_data(as_text=True)
    assert first.post(links[winner_id], data={"answer": "accept"}).status_code == 200
    taken = second.post(links[loser_id], data={"answer": "accept"}).get_data(as_text=True)
    assert "schon vergeben" in taken
    assert "schon vergeben" in third.get(links[third_id]).get_data(as_text=True)

    session.commit()
    bookings = session.scalars(select(Booking)).all()
    assert [b.patient_id for b in bookings] == [winner_id]
    assert session.get(Patient, winner_id).status == PatientStatus.BOOKED
    entries = session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.patient_id == winner_id)
    ).all()
    assert entries and all(e.status == EntryStatus.REMOVED for e in entries)
    loser_entries = session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.patient_id == loser_id)
    ).all()
    assert any(e.status == EntryStatus.ACTIVE for e in loser_entries), "the loser keeps their place"
