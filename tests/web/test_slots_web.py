"""Freie Termine: the list with live state, posting from a phone (quick day buttons, repeat
last), refusals at the field, the manual pick with reasons, cancel / attended / release, the
secretariat's view, and who may not come in."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from ptmatch.db import settings_of
from ptmatch.domain import offers
from ptmatch.models import (
    AuditEvent,
    BookingStatus,
    Offer,
    OfferMode,
    OfferStatus,
    Role,
    Slot,
    SlotStatus,
)
from tests.conftest import NOW
from tests.factories import (
    empty_tables_quickly,
    make_network,
    make_offer,
    make_patient,
    make_slot,
    make_therapist,
    make_user,
)

START = dt.datetime(2026, 11, 26, 13, 0, tzinfo=dt.UTC)  # Thursday 14:00 Berlin
TOMORROW = "2026-11-25"


@pytest.fixture(autouse=True)
def _clean_database(engine):
    """The quick cleanup (tests.factories.empty_tables_quickly) instead of TRUNCATE."""
    yield
    empty_tables_quickly(engine)


@pytest.fixture
def net(session):
    """The network; X's therapist works 45-minute sessions and has three patients waiting
    (90, 89 and 88 days; the first urgent)."""
    waited = [NOW - (90 - i) * dt.timedelta(days=1) for i in range(3)]
    net = make_network(
        session,
        ther_x={"session_minutes": 45, "specialties": ("depression",)},
        a={"added_at": waited[0], "urgent": True},
        more_on_x=[{"added_at": waited[1]}, {"added_at": waited[2]}],
    )
    session.commit()
    return net


def _fresh(session):
    session.commit()
    session.expire_all()
    return session


def _post_slot(client, **data):
    form = {
        "start_time": "14:00",
        "minutes": "50",
        "kind": "sprechstunde",
        "modality": "in_person",
        "mode": "auto",
        "tomorrow": "Morgen",
    }
    form.update(data)
    return client.post("/termine/neu", data=form)


def test_post_tomorrow_sends_the_first_wave(client, session, login_as, net):
    login_as(net.ther_x.user)
    response = _post_slot(client)
    slot = _fresh(session).scalar(select(Slot))
    assert response.status_code == 302 and response.headers["Location"].endswith(
        f"/termine/{slot.id}"
    )
    assert slot.start_at == dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)  # 14:00 Berlin
    assert slot.status == SlotStatus.OFFERING and slot.offer_mode == OfferMode.AUTO
    assert session.scalar(select(func.count(Offer.id))) == 3


def test_the_form_is_prefilled_from_the_profile(client, login_as, net):
    login_as(net.ther_x.user)
    html = client.get("/termine/neu").get_data(as_text=True)
    assert 'value="45"' in html  # the therapist's session length
    assert 'value="11:00"' in html  # the next full hour (NOW is 10:00 Berlin)
    assert "Heute" in html and "Morgen" in html


def test_repeat_last_slot(client, session, login_as, net):
    make_slot(
        session,
        net.ther_x,
        start_at=START + dt.timedelta(hours=3),
        minutes=60,
        offer_mode=OfferMode.MANUAL,
    )
    session.commit()
    login_as(net.ther_x.user)
    html = client.get("/termine/neu?wie=letzter").get_data(as_text=True)
    assert 'value="17:00"' in html and 'value="60"' in html
    assert re.search(r'checked[^>]*value="manual"|value="manual"[^>]*checked', html)


def test_past_time_is_refused_at_the_field(client, session, login_as, net):
    login_as(net.ther_x.user)
    response = _post_slot(client, start_time="08:00", tomorrow="", today="Heute")
    assert response.status_code == 400
    assert "Der Termin liegt in der Vergangenheit." in response.get_data(as_text=True)
    assert _fresh(session).scalar(select(func.count(Slot.id))) == 0


def test_clash_is_refused_and_named(client, session, login_as, net):
    make_slot(session, net.ther_x, start_at=dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC))
    session.commit()
    login_as(net.ther_x.user)
    response = _post_slot(client, start_time="14:30")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Überschneidung" in html and "14:00 bis 14:50" in html


def test_date_picker_needs_a_date(client, login_as, net):
    login_as(net.ther_x.user)
    response = _post_slot(client, tomorrow="", on_day="x", day="")
    assert response.status_code == 400 and "Bitte ein Datum wählen." in response.get_data(
        as_text=True
    )


def test_list_shows_live_state_and_the_name_only_once_booked(
    client, session, login_as, net, settings
):
    patients = net.on_x
    slot = offers.post_slot(
        session, NOW, net.ther_x.user, net.ther_x, start_at=START, minutes=50, settings=settings
    )
    session.commit()
    login_as(net.ther_x.user)
    html = client.get("/termine/").get_data(as_text=True)
    assert "angeboten: 3" in html and "offen: 3" in html
    assert patients[0].last_name not in html
    offer = session.scalar(select(Offer).where(Offer.patient_id == patients[1].id))
    offers.decline_offer(session, NOW, offer, patients[1].user, settings=settings)
    offers.accept_offer(
        session,
        NOW,
        session.scalar(select(Offer).where(Offer.patient_id == patients[0].id)),
        patients[0].user,
        settings=settings,
    )
    session.commit()
    html = client.get("/termine/").get_data(as_text=True)
    assert f"Gebucht von {patients[0].full_name}" in html
    detail = client.get(f"/termine/{slot.id}").get_data(as_text=True)
    # Issue 13: the slot page names the offered patients of the practice's own list (pool
    # patients stay pseudonymous: tests/web/test_slot_offers_page.py).
    assert patients[0].full_name in detail and patients[2].full_name in detail


def test_manual_mode_lists_candidates_with_reasons_and_sends(client, session, login_as, net):
    slot = make_slot(session, net.ther_x, start_at=START, offer_mode=OfferMode.MANUAL)
    pool_patient = make_patient(session, pool=True)
    session.commit()
    login_as(net.ther_x.user)
    html = client.get(f"/termine/{slot.id}").get_data(as_text=True)
    first = net.on_x[0]
    assert (
        first.full_name in html
        and "Dringlich (PTV 11)" in html
        and "Wartet seit 3 Monat(en)" in html
    )
    assert pool_patient.full_name not in html  # the pool is pseudonymous
    response = client.post(
        f"/termine/{slot.id}/senden", data={"patients": [str(first.id), str(pool_patient.id)]}
    )
    assert response.status_code == 302
    sent = _fresh(session).scalars(select(Offer.patient_id).where(Offer.slot_id == slot.id)).all()
    assert sorted(sent) == sorted([first.id, pool_patient.id])
    assert (
        session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "slot.candidates_viewed")
        )
        == 1
    )


def test_cancel_slot_withdraws_offers(client, session, login_as, net, settings):
    slot = offers.post_slot(
        session, NOW, net.ther_x.user, net.ther_x, start_at=START, minutes=50, settings=settings
    )
    session.commit()
    login_as(net.ther_x.user)
    assert client.post(f"/termine/{slot.id}/absagen").status_code == 302
    assert _fresh(session).get(Slot, slot.id).status == SlotStatus.CANCELLED
    assert set(session.scalars(select(Offer.status))) == {OfferStatus.WITHDRAWN}


def _booked(session, net):
    slot = make_slot(session, net.ther_x, start_at=START)
    patient = net.on_x[0]
    booking = offers.accept_offer(
        session, NOW, make_offer(session, slot, patient), patient.user, settings_of(session)
    )
    session.commit()
    return slot, booking


def test_mark_attended_after_the_start(client, session, login_as, clock, net):
    slot, booking = _booked(session, net)
    login_as(net.ther_x.user)
    client.post(f"/termine/{slot.id}/erschienen")
    assert (
        _fresh(session).get(type(booking), booking.id).status == BookingStatus.CONFIRMED
    )  # not yet
    clock.set(START + dt.timedelta(minutes=55))
    login_as(net.ther_x.user)  # two days on, the old session has expired
    client.post(f"/termine/{slot.id}/nicht-erschienen")
    assert _fresh(session).get(type(booking), booking.id).status == BookingStatus.NO_SHOW


def test_release_as_no_fit(client, session, login_as, net):
    slot, booking = _booked(session, net)
    login_as(net.ther_x.user)
    client.post(f"/termine/{slot.id}/freigeben")
    assert _fresh(session).get(type(booking), booking.id).status == BookingStatus.RELEASED


def test_other_practices_slots_are_not_found(client, session, login_as, net):
    slot = make_slot(session, net.ther_y, start_at=START)
    session.commit()
    login_as(net.ther_x.user)
    assert client.get(f"/termine/{slot.id}").status_code == 404
    assert client.post(f"/termine/{slot.id}/absagen").status_code == 404


@pytest.mark.parametrize("role", [Role.PATIENT, Role.ADMIN])
def test_other_roles_are_refused(client, session, login_as, role):
    user = make_user(session, role)
    session.commit()
    login_as(user)
    assert client.get("/termine/").status_code == 403


def test_unapproved_therapist_is_refused(client, session, login_as):
    therapist = make_therapist(session, approved_at=None)
    session.commit()
    login_as(therapist.user)
    assert client.get("/termine/neu").status_code == 403


def test_secretary_posts_for_a_served_practice_and_sees_no_clinical_reasons(
    client, session, login_as, net
):
    secretary = net.sec_x
    other = make_slot(session, net.ther_y, start_at=START)
    session.commit()
    login_as(secretary)
    html = client.get("/termine/neu").get_data(as_text=True)
    assert net.x.name in html
    response = _post_slot(client, therapist=str(net.ther_x.id), mode="manual")
    assert response.status_code == 302
    slot = _fresh(session).scalar(select(Slot).where(Slot.practice_id == net.x.id))
    assert slot.created_by_id == secretary.id
    detail = client.get(f"/termine/{slot.id}").get_data(as_text=True)
    assert net.on_x[0].full_name in detail
    assert "Dringlich" not in detail and "Schwerpunkt" not in detail
    assert client.get(f"/termine/{other.id}").status_code == 404


@pytest.mark.parametrize(("role", "clinical"), [("therapist", True), ("secretary", False)])
def test_manual_pick_shows_clinical_reasons_only_to_the_practice(
    client, session, login_as, net, role, clinical
):
    """The reasons drawn from the intake (urgency, problem areas) are clinical data: the
    practice's therapist sees them on the manual pick, the secretariat serving it never."""
    slot = make_slot(session, net.ther_x, start_at=START, offer_mode=OfferMode.MANUAL)
    pool = make_patient(
        session, pool=True, first_name="Pola", added_at=NOW - dt.timedelta(days=400)
    )
    user = net.ther_x.user if role == "therapist" else net.sec_x
    session.commit()
    login_as(user)
    html = client.get(f"/termine/{slot.id}").get_data(as_text=True)
    assert net.on_x[0].full_name in html  # the practice's own list, by name
    assert pool.full_name not in html
    assert ("Dringlich" in html) is clinical and ("Schwerpunkt" in html) is clinical


def test_quick_form_on_the_list_posts_in_one_tap(client, session, login_as, net):
    login_as(net.ther_x.user)
    html = client.get("/termine/").get_data(as_text=True)
    assert (
        'name="tomorrow"' in html
        and 'value="11:00"' in html
        and 'name="minutes" value="45"' in html
    )
    response = client.post(
        "/termine/neu",
        data={
            "start_time": "11:00",
            "minutes": "45",
            "kind": "sprechstunde",
            "modality": "in_person",
            "mode": "auto",
            "tomorrow": "1",
        },
    )
    assert response.status_code == 302
    slot = _fresh(session).scalar(select(Slot))
    assert slot.start_at == dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC) and slot.minutes == 45
