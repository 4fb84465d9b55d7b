"""Mail-Ausgang: admins see counts and dead mails with their last error, and can re-send."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ptmatch.models import AuditEvent, OutboxMessage, OutboxStatus, Role
from ptmatch.notifications import delivery
from ptmatch.notifications.senders import MemorySender
from tests.conftest import NOW
from tests.factories import make_user
from tests.notifications.helpers import SmtpServer, enqueue_mail, free_port, fresh


@pytest.fixture
def admin(session):
    user = make_user(session, Role.ADMIN)
    session.commit()
    return user


def _dead_message(session, now, settings) -> OutboxMessage:
    """A mail that failed OUTBOX_MAX_ATTEMPTS times against a server that is down."""
    down = SmtpServer(port=free_port()).settings(settings, OUTBOX_MAX_ATTEMPTS=2)
    row = enqueue_mail(session, now, user=make_user(session), key="dead:1")
    session.commit()
    delivery.deliver_due(session, now, down)
    delivery.deliver_due(session, fresh(session, row.id).next_attempt_at, down)
    row = fresh(session, row.id)
    assert row.status == OutboxStatus.DEAD
    return row


@pytest.mark.parametrize("role", [Role.PATIENT, Role.THERAPIST, Role.SECRETARY])
def test_only_admins(client, session, login_as, role):
    login_as(make_user(session, role))
    session.commit()
    assert client.get("/admin/mail/").status_code == 403
    assert client.post("/admin/mail/1/erneut-senden").status_code == 403


def test_anonymous_goes_to_login(client):
    assert client.get("/admin/mail/").status_code == 302


def test_dead_mail_shown_with_last_error_and_resent(
    client, session, login_as, admin, now, settings
):
    row = _dead_message(session, now, settings)
    enqueue_mail(session, now, user=admin, key="pending:1")
    session.commit()
    login_as(admin)
    page = client.get("/admin/mail/").get_data(as_text=True)
    assert 'data-status="dead">1<' in page and 'data-status="pending">1<' in page
    assert "cannot connect to 127.0.0.1" in page and row.to_addr in page
    assert (
        row.body_text not in page and "https://ptmatch.test/o/abc" not in page
    )  # no mail bodies here

    resp = client.post(f"/admin/mail/{row.id}/erneut-senden")
    assert resp.status_code == 302
    again = fresh(session, row.id)
    assert (again.status, again.attempts, again.claimed_at) == (OutboxStatus.PENDING, 0, None)
    audited = (
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "mail.resend", AuditEvent.actor_id == admin.id)
    )
    assert session.scalar(audited) == 1

    memory = MemorySender()
    assert delivery.deliver_due(session, NOW, settings, sender=memory) >= 1
    assert row.message_id in [m["Message-ID"] for m in memory.sent]  # the same Message-ID as before
    assert fresh(session, row.id).status == OutboxStatus.SENT


def test_resend_of_a_mail_that_is_not_dead_is_refused(client, session, login_as, admin, now):
    row = enqueue_mail(session, now, user=admin, key="pending:2")
    session.commit()
    login_as(admin)
    resp = client.post(f"/admin/mail/{row.id}/erneut-senden", follow_redirects=True)
    assert "Nur unzustellbare Nachrichten" in resp.get_data(as_text=True)
    assert fresh(session, row.id).status == OutboxStatus.PENDING


def test_resend_unknown_message(client, login_as, admin):
    login_as(admin)
    resp = client.post("/admin/mail/999/erneut-senden", follow_redirects=True)
    assert resp.status_code == 200 and "nicht gefunden" in resp.get_data(as_text=True)


def test_resend_all_dead(client, session, login_as, admin, now, settings):
    row = _dead_message(session, now, settings)
    login_as(admin)
    assert client.post("/admin/mail/alle-erneut-senden").status_code == 302
    assert fresh(session, row.id).status == OutboxStatus.PENDING


def test_resend_needs_csrf(client, session, login_as, admin, now, settings):
    row = _dead_message(session, now, settings)
    login_as(admin)
    assert client.post(f"/admin/mail/{row.id}/erneut-senden", csrf=False).status_code == 400
    assert fresh(session, row.id).status == OutboxStatus.DEAD
