"""Fifty patients accept the same slot at the same moment: exactly one booking, 49 SlotTaken,
no other error. Real commits; threads behind a Barrier on the file SQLite database (and on
PostgreSQL), and on PostgreSQL also several processes with their own engines."""

from __future__ import annotations

import multiprocessing
import os
import threading
import traceback

import pytest
from sqlalchemy import func, select

from ptmatch.db import make_engine, make_session_factory, settings_of
from ptmatch.domain import offers
from ptmatch.domain.errors import SlotTaken
from ptmatch.models import (
    Booking,
    Offer,
    OfferMode,
    OfferStatus,
    OutboxMessage,
    Patient,
    PatientStatus,
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
    make_slot,
    make_therapist,
)

N = 50
PROCESSES = 10


@pytest.fixture(autouse=True)
def _clean_database(engine):
    """The quick cleanup (tests.factories.empty_tables_quickly) instead of TRUNCATE."""
    yield
    empty_tables_quickly(engine)


def _world(sessions) -> tuple[int, list[tuple[int, int]]]:
    """One slot offered to N patients; returns (slot id, [(offer id, user id)])."""
    with sessions() as s:
        practice = make_practice(s)
        slot = make_slot(s, make_therapist(s, practice), offer_mode=OfferMode.MANUAL)
        pairs = []
        for _ in range(N):
            patient = make_patient(s, lists=[practice])
            pairs.append((make_offer(s, slot, patient).id, patient.user_id))
        s.commit()
        return slot.id, pairs


def _attempt(sessions, offer_id: int, user_id: int) -> str:
    """One accept in its own session and transaction, as a request would do it."""
    with sessions() as s:
        try:
            offers.accept_offer(
                s, NOW, s.get(Offer, offer_id), s.get(User, user_id), settings_of(s)
            )
            s.commit()
            return "booked"
        except SlotTaken:
            # the page says "taken" with status 200: the request commits (nothing to commit)
            s.commit()
            return "taken"
        except Exception:  # reported, must not happen
            s.rollback()
            return "error: " + traceback.format_exc(limit=3)


def _check(sessions, slot_id: int, results: list[str]) -> None:
    errors = [r for r in results if r not in ("booked", "taken")]
    assert errors == []
    assert sorted(results) == ["booked"] + ["taken"] * (N - 1)
    with sessions() as s:
        assert s.scalar(select(func.count(Booking.id))) == 1
        assert s.get(Slot, slot_id).status == SlotStatus.BOOKED
        statuses = sorted(s.scalars(select(Offer.status).where(Offer.slot_id == slot_id)))
        assert statuses == sorted([OfferStatus.ACCEPTED] + [OfferStatus.TAKEN] * (N - 1))
        booked = s.scalar(
            select(func.count(Patient.id)).where(Patient.status == PatientStatus.BOOKED)
        )
        assert booked == 1
        kinds = dict(
            s.execute(select(OutboxMessage.kind, func.count()).group_by(OutboxMessage.kind)).all()
        )
        assert kinds == {"booking_confirmed": 1, "offer_taken": N - 1, "practice_outcome_booked": 1}


@pytest.mark.slow
@pytest.mark.parametrize("run", range(3))
def test_fifty_threads_accept_one_slot(sessions, run):
    slot_id, pairs = _world(sessions)
    barrier = threading.Barrier(N)
    results: list[str] = []

    def worker(offer_id, user_id):
        barrier.wait()
        results.append(_attempt(sessions, offer_id, user_id))

    threads = [threading.Thread(target=worker, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    _check(sessions, slot_id, results)


def _process_main(url: str, settings, pairs, barrier, queue) -> None:
    """A worker process: its own engine; one thread per accept, all behind the shared barrier."""
    try:
        engine = make_engine(url, pool_size=3, max_overflow=0)
        sessions = make_session_factory(engine, settings)
        results: list[str] = []

        def worker(offer_id, user_id):
            try:
                barrier.wait(timeout=60)
                results.append(_attempt(sessions, offer_id, user_id))
            except Exception:
                results.append("error: " + traceback.format_exc(limit=3))

        threads = [threading.Thread(target=worker, args=pair) for pair in pairs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        engine.dispose()
        for r in results:
            queue.put(r)
    finally:
        queue.close()
        queue.join_thread()
        # Skip interpreter cleanup: the parent's inherited connections must not be closed from here.
        os._exit(0)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("run", range(3))
def test_fifty_accepts_from_several_processes(sessions, database_url, settings, run):
    slot_id, pairs = _world(sessions)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(N)
    queue = ctx.Queue()
    chunks = [pairs[i::PROCESSES] for i in range(PROCESSES)]
    procs = [
        ctx.Process(target=_process_main, args=(database_url, settings, chunk, barrier, queue))
        for chunk in chunks
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in range(N)]
    for p in procs:
        p.join(timeout=60)
    _check(sessions, slot_id, results)
