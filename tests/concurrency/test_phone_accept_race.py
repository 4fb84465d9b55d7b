"""Issue 13: a phone-only caller's offer is accepted by the secretariat at the very moment a
mail patient accepts the same slot: exactly one booking, the other side gets SlotTaken.
Real commits, two threads behind a Barrier (file SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import traceback

import pytest
from sqlalchemy import func, select

from ptmatch.db import settings_of
from ptmatch.domain import calls, offers, secretariat
from ptmatch.domain.errors import SlotTaken
from ptmatch.models import (
    Booking,
    CallTask,
    Offer,
    OfferMode,
    RegisteredVia,
    Slot,
    SlotStatus,
    User,
)
from tests.conftest import NOW
from tests.factories import (
    empty_tables_quickly,
    make_offer,
    make_patient,
    make_practice,
    make_secretary,
    make_slot,
    make_therapist,
)


@pytest.fixture(autouse=True)
def _clean_database(engine):
    yield
    empty_tables_quickly(engine)


def _world(sessions):
    with sessions() as s:
        practice = make_practice(s)
        secretary = make_secretary(s, [practice])
        slot = make_slot(s, make_therapist(s, practice), offer_mode=OfferMode.MANUAL)
        caller = make_patient(
            s,
            lists=[practice],
            registered_via=RegisteredVia.SECRETARIAT,
            consent_recorded_by_id=secretary.id,
        )
        caller.user_id = None
        s.flush()
        phone_offer = make_offer(s, slot, caller)
        task = calls.open_offer_call(s, NOW, phone_offer, slot)
        mailed = make_patient(s, lists=[practice])
        mail_offer = make_offer(s, slot, mailed)
        s.commit()
        return slot.id, task.id, secretary.id, mail_offer.id, mailed.user_id


def _run(sessions, fn) -> str:
    with sessions() as s:
        try:
            fn(s)
            s.commit()
            return "booked"
        except SlotTaken:
            s.commit()
            return "taken"
        except Exception:  # reported, must not happen
            s.rollback()
            return "error: " + traceback.format_exc(limit=3)


@pytest.mark.parametrize("run", range(3))
def test_phone_and_mail_accept_at_the_same_moment_book_once(sessions, run):
    slot_id, task_id, secretary_id, mail_offer_id, user_id = _world(sessions)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def by_phone(s):
        secretariat.record_call_outcome(
            s, NOW, s.get(User, secretary_id), task_id, "accepted", settings=settings_of(s)
        )

    def by_mail(s):
        offers.accept_offer(
            s, NOW, s.get(Offer, mail_offer_id), s.get(User, user_id), settings_of(s)
        )

    def worker(fn):
        barrier.wait()
        results.append(_run(sessions, fn))

    threads = [threading.Thread(target=worker, args=(fn,)) for fn in (by_phone, by_mail)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == ["booked", "taken"], results
    with sessions() as s:
        assert s.scalar(select(func.count(Booking.id))) == 1
        assert s.get(Slot, slot_id).status == SlotStatus.BOOKED
        assert s.get(CallTask, task_id) is not None
