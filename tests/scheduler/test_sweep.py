"""The offer sweep job: registered, expires, sends next waves, closes slots whose time ran out,
tells the practice once, and is idempotent."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from ptmatch.domain import offers
from ptmatch.models import AuditEvent, Offer, OfferStatus, OutboxMessage, SlotStatus
from ptmatch.scheduler.jobs import all_jobs
from ptmatch.scheduler.runner import run_job
from ptmatch.scheduler.tasks.sweep import sweep
from tests.conftest import NOW
from tests.factories import (
    empty_tables_quickly,
    make_offer,
    make_patient,
    make_practice,
    make_slot,
    make_therapist,
)

HOUR = dt.timedelta(hours=1)
START = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _clean_database(engine):
    """The quick cleanup (tests.factories.empty_tables_quickly) instead of TRUNCATE."""
    yield
    empty_tables_quickly(engine)


def test_the_job_is_registered_with_its_interval(settings):
    job = next(j for j in all_jobs() if j.name == "offer_sweep")
    assert job.func is sweep
    assert job.interval(replace(settings, SWEEP_SECONDS=30)) == 30


def test_expired_offers_are_marked_and_audited(session, settings):
    practice = make_practice(session)
    slot = make_slot(session, make_therapist(session, practice), start_at=START)
    offer = make_offer(
        session, slot, make_patient(session, lists=[practice]), expires_at=NOW + HOUR
    )
    assert sweep(session, NOW, settings) == 0
    sweep(session, NOW + HOUR, settings)
    assert offer.status == OfferStatus.EXPIRED
    assert (
        session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "offer.expired")
        )
        == 1
    )


def test_outcome_notice_is_sent_once_even_if_the_inline_one_was_missed(session, settings):
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    slot = make_slot(session, therapist, start_at=START, status=SlotStatus.UNFILLED)
    sweep(session, NOW, settings)
    sweep(session, NOW + HOUR, settings)
    assert slot.outcome_notified_at == NOW
    assert (
        session.scalar(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.kind == "practice_outcome_unfilled"
            )
        )
        == 1
    )


def test_run_job_commits_a_full_cycle(sessions, settings):
    with sessions() as s:
        practice = make_practice(s)
        for i in range(6):
            make_patient(s, lists=[practice], added_at=NOW - (50 - i) * dt.timedelta(days=1))
        therapist = make_therapist(s, practice)
        slot = offers.post_slot(
            s, NOW, therapist.user, therapist, start_at=START, minutes=50, settings=settings
        )
        s.commit()
        slot_id = slot.id
    job = next(j for j in all_jobs() if j.name == "offer_sweep")
    later = NOW + 4 * HOUR
    assert run_job(sessions, job, settings, now=later) > 0
    assert run_job(sessions, job, settings, now=later) == 0
    with sessions() as s:
        statuses = sorted(s.scalars(select(Offer.status).where(Offer.slot_id == slot_id)))
        assert statuses == sorted([OfferStatus.EXPIRED] * 4 + [OfferStatus.PENDING] * 2)
    assert run_job(sessions, job, settings, now=START) > 0  # past the deadline: unfilled
    with sessions() as s:
        assert s.get(offers.Slot, slot_id).status == SlotStatus.UNFILLED
