"""Done-when of the secretariat issue, on the demo data: the demo secretariat user handles a
caller end to end (find, register, put on a list, accept an offer for them) and never sees
clinical data on the way."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from ptmatch import demo
from ptmatch.domain import offers
from ptmatch.models import (
    Booking,
    Offer,
    OfferMode,
    Patient,
    PatientClinical,
    Practice,
    Therapist,
    User,
)
from tests.conftest import NOW


def _next_weekday_slot(now: dt.datetime) -> dt.datetime:
    """Two days ahead at 13:00 UTC (14:00 or 15:00 in Berlin), moved off the weekend."""
    day = (now + dt.timedelta(days=2)).date()
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, 13, 0, tzinfo=dt.UTC)


def test_demo_secretariat_handles_a_caller_end_to_end(client, session, login_as, settings):
    demo.load(session, NOW)
    session.commit()
    secretary = session.scalar(select(User).where(User.email == "sekretariat@demo.ptmatch.de"))
    sommer = session.scalar(select(Practice).where(Practice.slug == "sommer"))
    descriptions = [d for d in session.scalars(select(PatientClinical.description)) if d]
    login_as(secretary)
    seen = []

    def get(url):
        resp = client.get(url)
        seen.append(resp.get_data(as_text=True))
        return resp

    # Find: an existing caller by name.
    assert "Hoffmann" in get("/sekretariat/?q=hoffmann").get_data(as_text=True)
    # Register a new caller by phone (no e-mail), with a verbal consent.
    resp = client.post(
        "/sekretariat/anrufer/neu",
        data={
            "first_name": "Rita",
            "last_name": "Rufan",
            "birth_date": "1961-06-01",
            "gender": "f",
            "phone": "0228 555123",
            "postcode": "53115",
            "max_distance_km": "20",
            "languages": ["de"],
            "therapist_gender_wish": "any",
            "insurance": "gkv",
            "video_pref": "no",
            "group_pref": "no",
            "whole_days": ["0", "1", "2", "3", "4"],
            "consent_health": "y",
            "consent_rules": "y",
        },
    )
    assert resp.status_code == 302
    patient_id = int(re.search(r"/anrufer/(\d+)", resp.headers["Location"]).group(1))
    # The intake (write-only), then the list of a served practice.
    assert (
        client.post(
            f"/sekretariat/anrufer/{patient_id}/aufnahme",
            data={"problems": ["depression"], "description": "Schläft schlecht seit Monaten"},
        ).status_code
        == 200
    )
    assert (
        client.post(
            f"/sekretariat/anrufer/{patient_id}/liste", data={"practice": str(sommer.id)}
        ).status_code
        == 302
    )
    # The practice offers a slot to the caller (manual pick), the secretary accepts it on the phone.
    session.rollback()
    therapist = session.scalar(select(Therapist).where(Therapist.practice_id == sommer.id))
    now = NOW
    slot = offers.post_slot(
        session,
        now,
        therapist.user,
        therapist,
        start_at=_next_weekday_slot(now),
        minutes=50,
        mode=OfferMode.MANUAL,
        settings=settings,
    )
    (offer,) = offers.send_offers(
        session, now, slot, [patient_id], therapist.user, settings=settings
    )
    offer_id = offer.id
    session.commit()
    assert "Für die Person annehmen" in get(f"/sekretariat/anrufer/{patient_id}").get_data(
        as_text=True
    )
    assert client.post(f"/sekretariat/angebote/{offer_id}/annehmen").status_code == 302
    session.rollback()
    session.expire_all()
    booking = session.scalar(select(Booking).where(Booking.patient_id == patient_id))
    assert booking is not None and booking.booked_by_id == secretary.id
    assert session.get(Offer, offer_id).responded_by_id == secretary.id
    assert session.get(Patient, patient_id).registered_via == "secretariat"
    # Never any clinical text on the pages the secretary saw.
    get(f"/sekretariat/anrufer/{patient_id}")
    get(f"/sekretariat/anrufer/{patient_id}/aufnahme")
    for page in seen:
        assert "Schläft schlecht" not in page
        assert not any(d in page for d in descriptions)
