"""Issue 19 through the web: rooms and the day plan, the cancel button, the self-enrolment
switch, and the secretariat answering group offers and enrolling a caller."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from sqlalchemy import select

from ptmatch.domain.tokens import new_token
from ptmatch.models import (
    EnrollmentStatus,
    GroupEnrollment,
    GroupProgram,
    GroupStatus,
    Offer,
    OfferStatus,
    OutboxMessage,
    Preference,
    Room,
)
from tests.conftest import NOW
from tests.factories import make_group, make_network, make_room, make_slot


@pytest.fixture
def net(session):
    net = make_network(session, a={"last_name": "Aufderliste"})
    net.ther_x.offers_group = True
    net.a.group_pref = Preference.WANTED
    session.commit()
    return net


def _text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


def _fresh(session) -> None:
    session.rollback()
    session.expire_all()


def test_rooms_page_adds_a_room_and_refuses_a_duplicate(client, login_as, session, net):
    login_as(net.ther_x.user)
    resp = client.post(
        "/praxis/raeume",
        data={"name": "Raum 1", "capacity": "2", "accessible": "y", "note": "EG"},
    )
    assert resp.status_code == 302
    again = client.post("/praxis/raeume", data={"name": "raum 1", "capacity": "2"})
    assert again.status_code == 200
    assert "Einen Raum mit diesem Namen gibt es schon." in _text(again)
    bad = client.post("/praxis/raeume", data={"name": "Raum 9", "capacity": "0"})
    assert bad.status_code == 200 and "Raum 9" not in _text(client.get("/praxis/raeume"))
    _fresh(session)
    (room,) = session.scalars(select(Room)).all()
    assert (room.name, room.accessible, room.practice_id) == ("Raum 1", True, net.x.id)
    client.post("/praxis/raeume/standard", data={"room": str(room.id)})
    _fresh(session)
    assert session.get(type(net.ther_x), net.ther_x.id).default_room_id == room.id


def test_day_plan_shows_initials_and_kind_only(client, login_as, session, net):
    room = make_room(session, net.x, name="Raum 1")
    start = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)
    make_slot(session, net.ther_x, start_at=start, room_id=room.id)
    net.ther_x.user.display_name = "Anna Berg"
    session.commit()
    login_as(net.ther_x.user)
    text = _text(client.get("/praxis/raeume/plan?tag=2026-11-25"))
    assert "Raum 1" in text and "14:00–14:50 · A. B. · Sprechstunde" in text
    assert "Anna Berg" not in text
    assert "Raum 1" in _text(client.get("/praxis/raeume/plan?tag=kaputt"))  # bad date: today


def test_the_cancel_button_needs_a_reason_and_a_confirmation(client, login_as, session, net):
    group = make_group(session, net.ther_x)
    session.add(
        GroupEnrollment(
            group_id=group.id,
            patient_id=net.a.id,
            status=EnrollmentStatus.ENROLLED,
            created_at=NOW,
        )
    )
    group.enrolled_count = 1
    session.commit()
    login_as(net.ther_x.user)
    url = f"/praxis/gruppen/{group.id}/absagen"
    assert "Gruppe absagen" in _text(client.get(f"/praxis/gruppen/{group.id}"))
    client.post(url, data={"reason": "Krankheit"})  # not confirmed
    client.post(url, data={"confirm": "y"})  # no reason
    _fresh(session)
    assert session.get(GroupProgram, group.id).status == GroupStatus.OPEN
    resp = client.post(url, data={"reason": "Krankheit", "confirm": "y"})
    assert resp.status_code == 302
    _fresh(session)
    assert session.get(GroupProgram, group.id).status == GroupStatus.CANCELLED
    assert session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "group_cancelled"))
    assert "Krankheit" in _text(client.get(f"/praxis/gruppen/{group.id}"))


def test_self_enrolment_switch(client, login_as, session, net):
    group = make_group(session, net.ther_x)
    session.commit()
    login_as(net.ther_x.user)
    client.post(f"/praxis/gruppen/{group.id}/selbstanmeldung", data={"on": "0"})
    _fresh(session)
    assert session.get(GroupProgram, group.id).self_enrol is False
    patient = login_as(net.a.user, client)
    assert "Skillsgruppe" not in _text(patient.get("/patient/"))
    resp = patient.post(f"/patient/gruppen/offen/{group.id}/anmelden")
    assert resp.status_code == 302
    _fresh(session)
    assert session.scalar(select(GroupEnrollment)) is None


def test_the_secretariat_enrols_a_caller(client, login_as, session, net):
    group = make_group(session, net.ther_x, self_enrol=False, max_participants=2)
    session.commit()
    login_as(net.sec_x)
    card = _text(client.get(f"/sekretariat/anrufer/{net.a.id}"))
    assert "Skillsgruppe" in card and "Offene Gruppen, die passen" in card
    resp = client.post(f"/sekretariat/anrufer/{net.a.id}/gruppe", data={"group_id": str(group.id)})
    assert resp.status_code == 302
    _fresh(session)
    enrollment = session.scalar(select(GroupEnrollment))
    assert (enrollment.patient_id, enrollment.status) == (net.a.id, EnrollmentStatus.ENROLLED)
    # Twice: a message, nothing changes.
    again = client.post(
        f"/sekretariat/anrufer/{net.a.id}/gruppe",
        data={"group_id": str(group.id)},
        follow_redirects=True,
    )
    assert "bereits angemeldet" in _text(again)
    # A group of a practice the secretariat does not serve is not found.
    _fresh(session)
    other = make_group(session, net.ther_y)
    session.commit()
    foreign = client.post(
        f"/sekretariat/anrufer/{net.a.id}/gruppe",
        data={"group_id": str(other.id)},
        follow_redirects=True,
    )
    assert "gibt es nicht" in _text(foreign)


def test_the_secretariat_accepts_a_group_offer(client, login_as, session, net):
    group = make_group(session, net.ther_x)
    offer = Offer(
        group_id=group.id,
        patient_id=net.a.id,
        wave=1,
        token_hash=new_token()[1],
        status=OfferStatus.PENDING,
        score=0,
        sent_at=NOW,
        expires_at=NOW + dt.timedelta(hours=24),
    )
    session.add(offer)
    offers = [offer]
    session.commit()
    login_as(net.sec_x)
    card = _text(client.get(f"/sekretariat/anrufer/{net.a.id}"))
    assert "Gruppenangebot: Skillsgruppe" in card and "Für die Person annehmen" in card
    client.post(f"/sekretariat/angebote/{offers[0].id}/annehmen")
    _fresh(session)
    assert session.get(Offer, offers[0].id).status == OfferStatus.ACCEPTED
    enrollment = session.scalar(select(GroupEnrollment))
    assert enrollment.status == EnrollmentStatus.ENROLLED


def test_the_secretariat_declines_a_group_offer(client, login_as, session, net):
    group = make_group(session, net.ther_x)
    offer = Offer(
        group_id=group.id,
        patient_id=net.a.id,
        wave=1,
        token_hash=new_token()[1],
        status=OfferStatus.PENDING,
        score=0,
        sent_at=NOW,
        expires_at=NOW + dt.timedelta(hours=24),
    )
    session.add(offer)
    session.commit()
    login_as(net.sec_x)
    client.post(f"/sekretariat/angebote/{offer.id}/ablehnen")
    _fresh(session)
    assert session.get(Offer, offer.id).status == OfferStatus.DECLINED
    assert session.scalar(select(GroupEnrollment)) is None


def test_slot_form_names_the_room_or_the_clash(client, login_as, session, net):
    room = make_room(session, net.x, name="Raum 1")
    make_slot(
        session,
        net.ther_x,
        start_at=dt.datetime(2026, 11, 26, 13, 0, tzinfo=dt.UTC),
        room_id=room.id,
    )
    session.commit()
    login_as(net.sec_x)
    data = {
        "therapist": str(net.ther_x.id),
        "start_time": "14:00",
        "day": "2026-11-27",
        "minutes": "50",
        "kind": "sprechstunde",
        "modality": "in_person",
        "mode": "manual",
        "on_day": "1",
    }
    resp = client.post("/termine/neu", data=data)
    assert resp.status_code == 302
    assert "Raum: Raum 1" in _text(client.get(resp.location))
