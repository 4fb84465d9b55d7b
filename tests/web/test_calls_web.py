"""Issue 13 over HTTP: the secretariat's call queue (a phone-only caller's offer shows up and
can be booked or passed on) and the list of PTV 11 deadlines at risk."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ptmatch.domain import groups, offers
from ptmatch.models import (
    Booking,
    CallTask,
    EnrollmentStatus,
    GroupEnrollment,
    Offer,
    OfferMode,
    OfferStatus,
    Preference,
    RegisteredVia,
)
from tests.conftest import NOW
from tests.factories import make_group, make_network, make_patient, make_slot


@pytest.fixture
def net(session, settings):
    net = make_network(session)
    caller = make_patient(
        session,
        lists=[net.x],
        registered_via=RegisteredVia.SECRETARIAT,
        consent_recorded_by_id=net.sec_x.id,
        last_name="Ohnemail",
        added_at=NOW - dt.timedelta(days=400),
    )
    caller.user_id = None
    session.flush()
    slot = make_slot(session, net.ther_x, offer_mode=OfferMode.AUTO)
    one = dataclasses.replace(settings, WAVE_RULES=((None, 1, 240),))
    offers.send_next_wave(session, NOW, slot, one)
    session.commit()
    net.caller, net.slot = caller, slot
    return net


def _fresh(session) -> None:
    session.rollback()
    session.expire_all()


def test_the_secretariat_sees_the_call_and_books_it(client, login_as, session, net):
    login_as(net.sec_x)
    page = client.get("/sekretariat/anrufe").get_data(as_text=True)
    assert "Ohnemail" in page and "Praxis X" in page
    task = session.query(CallTask).one()
    resp = client.post(f"/sekretariat/anrufe/{task.id}", data={"outcome": "accepted"})
    assert resp.status_code == 302
    _fresh(session)
    booking = session.query(Booking).filter_by(slot_id=net.slot.id).one()
    assert (booking.patient_id, booking.booked_by_id) == (net.caller.id, net.sec_x.id)
    assert "Ohnemail" not in client.get("/sekretariat/anrufe").get_data(as_text=True)


def test_not_reached_moves_on_and_a_bad_outcome_is_no_500(client, login_as, session, net):
    login_as(net.sec_x)
    task = session.query(CallTask).one()
    bad = client.post(f"/sekretariat/anrufe/{task.id}", data={"outcome": "vielleicht"})
    assert bad.status_code == 302
    resp = client.post(f"/sekretariat/anrufe/{task.id}", data={"outcome": "not_reached"})
    assert resp.status_code == 302
    _fresh(session)
    statuses = {o.patient_id: o.status for o in session.query(Offer).filter_by(slot_id=net.slot.id)}
    assert statuses[net.caller.id] == OfferStatus.WITHDRAWN
    assert statuses[net.a.id] == OfferStatus.PENDING


def test_another_secretariat_gets_a_404(client, login_as, session, net):
    login_as(net.sec_y)
    task = session.query(CallTask).one()
    assert "Ohnemail" not in client.get("/sekretariat/anrufe").get_data(as_text=True)
    resp = client.post(f"/sekretariat/anrufe/{task.id}", data={"outcome": "accepted"})
    assert resp.status_code == 404


def test_deadlines_at_risk_are_listed_without_clinical_data(client, login_as, session, net):
    urgent = make_patient(
        session,
        lists=[net.x],
        urgent=True,
        ptv11_date=dt.date(2026, 11, 24) - dt.timedelta(days=25),
        last_name="Eilig",
        description="GEHEIM-BESCHREIBUNG",
    )
    make_patient(
        session,
        lists=[net.x],
        urgent=True,
        ptv11_date=dt.date(2026, 11, 20),
        last_name="Spaeter",
    )
    session.commit()
    login_as(net.sec_x)
    page = client.get("/sekretariat/fristen").get_data(as_text=True)
    assert "Eilig" in page and "Spaeter" not in page
    assert "27.11.2026" in page  # 3 days left
    assert "GEHEIM" not in page
    assert urgent.phone in page


def test_the_secretariat_takes_a_group_seat_for_a_caller(client, login_as, session, settings):
    """A group seat offered to a phone-only caller shows up in the queue with the group's
    title, and "accepted" takes the seat for them."""
    net = make_network(session, ther_x={"offers_group": True})
    caller = make_patient(
        session,
        lists=[net.x],
        registered_via=RegisteredVia.SECRETARIAT,
        consent_recorded_by_id=net.sec_x.id,
        last_name="Gruppenanruf",
        group_pref=Preference.WANTED,
    )
    caller.user_id = None
    session.flush()
    group = make_group(session, net.ther_x, title="Achtsamkeit", max_participants=1)
    one = dataclasses.replace(settings, WAVE_RULES=((None, 1, 240),))
    groups.send_group_wave(session, NOW, group, one)
    session.commit()
    login_as(net.sec_x)
    page = client.get("/sekretariat/anrufe").get_data(as_text=True)
    assert "Gruppenanruf" in page and "Achtsamkeit" in page
    task = session.query(CallTask).filter_by(group_id=group.id).one()
    resp = client.post(
        f"/sekretariat/anrufe/{task.id}", data={"outcome": "accepted"}, follow_redirects=True
    )
    assert "Gruppenplatz angenommen." in resp.get_data(as_text=True)
    _fresh(session)
    enrollment = session.query(GroupEnrollment).filter_by(group_id=group.id).one()
    assert (enrollment.patient_id, enrollment.status) == (caller.id, EnrollmentStatus.ENROLLED)
    assert "Gruppenanruf" not in client.get("/sekretariat/anrufe").get_data(as_text=True)
