"""Callers registered by phone are matched and booked like anyone else; acting for them is
audited with the secretary as actor."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from ptmatch.db import settings_of
from ptmatch.domain import offers, patients, secretariat
from ptmatch.models import (
    AuditEvent,
    EntryStatus,
    Offer,
    OfferMode,
    PatientStatus,
    SlotKind,
    WaitlistEntry,
)
from tests.factories import make_practice, make_secretary, make_therapist

SLOT_START = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)  # Wednesday 14:00 Berlin


@pytest.fixture
def setting(session):
    x = make_practice(session)
    therapist = make_therapist(session, x)
    return {"x": x, "therapist": therapist, "sec": make_secretary(session, [x])}


def _caller(session, now, setting, *, email: str | None, last_name: str = "Anrufer"):
    profile = patients.Profile(
        first_name="Karl",
        last_name=last_name,
        birth_date=dt.date(1970, 1, 1),
        postcode="53111",
        phone="0228 123456",
        windows=[(2, 8 * 60, 20 * 60)],
    )
    caller = secretariat.register_caller(
        session,
        now,
        setting["sec"],
        profile=profile,
        email=email,
        consent_health=True,
        consent_rules=True,
    )
    secretariat.record_intake(
        session, now, setting["sec"], caller, patients.Intake(problems=["depression"])
    )
    secretariat.put_on_list(session, now, setting["sec"], caller, setting["x"].id)
    return caller


def _post(session, now, setting, actor=None) -> list[Offer]:
    slot = offers.post_slot(
        session,
        now,
        actor or setting["therapist"].user,
        setting["therapist"],
        start_at=SLOT_START,
        minutes=50,
        kind=SlotKind.SPRECHSTUNDE,
        mode=OfferMode.AUTO,
        settings=settings_of(session),
    )
    return list(session.scalars(select(Offer).where(Offer.slot_id == slot.id)))


@pytest.mark.parametrize("email", ["karl@example.org", None])
def test_phone_registered_caller_gets_an_offer(session, now, setting, email):
    caller = _caller(session, now, setting, email=email)
    assert [o.patient_id for o in _post(session, now, setting)] == [caller.id]


def test_secretary_books_the_offer_for_the_caller(session, now, setting, settings):
    caller = _caller(session, now, setting, email=None)
    (offer,) = _post(session, now, setting)
    booking = secretariat.answer_offer(
        session, now, setting["sec"], offer, accept=True, settings=settings
    )
    assert booking.patient_id == caller.id
    assert caller.status == PatientStatus.BOOKED
    entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.patient_id == caller.id))
    assert entry.status == EntryStatus.REMOVED
    events = session.execute(
        select(AuditEvent.action, AuditEvent.actor_id).where(
            AuditEvent.patient_id == caller.id,
            AuditEvent.action.in_(("offer.accepted", "booking.created")),
        )
    ).all()
    assert sorted(events) == [
        ("booking.created", setting["sec"].id),
        ("offer.accepted", setting["sec"].id),
    ]


def test_secretary_posts_a_slot_for_a_served_practice(session, now, setting):
    caller = _caller(session, now, setting, email=None)
    offered = _post(session, now, setting, actor=setting["sec"])
    assert [o.patient_id for o in offered] == [caller.id]
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "slot.posted"))
    assert event.actor_id == setting["sec"].id
