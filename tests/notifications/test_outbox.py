"""Enqueueing: same transaction as the change, idempotent by dedupe key, links from BASE_URL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ptmatch.models import OutboxMessage, OutboxStatus, Role
from ptmatch.notifications import outbox
from ptmatch.notifications.messages import KINDS
from tests.factories import make_user
from tests.notifications.helpers import enqueue_mail


def _count(session) -> int:
    return session.scalar(select(func.count()).select_from(OutboxMessage))


def test_rollback_after_enqueue_leaves_no_message(session, now):
    user = make_user(session)
    session.commit()
    enqueue_mail(session, now, user=user, key="rollback:1")
    session.rollback()
    assert _count(session) == 0


def test_commit_keeps_the_message_pending_and_due(sessions, session, now):
    user = make_user(session)
    row = enqueue_mail(session, now, user=user, key="commit:1")
    session.commit()
    with sessions() as other:
        stored = other.get(OutboxMessage, row.id)
        assert (stored.status, stored.attempts, stored.next_attempt_at) == (
            OutboxStatus.PENDING,
            0,
            now,
        )
        assert stored.to_addr == user.email and stored.user_id == user.id


def test_same_dedupe_key_enqueues_once(session, now):
    user = make_user(session)
    first = enqueue_mail(session, now, user=user, key="offer:7")
    again = outbox.enqueue(
        session, now, kind="offer", dedupe_key="offer:7", link_path="/o/x", to_user=user
    )
    session.commit()
    assert again is None
    assert _count(session) == 1 and first.id is not None


def test_dedupe_key_committed_elsewhere_is_respected(sessions, session, now):
    user = make_user(session)
    session.commit()
    with sessions() as other:
        enqueue_mail(other, now, user=other.get(type(user), user.id), key="race:1")
        other.commit()
    assert (
        outbox.enqueue(
            session, now, kind="offer", dedupe_key="race:1", link_path="/o/x", to_user=user
        )
        is None
    )


def test_message_id_is_unique_and_uses_mail_domain(session, now):
    user = make_user(session)
    a = enqueue_mail(session, now, user=user, key="a")
    b = enqueue_mail(session, now, user=user, key="b")
    assert a.message_id != b.message_id
    assert a.message_id.startswith("<") and a.message_id.endswith("@ptmatch.invalid>")


def test_links_use_base_url(session, now):
    row = enqueue_mail(session, now, user=make_user(session), link_path="/o/tok123")
    assert "https://ptmatch.test/o/tok123" in row.body_text
    assert 'href="https://ptmatch.test/o/tok123"' in row.body_html


def test_external_url_is_cut_to_its_path(session, now):
    row = enqueue_mail(
        session, now, user=make_user(session), link_path="http://evil.example/o/tok?x=1"
    )
    assert "https://ptmatch.test/o/tok?x=1" in row.body_text
    assert "evil.example" not in row.body_text + row.body_html


def test_unknown_kind_is_refused(session, now):
    with pytest.raises(ValueError):
        outbox.enqueue(
            session, now, kind="nope", dedupe_key="k", link_path="/", to_addr="a@example.org"
        )


def test_no_address_no_mail(session, now):
    assert outbox.enqueue(session, now, kind="offer", dedupe_key="k", link_path="/") is None


def test_german_mail_with_date_in_berlin_time(session, now):
    when = dt.datetime(2026, 11, 25, 14, 30, tzinfo=dt.UTC)
    row = enqueue_mail(session, now, user=make_user(session, locale="de"), when=when)
    assert row.subject == "Sie haben ein neues Terminangebot"
    assert "Mittwoch, 25. November 2026, 15:30 Uhr" in row.body_text


def test_english_mail_by_recipient_locale(session, now):
    when = dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)
    row = enqueue_mail(session, now, user=make_user(session, locale="en"), when=when)
    assert (row.locale, row.subject) == ("en", "You have a new appointment offer")
    assert "Wednesday, 1 July 2026, 10:00" in row.body_text
    assert row.body_html.startswith("<!doctype html>") and '<html lang="en">' in row.body_html


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_both_languages(kind):
    for locale in ("de", "en"):
        subject, text, html = outbox.render(kind, locale, "https://ptmatch.test/x")
        assert subject and "https://ptmatch.test/x" in text and "https://ptmatch.test/x" in html


def test_html_part_escapes_the_link():
    _subject, _text, html = outbox.render("offer", "de", 'https://ptmatch.test/o/"><script>')
    assert "<script>" not in html


def test_staff_user_gets_mail_in_own_locale(session, now):
    therapist = make_user(session, Role.THERAPIST, locale="en")
    row = enqueue_mail(
        session, now, user=therapist, kind="practice_outcome_unfilled", key="slot:1:unfilled"
    )
    assert row.subject == "A free appointment remained unfilled"
