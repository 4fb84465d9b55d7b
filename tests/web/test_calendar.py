"""Calendar web: the secret feed URL, the therapist's settings page, the patient's .ics download."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from icalendar import Calendar

from ptmatch.domain import calendar
from ptmatch.models import Role, Therapist
from tests.factories import make_patient, make_therapist, make_user
from tests.notifications.helpers import make_booking, make_slot, post_with_host


@pytest.fixture
def therapist(session):
    therapist = make_therapist(session)
    session.commit()
    return therapist


def _feed_token(html: str) -> str:
    match = re.search(r"https://ptmatch\.test/kalender/([A-Za-z0-9_-]+)\.ics", html)
    assert match, "no feed URL on the page"
    return match.group(1)


def test_feed_with_valid_token(client, session, therapist, now):
    make_slot(session, therapist, start_at=now + dt.timedelta(days=1))
    token = calendar.rotate_feed_token(session, therapist)
    session.commit()
    resp = client.get(f"/kalender/{token}.ics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/calendar"
    assert resp.headers["Cache-Control"] == "no-store"
    assert len(list(Calendar.from_ical(resp.data).walk("VEVENT"))) == 1


@pytest.mark.parametrize("token", ["unknown", "a" * 32, "x" * 300])
def test_unknown_feed_token_is_404(client, therapist, token):
    assert client.get(f"/kalender/{token}.ics").status_code == 404


def test_settings_page_needs_a_therapist(client, session, login_as):
    assert client.get("/praxis/kalender").status_code == 302  # to login
    for role in (Role.PATIENT, Role.SECRETARY, Role.ADMIN):
        login_as(make_user(session, role))
        session.commit()
        assert client.get("/praxis/kalender").status_code == 403


def test_create_rotate_and_disable_the_feed(client, session, therapist, login_as):
    login_as(therapist.user)
    assert "Es ist kein Kalender-Link eingerichtet" in client.get("/praxis/kalender").get_data(
        as_text=True
    )

    first = _feed_token(client.post("/praxis/kalender/neu").get_data(as_text=True))
    assert client.get(f"/kalender/{first}.ics").status_code == 200
    page = client.get("/praxis/kalender").get_data(as_text=True)
    assert "Aktiv" in page and first not in page  # shown once only

    forged = post_with_host(client, "/praxis/kalender/neu", "evil.example")
    assert forged.status_code == 200 and "evil.example" not in forged.get_data(as_text=True)
    second = _feed_token(forged.get_data(as_text=True))
    assert client.get(f"/kalender/{first}.ics").status_code == 404
    assert client.get(f"/kalender/{second}.ics").status_code == 200

    assert client.post("/praxis/kalender/aus").status_code == 302
    assert client.get(f"/kalender/{second}.ics").status_code == 404
    assert session.get(Therapist, therapist.id).calendar_token_hash is None


def test_rotate_needs_csrf(client, therapist, login_as):
    login_as(therapist.user)
    assert client.post("/praxis/kalender/neu", csrf=False).status_code == 400


def test_patient_downloads_own_booking(client, session, login_as, therapist, now):
    patient = make_patient(session)
    booking = make_booking(session, patient, therapist, start_at=now + dt.timedelta(days=3))
    session.commit()
    login_as(patient.user)
    resp = client.get(f"/patient/termine/{booking.id}.ics")
    assert resp.status_code == 200 and resp.mimetype == "text/calendar"
    assert "attachment" in resp.headers["Content-Disposition"]
    [event] = Calendar.from_ical(resp.data).walk("VEVENT")
    assert event.decoded("dtstart").astimezone(dt.UTC) == booking.slot.start_at
    assert str(event["uid"]).endswith("@ptmatch.test")


def test_patient_cannot_download_someone_elses_booking(client, session, login_as, therapist, now):
    booking = make_booking(
        session, make_patient(session), therapist, start_at=now + dt.timedelta(days=3)
    )
    other = make_patient(session)
    session.commit()
    login_as(other.user)
    assert client.get(f"/patient/termine/{booking.id}.ics").status_code == 404
    assert client.get("/patient/termine/99999.ics").status_code == 404


def test_booking_download_is_for_patients_only(client, session, login_as, therapist, now):
    booking = make_booking(
        session, make_patient(session), therapist, start_at=now + dt.timedelta(days=3)
    )
    session.commit()
    login_as(therapist.user)
    assert client.get(f"/patient/termine/{booking.id}.ics").status_code == 403
