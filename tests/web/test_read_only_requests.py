"""Issue 17: a GET of a view marked `reads_only` (the mailed offer page) opens no write
transaction on SQLite, so a burst of readers never queues behind a writer; its POST still
takes the write lock at BEGIN; such a view can never write by accident."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from flask import Flask
from sqlalchemy import event, text

from ptmatch import db
from ptmatch.db import is_sqlite
from ptmatch.models import AuditEvent
from tests.conftest import NOW
from tests.factories import empty_tables_quickly, make_network, make_offer, make_slot

TOKEN = "tok_" + "R" * 40


@pytest.fixture(autouse=True)
def _clean_database(engine):
    yield
    empty_tables_quickly(engine)


@pytest.fixture
def app(settings, engine):
    """Without rate limits: the limiter (issue 16) counts each token-page request in a short
    write of its own before the view runs; what is tested here is the view's transaction."""
    import dataclasses

    from ptmatch import create_app
    from tests.conftest import CsrfClient

    app = create_app(dataclasses.replace(settings, RATE_LIMITS_ENABLED=False))
    app.test_client_class = CsrfClient
    yield app
    app.extensions["ptmatch_engine"].dispose()


@pytest.fixture
def offered(session):
    net = make_network(session)
    slot = make_slot(session, net.ther_x, start_at=NOW + dt.timedelta(hours=30))
    make_offer(session, slot, net.on_x[0], token=TOKEN)
    session.commit()
    return net


def _begins(app):
    seen: list[str] = []
    engine = app.extensions["ptmatch_engine"]

    def hook(_conn, _cursor, statement, *_):
        if statement.upper().startswith("BEGIN"):
            seen.append(statement.upper())

    event.listen(engine, "before_cursor_execute", hook)
    return seen


def test_the_offer_page_get_opens_a_deferred_transaction_and_the_post_an_immediate_one(
    app, client, offered, database_url
):
    if not is_sqlite(database_url):
        pytest.skip("SQLite's BEGIN IMMEDIATE; PostgreSQL has no such thing")
    begins = _begins(app)
    page = client.get(f"/o/{TOKEN}")
    assert page.status_code == 200
    assert begins == ["BEGIN"]
    begins.clear()
    client.post(f"/o/{TOKEN}", data={"answer": "decline"})
    assert "BEGIN IMMEDIATE" in begins


def _transaction_states(app):
    """PostgreSQL: the connection's transaction status after every statement."""
    seen: list[str] = []

    def hook(_conn, cursor, *_):
        seen.append(cursor.connection.info.transaction_status.name)

    event.listen(app.extensions["ptmatch_engine"], "after_cursor_execute", hook)
    return seen


@pytest.mark.postgres
def test_on_postgresql_the_page_and_the_answers_first_look_run_outside_a_transaction(
    app, client, offered
):
    """Autocommit: no BEGIN and no COMMIT round trip for what only reads; the answer itself
    still writes in a transaction."""
    states = _transaction_states(app)
    page = client.get(f"/o/{TOKEN}")
    assert page.status_code == 200
    assert states and set(states) == {"IDLE"}
    states.clear()
    answer = client.post(f"/o/{TOKEN}", data={"answer": "decline"})
    assert answer.status_code == 200
    assert states[0] == "IDLE"  # the look in the read-only session
    assert "INTRANS" in states  # the decline, written in a transaction


def test_the_offer_page_is_served_while_another_connection_holds_the_write_lock(
    app, client, offered, database_url
):
    """With BEGIN IMMEDIATE the GET would wait for the writer (busy timeout: 30 s)."""
    if not is_sqlite(database_url):
        pytest.skip("the single write lock is SQLite's")
    import sqlite3

    writer = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        page = client.get(f"/o/{TOKEN}")
        waited = time.monotonic() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert page.status_code == 200 and waited < 10


def test_a_read_only_view_that_writes_fails_loudly(settings, engine):
    app = Flask(__name__)
    app.config["TESTING"] = True
    db.init_app(app, settings)

    @app.route("/sneaky")
    @db.reads_only
    def sneaky():
        session = db.get_session()
        session.add(AuditEvent(at=NOW, actor_role="system", action="sneaky"))
        session.flush()
        return "written"

    @app.route("/plain")
    def plain():
        return str(db.get_session().scalar(text("SELECT 1")))

    client = app.test_client()
    with pytest.raises(RuntimeError, match="reads_only"):
        client.get("/sneaky")
    assert client.get("/plain").get_data(as_text=True) == "1"
    app.extensions["ptmatch_engine"].dispose()
