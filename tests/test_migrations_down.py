"""Migrations both ways, with data: upgrade an empty database to head, put a row in every
table, downgrade to base (nothing of ours is left), upgrade again (the schema equals the
models). On SQLite in a file of its own; on PostgreSQL in a schema of its own, so the
session's schema that the rest of the suite uses is never touched."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url

import ptmatch.models  # noqa: F401 - fills the metadata
from ptmatch import migrate
from ptmatch.db import Base, is_sqlite, make_engine, make_session_factory
from ptmatch.domain import accounts, api, audit
from ptmatch.models import (
    Booking,
    CallKind,
    CallNote,
    CallTask,
    ClinicalNote,
    EnrollmentStatus,
    GroupEnrollment,
    LoginThrottle,
    OutboxMessage,
    OutboxStatus,
    Postcode,
    RateCounter,
    RecoveryCode,
    ResetRequest,
    SchedulerBeat,
    SlotStatus,
    TokenPurpose,
    search,
)
from ptmatch.notifications import webhooks
from tests.conftest import NOW
from tests.factories import (
    make_calendar_block,
    make_group,
    make_network,
    make_offer,
    make_room,
    make_slot,
)

# Our enum types and sequences in the current schema (PostgreSQL): none after a downgrade.
LEFTOVERS = text(
    "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
    " WHERE n.nspname = current_schema() AND t.typtype = 'e'"
    " UNION ALL"
    " SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
)


@pytest.fixture
def scratch_url(database_url, tmp_path):
    """An empty database of its own: a new SQLite file, or a new PostgreSQL schema that the
    connections of this URL see first (search_path)."""
    if is_sqlite(database_url):
        yield "sqlite:///" + str(tmp_path / "migrations.sqlite")
        return
    schema = f"migrations_test_{os.getpid()}"
    owner = make_engine(database_url)
    with owner.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with owner.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        owner.dispose()


def _fill(session) -> None:
    """At least one row in every table, linked the way the app links them."""
    net = make_network(session)
    therapist, patient, user = net.ther_x, net.a, net.a.user
    offer = make_offer(session, make_slot(session, therapist), patient)
    booked = make_slot(
        session, therapist, start_at=NOW + dt.timedelta(days=2), status=SlotStatus.BOOKED
    )
    room = make_room(session, net.x)
    group = make_group(session, therapist, room_id=room.id)
    make_calendar_block(session, therapist).room_id = room.id
    therapist.default_room_id = room.id
    accounts.issue_user_token(session, NOW, user, TokenPurpose.CHECKIN, dt.timedelta(days=7))
    audit.record(session, NOW, "test.migrations", net.admin, patient_id=patient.id)
    session.add_all(
        [
            RateCounter(key="register:192.0.2.1", window_start=NOW, count=1),
            LoginThrottle(key="client:192.0.2.1", login="", failures=1, last_failed_at=NOW),
            ResetRequest(email="a@example.org", locale="de", created_at=NOW),
            Booking(slot_id=booked.id, patient_id=patient.id, created_at=NOW),
            GroupEnrollment(
                group_id=group.id,
                patient_id=patient.id,
                status=EnrollmentStatus.ENROLLED,
                created_at=NOW,
            ),
            ClinicalNote(
                patient_id=patient.id,
                practice_id=net.x.id,
                author_id=therapist.user_id,
                text="n",
                created_at=NOW,
            ),
            CallNote(patient_id=patient.id, author_id=net.sec_x.id, text="n", created_at=NOW),
            CallTask(
                kind=CallKind.OFFER,
                patient_id=patient.id,
                offer_id=offer.id,
                due_at=NOW,
                dedupe_key="migrations",
                created_at=NOW,
            ),
            RecoveryCode(user_id=net.admin.id, code_hash="0" * 64),
            Postcode(code="53111", place="Bonn", lat=50.7374, lon=7.0982),
            OutboxMessage(
                dedupe_key="migrations",
                kind="offer",
                user_id=user.id,
                to_addr="a@example.org",
                locale="de",
                subject="s",
                body_text="t",
                body_html="",
                message_id="<m@x>",
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=NOW,
                created_at=NOW,
            ),
            SchedulerBeat(name="scheduler", at=NOW, count=1),
        ]
    )
    session.flush()
    # The practice API: a key, an idempotent answer, a webhook endpoint and a delivery.
    api.create_key(session, NOW, therapist.user, "PVS", api.SCOPES)
    api.claim_key(session, NOW, net.x.id, "k", "0" * 64)
    endpoint = api.add_endpoint(
        session, NOW, therapist.user, "https://pvs.example/h", session.info["settings"]
    )
    webhooks.emit(session, NOW, net.x.id, "slot.booked", "slot:1", slot_id=booked.id)
    assert endpoint.id
    session.flush()


def _row_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.scalar(select(func.count()).select_from(t))
            for t in Base.metadata.sorted_tables
        }


def _our_tables(engine) -> set[str]:
    """The models' tables (the free-text search tables of ptmatch.models.search aside)."""
    return {
        name
        for name in inspect(engine).get_table_names()
        if name != "alembic_version" and not search.is_search_object(name, "table")
    }


def _diff(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(
            MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": search.include_object}
            ),
            Base.metadata,
        )


def test_upgrade_downgrade_upgrade_with_data(scratch_url, engine, settings):
    suite_engine, engine = engine, make_engine(scratch_url)
    try:
        migrate.upgrade(scratch_url)
        assert _our_tables(engine) == set(Base.metadata.tables)
        session = make_session_factory(engine, settings)()
        try:
            _fill(session)
            session.commit()
        finally:
            session.close()
        empty = sorted(name for name, n in _row_counts(engine).items() if n == 0)
        assert not empty, f"_fill leaves tables empty (add a row): {empty}"

        migrate.downgrade(scratch_url, "base")
        engine.dispose()  # no cached table or type information survives
        assert _our_tables(engine) == set()
        # The search objects are gone too (SQLite's FTS5 table and its shadow tables).
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert _our_tables(suite_engine) == set(
            Base.metadata.tables
        )  # the suite's schema is untouched
        if not is_sqlite(engine):
            with engine.connect() as conn:
                # Nothing else of ours is left behind either: no enum types, no sequences.
                leftovers = conn.execute(LEFTOVERS).scalars().all()
            assert leftovers == []

        migrate.upgrade(scratch_url)
        engine.dispose()
        assert _our_tables(engine) == set(Base.metadata.tables)
        assert set(_row_counts(engine).values()) == {0}
        assert _diff(engine) == []
    finally:
        engine.dispose()
