"""Links in mails come from BASE_URL, never from the request's Host header."""

from __future__ import annotations

from sqlalchemy import select

from ptmatch.domain.accounts import send_reset_mails
from ptmatch.models import OutboxMessage
from tests.conftest import NOW
from tests.factories import make_user
from tests.notifications.helpers import post_with_host


def test_forged_host_header_does_not_change_links(client, session, settings):
    user = make_user(session)
    session.commit()
    resp = post_with_host(client, "/auth/reset", "evil.example", data={"email": user.email})
    assert resp.status_code == 302
    send_reset_mails(session, NOW, settings)  # the scheduler writes the mail
    [row] = session.scalars(select(OutboxMessage).where(OutboxMessage.user_id == user.id))
    assert row.kind == "password_reset"
    assert "https://ptmatch.test/auth/set-password/" in row.body_text
    assert 'href="https://ptmatch.test/auth/set-password/' in row.body_html
    assert "evil.example" not in row.body_text + row.body_html
    assert "localhost" not in row.body_text + row.body_html
