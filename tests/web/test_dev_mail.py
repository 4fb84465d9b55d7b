"""The dev mailbox: DEBUG only; the one page that shows mail bodies."""

from __future__ import annotations

import dataclasses

import pytest

from ptmatch import create_app
from ptmatch.notifications import delivery
from tests.conftest import CsrfClient
from tests.factories import make_user
from tests.notifications.helpers import enqueue_mail


@pytest.fixture
def dev_client(settings, engine):
    app = create_app(dataclasses.replace(settings, DEBUG=True))
    app.test_client_class = CsrfClient
    yield app.test_client()
    app.extensions["ptmatch_engine"].dispose()


def test_not_there_without_debug(client):
    assert client.get("/dev/mail").status_code == 404


def test_lists_outbox_rows_and_eml_files(dev_client, session, now, settings):
    row = enqueue_mail(session, now, user=make_user(session), key="dev:1")
    session.commit()
    delivery.deliver_due(session, now, settings)
    page = dev_client.get("/dev/mail").get_data(as_text=True)
    assert "Sie haben ein neues Terminangebot" in page and row.to_addr in page
    name = f"20261124-090000-{row.id:08d}.eml"
    assert name in page

    detail = dev_client.get(f"/dev/mail/{row.id}").get_data(as_text=True)
    assert "Sie haben ein neues Terminangebot. Bitte antworten" in detail
    assert '<a href="https://ptmatch.test/o/abc">' in detail
    assert row.message_id.strip("<>") in detail

    eml = dev_client.get(f"/dev/mail/datei/{name}").get_data(as_text=True)
    assert "https://ptmatch.test/o/abc" in eml and "auto-generated" in eml


def test_html_part_is_served_locked_down(dev_client, session, now):
    row = enqueue_mail(session, now, user=make_user(session), key="dev:2")
    session.commit()
    resp = dev_client.get(f"/dev/mail/{row.id}/html")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert "sandbox" in resp.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "name", ["..%2F..%2Fsettings.py", ".hidden.eml", "x.txt", "a%00.eml", "missing.eml"]
)
def test_no_files_outside_the_mail_folder(dev_client, name):
    assert dev_client.get(f"/dev/mail/datei/{name}").status_code == 404


def test_unknown_message_is_404(dev_client):
    assert dev_client.get("/dev/mail/12345").status_code == 404


def test_nav_links_to_the_dev_mailbox(dev_client):
    assert 'href="/dev/mail"' in dev_client.get("/hilfe").get_data(as_text=True)
