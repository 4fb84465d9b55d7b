"""Issue 19's "done when", through the web on the demo data: Sommer's practice has two rooms;
a second in-person slot in an occupied room is refused with the room named (and the other
room is taken when none is named); a demo patient sees a fitting open group on their
dashboard and joins it in two taps."""

from __future__ import annotations

import datetime as dt
import html
import re
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ptmatch import demo
from ptmatch.models import (
    EnrollmentStatus,
    GroupEnrollment,
    GroupProgram,
    Practice,
    Room,
    Slot,
    User,
)
from tests.conftest import NOW

BERLIN = ZoneInfo("Europe/Berlin")


def _weekday_ahead() -> dt.date:
    day = NOW.astimezone(BERLIN).date() + dt.timedelta(days=3)
    while day.weekday() > 4:
        day += dt.timedelta(days=1)
    return day


def _post(client, **extra):
    data = {
        "start_time": "15:00",
        "day": _weekday_ahead().isoformat(),
        "minutes": "50",
        "kind": "sprechstunde",
        "modality": "in_person",
        "mode": "manual",
        "on_day": "1",
    }
    data.update(extra)
    return client.post("/termine/neu", data=data)


def test_two_rooms_and_an_occupied_room_is_refused_by_name(app, client, session, login_as):
    demo.load(session, NOW)
    session.commit()
    sommer_practice = session.scalar(select(Practice).where(Practice.slug == "sommer"))
    rooms = {
        r.name: r
        for r in session.scalars(select(Room).where(Room.practice_id == sommer_practice.id))
    }
    assert sorted(rooms) == ["Raum 1", "Raum 2"]
    sommer = session.scalar(select(User).where(User.email == "sommer@demo.ptmatch.de"))
    weber = session.scalar(select(User).where(User.email == "weber@demo.ptmatch.de"))

    login_as(sommer)
    resp = _post(client)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    assert "Raum: Raum 1" in client.get(resp.location).get_data(as_text=True)

    other = app.test_client()
    login_as(weber, other)
    refused = _post(other, room=str(rooms["Raum 1"].id))
    assert refused.status_code == 400
    text = html.unescape(refused.get_data(as_text=True))
    assert re.search(
        r"Kein Raum frei: Raum 1 belegt durch A\. S\., Sprechstunde am .* 15:00–15:50", text
    )
    session.commit()
    assert len(session.scalars(select(Slot)).all()) == 1

    video = _post(other, modality="video", mode="manual")  # Weber offers no video: refused
    assert video.status_code == 400
    taken = _post(other)  # no room named: his own (Raum 2) is free
    assert taken.status_code == 302
    session.commit()
    slots = session.scalars(select(Slot).order_by(Slot.id)).all()
    assert [s.room_id for s in slots] == [rooms["Raum 1"].id, rooms["Raum 2"].id]


def test_a_demo_patient_joins_a_fitting_open_group_in_two_taps(app, client, session, login_as):
    demo.load(session, NOW)
    session.commit()
    group = session.scalar(select(GroupProgram).where(GroupProgram.title == "DBT-Skillsgruppe"))
    clara = session.scalar(select(User).where(User.email == "patient11@demo.ptmatch.de"))
    login_as(clara)

    dashboard = client.get("/patient/").get_data(as_text=True)
    assert "DBT-Skillsgruppe" in dashboard
    page_url = f"/patient/gruppen/offen/{group.id}"
    assert page_url in dashboard
    page = client.get(page_url)  # tap 1
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "8 von 8" in text and "Jetzt anmelden" in text
    enrol_url = f"/patient/gruppen/offen/{group.id}/anmelden"
    assert enrol_url in text
    done = client.post(enrol_url)  # tap 2
    assert done.status_code == 302
    session.commit()
    enrollment = session.scalar(select(GroupEnrollment).where(GroupEnrollment.group_id == group.id))
    assert enrollment.status == EnrollmentStatus.ENROLLED
    session.refresh(group)
    assert group.enrolled_count == 1
    mine = client.get(done.location).get_data(as_text=True)
    assert "DBT-Skillsgruppe" in mine and "angemeldet" in mine.lower()
    # The public listing of the practice shows seats left, no names.
    public = app.test_client().get("/p/sommer/gruppen").get_data(as_text=True)
    assert "7 von 8 Plätzen frei" in public and "Richter" not in public
    assert "/p/sommer/gruppen" in app.test_client().get("/p/sommer").get_data(as_text=True)
