"""Issue 16: the outbox claim is a short lease (60 s), renewed while a batch is sending, so a
killed sender's mails move on within a minute and a slow batch is never taken over."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ptmatch.config import Settings
from ptmatch.models import OutboxMessage, OutboxStatus
from ptmatch.notifications import delivery
from ptmatch.notifications.senders import MemorySender
from tests.notifications.helpers import enqueue_mail

STEP = dt.timedelta(seconds=5)  # the outbox job's interval (OUTBOX_SECONDS)


class SenderKilled(BaseException):
    """kill -9: nothing the delivery loop could catch and record."""


class KilledOnFirstSend(MemorySender):
    def send(self, envelope):
        raise SenderKilled


def _statuses(session) -> list[OutboxStatus]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id)))


def test_the_lease_is_a_minute_by_default():
    assert Settings().OUTBOX_CLAIM_TIMEOUT_SECONDS == 60


def test_a_killed_senders_mails_are_delivered_by_the_standby_within_90_s(session, now, settings):
    for i in range(3):
        enqueue_mail(session, now, to_addr=f"k{i}@example.org", key=f"killed:{i}")
    session.commit()
    try:
        delivery.deliver_due(session, now, settings, sender=KilledOnFirstSend())
    except SenderKilled:
        session.rollback()
    assert _statuses(session) == [OutboxStatus.SENDING] * 3  # claimed, then the process died

    standby = MemorySender()
    t, delivered_at = now, None
    while t <= now + dt.timedelta(seconds=90):
        delivery.deliver_due(session, t, settings, sender=standby)
        if len(standby.sent) == 3:
            delivered_at = t
            break
        t += STEP
    assert delivered_at is not None, "not delivered within 90 s"
    assert delivered_at - now <= dt.timedelta(seconds=90)
    assert _statuses(session) == [OutboxStatus.SENT] * 3


def test_the_lease_is_renewed_while_a_slow_batch_is_sending(session, sessions, now, settings):
    """Each mail takes 25 s: the batch takes 150 s, far past one lease. A standby running every
    5 s meanwhile must not take any of them over (no mail twice)."""
    for i in range(6):
        enqueue_mail(session, now, to_addr=f"s{i}@example.org", key=f"slow:{i}")
    session.commit()
    fake = {"t": now}
    standby = MemorySender()

    class Slow(MemorySender):
        def send(self, envelope):
            for _ in range(5):
                fake["t"] += STEP
                with sessions() as other:
                    delivery.deliver_due(other, fake["t"], settings, sender=standby)
            super().send(envelope)

    slow = Slow()
    sent = delivery.deliver_due(session, now, settings, sender=slow, clock=lambda: fake["t"])
    assert fake["t"] - now >= dt.timedelta(seconds=150)
    assert (sent, len(slow.sent), len(standby.sent)) == (6, 6, 0)
    assert _statuses(session) == [OutboxStatus.SENT] * 6


def test_a_claim_taken_over_is_not_sent(session, now, settings):
    row = enqueue_mail(session, now, to_addr="t@example.org", key="taken")
    session.commit()
    [mine] = delivery.claim_due(session, now, settings)
    later = now + dt.timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS)
    [theirs] = delivery.claim_due(session, later, settings)  # my lease ran out
    assert delivery.renew_claims(session, [mine], later) == []
    assert [c.outbox_id for c in delivery.renew_claims(session, [theirs], later)] == [row.id]
