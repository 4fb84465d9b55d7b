"""Two senders at once never take the same message (SKIP LOCKED on PostgreSQL; the write
lock of BEGIN IMMEDIATE on SQLite)."""

from __future__ import annotations

import threading

from ptmatch.models import OutboxStatus
from ptmatch.notifications import delivery
from tests.notifications.helpers import enqueue_mail


def test_concurrent_claims_are_disjoint(sessions, session, now, settings):
    for i in range(6):
        enqueue_mail(session, now, to_addr=f"p{i}@example.org", key=f"claim:{i}")
    session.commit()
    first_holds = threading.Event()
    second_started = threading.Event()
    results: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def first():
        try:
            with sessions() as s:
                rows = delivery.lock_due(s, now, settings, 3)  # holds its locks until commit
                results["first"] = [r.id for r in rows]
                first_holds.set()
                second_started.wait(5)
                threading.Event().wait(0.3)  # give the second sender time to run into the held rows
                s.commit()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
            first_holds.set()

    def second():
        try:
            first_holds.wait(5)
            with sessions() as s:
                second_started.set()
                claims = delivery.claim_due(s, now, settings, 6)
                results["second"] = [c.outbox_id for c in claims]
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
            second_started.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(results["first"]) == 3
    assert set(results["first"]).isdisjoint(results["second"])
    assert len(results["first"]) + len(results["second"]) == 6
    session.expire_all()
    assert delivery.claim_due(session, now, settings) == []


def test_claim_marks_sending_and_counts_the_attempt(session, now, settings):
    row = enqueue_mail(session, now, to_addr="a@example.org", key="one")
    session.commit()
    [claim] = delivery.claim_due(session, now, settings)
    session.expire_all()
    assert (claim.outbox_id, claim.attempts, claim.claimed_at) == (row.id, 1, now)
    assert claim.envelope.message["Message-ID"] == row.message_id
    assert (row.status, row.attempts, row.claimed_at) == (OutboxStatus.SENDING, 1, now)
