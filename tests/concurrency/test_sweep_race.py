"""Two schedulers sweep at the same moment: no offer twice, no mail twice, no error."""

from __future__ import annotations

import datetime as dt
import threading
import traceback

import pytest
from sqlalchemy import func, select

from ptmatch.db import settings_of
from ptmatch.domain import offers
from ptmatch.models import Offer, OfferMode, OfferStatus, OutboxMessage, Slot, SlotStatus
from ptmatch.scheduler.tasks.sweep import sweep
from tests.conftest import NOW
from tests.factories import empty_tables_quickly, make_patient, make_practice, make_therapist

HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
START = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)  # tomorrow 14:00 Berlin


@pytest.fixture(autouse=True)
def _clean_database(engine):
    """The quick cleanup (tests.factories.empty_tables_quickly) instead of TRUNCATE."""
    yield
    empty_tables_quickly(engine)


def _world(sessions) -> list[int]:
    """Four auto slots whose first waves expire at NOW + 4 h, one manual slot past its deadline."""
    with sessions() as s:
        practice = make_practice(s)
        for i in range(30):
            make_patient(s, lists=[practice], added_at=NOW - (200 - i) * dt.timedelta(days=1))
        ids = []
        for i in range(4):
            therapist = make_therapist(s, practice)
            ids.append(
                offers.post_slot(
                    s,
                    NOW,
                    therapist.user,
                    therapist,
                    start_at=START + i * 90 * MINUTE,
                    minutes=50,
                    settings=settings_of(s),
                ).id
            )
        late = make_therapist(s, practice)
        ids.append(
            offers.post_slot(
                s,
                NOW,
                late.user,
                late,
                start_at=NOW + 3 * HOUR,
                minutes=50,
                mode=OfferMode.MANUAL,
                settings=settings_of(s),
            ).id
        )
        s.commit()
        return ids


@pytest.mark.slow
@pytest.mark.parametrize("run", range(3))
def test_two_sweeps_at_once(sessions, settings, run):
    slot_ids = _world(sessions)
    later = NOW + 4 * HOUR  # every first wave has expired; the manual slot is past its deadline
    barrier = threading.Barrier(2)
    errors: list[str] = []

    def scheduler():
        with sessions() as s:
            try:
                barrier.wait()
                sweep(s, later, settings)
                s.commit()
            except Exception:
                s.rollback()
                errors.append(traceback.format_exc(limit=5))

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with sessions() as s:
        pairs = s.execute(select(Offer.slot_id, Offer.patient_id)).all()
        assert len(pairs) == len(set(pairs))
        for slot_id in slot_ids[:4]:
            live = s.scalar(
                select(func.count(Offer.id)).where(
                    Offer.slot_id == slot_id, Offer.status == OfferStatus.PENDING
                )
            )
            assert live == 4  # one second wave, not two
            assert s.get(Slot, slot_id).current_wave == 2
        assert s.get(Slot, slot_ids[4]).status == SlotStatus.UNFILLED
        offer_mails = s.scalar(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "offer")
        )
        assert offer_mails == s.scalar(select(func.count(Offer.id)))
        assert (
            s.scalar(
                select(func.count(OutboxMessage.id)).where(
                    OutboxMessage.kind == "practice_outcome_unfilled"
                )
            )
            == 1
        )
    # And a third run later changes nothing.
    with sessions() as s:
        assert sweep(s, later, settings) == 0
        s.commit()
