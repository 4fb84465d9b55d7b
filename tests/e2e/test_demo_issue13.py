"""Done-when of issue 13 on the demo data: a therapist posting a therapy place sees only
patients with a PTV 11; a phone-only demo caller's offer shows up in the secretariat's call
queue, and the secretariat can book it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ptmatch import demo
from ptmatch.domain import matching, secretariat
from ptmatch.models import Booking, CallTask, Patient, SlotKind, Therapist, User
from tests.conftest import NOW
from tests.factories import make_slot

BERLIN = ZoneInfo("Europe/Berlin")


def _weekday_at(hour: int) -> dt.datetime:
    day = NOW.astimezone(BERLIN).date() + dt.timedelta(days=3)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=BERLIN).astimezone(dt.UTC)


def _sommer(session) -> Therapist:
    user = session.scalar(select(User).where(User.email == "sommer@demo.ptmatch.de"))
    return session.scalar(select(Therapist).where(Therapist.user_id == user.id))


def test_a_therapy_place_on_the_demo_data_goes_only_to_ptv11_patients(session):
    demo.load(session, NOW)
    slot = make_slot(
        session, _sommer(session), start_at=_weekday_at(15), kind=SlotKind.THERAPY_PLACE
    )
    ranked = matching.rank_candidates(session, slot, NOW)
    assert ranked, "the demo data should have PTV 11 patients for a therapy place"
    assert all(session.get(Patient, c.patient_id).ptv11_date is not None for c in ranked)
    sprechstunde = make_slot(session, _sommer(session), start_at=_weekday_at(17))
    everyone = matching.rank_candidates(session, sprechstunde, NOW)
    assert any(session.get(Patient, c.patient_id).ptv11_date is None for c in everyone)


def test_a_phone_only_demo_caller_is_called_and_booked(client, session, login_as):
    demo.load(session, NOW)
    session.commit()
    login_as(_sommer(session).user)
    day = _weekday_at(10).astimezone(BERLIN)
    resp = client.post(
        "/termine/neu",
        data={
            "start_time": "10:00",
            "day": day.date().isoformat(),
            "minutes": "50",
            "kind": "sprechstunde",
            "modality": "in_person",
            "mode": "auto",
            "on_day": "1",
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    session.commit()
    caller = session.scalar(select(Patient).where(Patient.last_name == "Anrufer"))
    secretary = session.scalar(select(User).where(User.email == "sekretariat@demo.ptmatch.de"))
    queue = secretariat.call_queue(session, NOW, secretary)
    assert [row.patient_id for row in queue] == [caller.id]
    login_as(secretary)
    assert "Anrufer" in client.get("/sekretariat/anrufe").get_data(as_text=True)
    task = session.scalar(select(CallTask))
    assert (
        client.post(f"/sekretariat/anrufe/{task.id}", data={"outcome": "accepted"}).status_code
        == 302
    )
    session.rollback()
    booking = session.scalar(select(Booking))
    assert (booking.patient_id, booking.booked_by_id) == (caller.id, secretary.id)
