"""Delivery against a real SMTP server: headers, languages, outage and backoff, a sender that
dies between sending and marking, dead letters."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from ptmatch.models import OutboxMessage, OutboxStatus, Role
from ptmatch.notifications import delivery, outbox
from ptmatch.notifications.senders import MemorySender, SmtpSender
from tests.factories import make_user
from tests.notifications.helpers import SmtpServer, enqueue_mail, free_port, fresh

MIN = dt.timedelta(minutes=1)


def test_delivers_with_headers(session, now, smtp, smtp_settings):
    user = make_user(session)
    row = enqueue_mail(session, now, user=user, key="offer:1", when=now + dt.timedelta(days=2))
    session.commit()
    assert delivery.deliver_due(session, now, smtp_settings) == 1
    [msg] = smtp.inbox.messages
    assert msg["From"] == smtp_settings.MAIL_FROM
    assert msg["To"] == user.email
    assert msg["Subject"] == "Sie haben ein neues Terminangebot"
    assert msg["Message-ID"] == row.message_id
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] is not None
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "https://ptmatch.test/o/abc" in text and 'href="https://ptmatch.test/o/abc"' in html
    assert "Donnerstag, 26. November 2026, 10:00 Uhr" in text
    stored = fresh(session, row.id)
    assert (stored.status, stored.attempts, stored.sent_at, stored.claimed_at) == (
        OutboxStatus.SENT,
        1,
        now,
        None,
    )


@pytest.mark.parametrize(
    ("locale", "subject", "greeting"),
    [
        ("de", "Erinnerung an Ihren Termin", "Guten Tag,"),
        ("en", "Reminder of your appointment", "Hello,"),
    ],
)
def test_delivers_in_the_recipients_language(
    session, now, smtp, smtp_settings, locale, subject, greeting
):
    user = make_user(session, locale=locale)
    enqueue_mail(
        session,
        now,
        user=user,
        kind="reminder",
        key="reminder:1",
        when=now + dt.timedelta(hours=25),
    )
    session.commit()
    delivery.deliver_due(session, now, smtp_settings)
    [msg] = smtp.inbox.messages
    assert msg["Subject"] == subject
    assert msg["Content-Language"] == locale
    text = msg.get_body(("plain",)).get_content()
    assert text.startswith(greeting)
    assert "25" in text and "11:00" in text  # the appointment, Berlin time, in either language


def test_non_ascii_subject_survives_smtp(session, now, smtp, smtp_settings):
    enqueue_mail(session, now, user=make_user(session), kind="purged", key="purge:1")
    session.commit()
    delivery.deliver_due(session, now, smtp_settings)
    assert smtp.inbox.messages[0]["Subject"] == "Ihre Daten wurden gelöscht"


def test_only_due_messages_are_sent(session, now, smtp, smtp_settings):
    user = make_user(session)
    later = enqueue_mail(session, now + 10 * MIN, user=user, key="later")
    enqueue_mail(session, now, user=user, key="now")
    session.commit()
    assert delivery.deliver_due(session, now, smtp_settings) == 1
    assert fresh(session, later.id).status == OutboxStatus.PENDING


def test_outage_retries_with_backoff_then_delivers_everything_once(session, now, settings):
    server = SmtpServer(port=free_port())  # not started: the server is down
    smtp_settings = server.settings(settings, OUTBOX_BACKOFF_SECONDS=60)
    user = make_user(session)
    rows = [enqueue_mail(session, now, user=user, key=f"outage:{i}") for i in range(3)]
    session.commit()

    assert delivery.deliver_due(session, now, smtp_settings) == 0
    first = [fresh(session, r.id) for r in rows]
    assert {(r.status, r.attempts, r.next_attempt_at) for r in first} == {
        (OutboxStatus.PENDING, 1, now + MIN)
    }
    assert "cannot connect" in first[0].last_error

    assert (
        delivery.deliver_due(session, now + 30 * dt.timedelta(seconds=1), smtp_settings) == 0
    )  # not due yet
    assert fresh(session, rows[0].id).attempts == 1

    assert (
        delivery.deliver_due(session, now + MIN, smtp_settings) == 0
    )  # second failure: wait twice as long
    assert {fresh(session, r.id).next_attempt_at for r in rows} == {now + 3 * MIN}

    server.start()
    try:
        assert delivery.deliver_due(session, now + 3 * MIN, smtp_settings) == 3
        assert delivery.deliver_due(session, now + 60 * MIN, smtp_settings) == 0
    finally:
        server.stop()
    assert sorted(server.inbox.message_ids()) == sorted(
        r.message_id for r in rows
    )  # nothing lost, no duplicate
    assert {(fresh(session, r.id).status, fresh(session, r.id).attempts) for r in rows} == {
        (OutboxStatus.SENT, 3)
    }


def test_refused_recipient_does_not_hold_back_the_others(session, now, smtp, smtp_settings):
    bad = enqueue_mail(session, now, to_addr="gone@example.org", key="bad")
    good = enqueue_mail(session, now, to_addr="here@example.org", key="good")
    smtp.inbox.refuse["gone@example.org"] = "450 4.2.1 mailbox busy"
    session.commit()
    assert delivery.deliver_due(session, now, smtp_settings) == 1
    assert smtp.inbox.message_ids() == [good.message_id]
    assert (fresh(session, bad.id).status, fresh(session, bad.id).attempts) == (
        OutboxStatus.PENDING,
        1,
    )
    assert "450" in fresh(session, bad.id).last_error


def test_permanent_refusal_is_dead_at_once(session, now, smtp, smtp_settings):
    row = enqueue_mail(session, now, to_addr="nobody@example.org", key="dead")
    smtp.inbox.refuse["nobody@example.org"] = "550 5.1.1 no such user"
    session.commit()
    delivery.deliver_due(session, now, smtp_settings)
    stored = fresh(session, row.id)
    assert stored.status == OutboxStatus.DEAD
    assert "550" in stored.last_error and "no such user" in stored.last_error


def test_dead_after_max_attempts(session, now, settings):
    down = SmtpServer(port=free_port()).settings(settings, OUTBOX_MAX_ATTEMPTS=3)
    row = enqueue_mail(session, now, user=make_user(session), key="n-attempts")
    session.commit()
    at = now
    for attempt in (1, 2, 3):
        delivery.deliver_due(session, at, down)
        stored = fresh(session, row.id)
        assert stored.attempts == attempt
        at = stored.next_attempt_at
    assert stored.status == OutboxStatus.DEAD
    assert stored.last_error.startswith("cannot connect to 127.0.0.1")
    assert delivery.deliver_due(session, at + dt.timedelta(days=30), down) == 0  # dead stays dead


class SenderDied(BaseException):
    """The process is killed: not an error the delivery loop could catch and record."""


class DiesAfterSending(SmtpSender):
    def send(self, envelope):
        super().send(envelope)
        raise SenderDied


def test_sender_killed_between_send_and_mark(session, now, smtp, smtp_settings):
    user = make_user(session)
    row = enqueue_mail(session, now, user=user, key="booking:5:confirmed", kind="booking_confirmed")
    session.commit()
    dying = DiesAfterSending(smtp_settings)
    with pytest.raises(SenderDied):
        delivery.deliver_due(session, now, smtp_settings, sender=dying)
    dying.close()  # the dead process's socket
    session.rollback()
    assert fresh(session, row.id).status == OutboxStatus.SENDING  # sent, but never marked

    timeout = dt.timedelta(seconds=smtp_settings.OUTBOX_CLAIM_TIMEOUT_SECONDS)
    assert (
        delivery.deliver_due(session, now + timeout - MIN, smtp_settings) == 0
    )  # claim still stands
    assert delivery.deliver_due(session, now + timeout, smtp_settings) == 1  # reclaimed and re-sent
    assert delivery.deliver_due(session, now + 2 * timeout, smtp_settings) == 0

    assert smtp.inbox.message_ids() == [
        row.message_id,
        row.message_id,
    ]  # at most one duplicate, same id
    stored = fresh(session, row.id)
    assert (stored.status, stored.attempts) == (OutboxStatus.SENT, 2)
    # The flow that caused the mail may run again: the dedupe key keeps the outbox clean.
    assert (
        outbox.enqueue(
            session,
            now + timeout,
            kind="booking_confirmed",
            dedupe_key="booking:5:confirmed",
            link_path="/patient/",
            to_user=user,
        )
        is None
    )
    session.commit()
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_claim_that_expires_on_the_last_attempt_goes_dead(session, now, settings):
    limited = replace(settings, OUTBOX_MAX_ATTEMPTS=1)
    row = enqueue_mail(session, now, user=make_user(session), key="last")
    session.commit()
    claims = delivery.claim_due(session, now, limited)
    assert [c.outbox_id for c in claims] == [row.id]
    # ... the sender vanishes; later a run finds the stale claim:
    later = now + dt.timedelta(seconds=limited.OUTBOX_CLAIM_TIMEOUT_SECONDS)
    memory = MemorySender()
    assert delivery.deliver_due(session, later, limited, sender=memory) == 0
    assert memory.sent == []
    stored = fresh(session, row.id)
    assert stored.status == OutboxStatus.DEAD and "claim expired" in stored.last_error


def test_late_mark_of_a_reclaimed_row_is_ignored(session, now, settings):
    row = enqueue_mail(session, now, user=make_user(session), key="late")
    session.commit()
    [old_claim] = delivery.claim_due(session, now, settings)
    later = now + dt.timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT_SECONDS)
    [new_claim] = delivery.claim_due(session, later, settings)
    assert delivery.mark_sent(session, old_claim, later) is False  # the slow sender lost its claim
    assert delivery.mark_sent(session, new_claim, later) is True
    assert fresh(session, row.id).attempts == 2


def test_backoff_doubles_and_is_capped(settings):
    settings = replace(settings, OUTBOX_BACKOFF_SECONDS=60, OUTBOX_BACKOFF_MAX_SECONDS=600)
    assert [delivery.backoff(n, settings).total_seconds() for n in (1, 2, 3, 4, 5, 6)] == [
        60,
        120,
        240,
        480,
        600,
        600,
    ]


def test_a_broken_sender_fails_one_message_not_the_run(session, now, settings):
    class Flaky(MemorySender):
        def send(self, envelope):
            if envelope.to_addr == "boom@example.org":
                raise RuntimeError("bug")
            super().send(envelope)

    enqueue_mail(session, now, to_addr="boom@example.org", key="boom")
    enqueue_mail(session, now, to_addr="fine@example.org", key="fine")
    session.commit()
    sender = Flaky()
    assert delivery.deliver_due(session, now, settings, sender=sender) == 1
    assert [m["To"] for m in sender.sent] == ["fine@example.org"]


def test_without_smtp_host_mails_become_eml_files(session, now, settings, tmp_path):
    row = enqueue_mail(session, now, user=make_user(session, Role.ADMIN), key="file")
    session.commit()
    assert delivery.deliver_due(session, now, settings) == 1
    files = sorted(p.name for p in (tmp_path / "mail").glob("*.eml"))
    assert files == [f"20261124-090000-{row.id:08d}.eml"]
