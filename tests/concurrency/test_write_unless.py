"""Issue 17: `db.begin_write_unless`. On SQLite a request that may write polls the write lock
and asks, between tries, whether the write has become pointless (a burst's losers: the
winner committed); then it reads instead of queueing. It never gives up a lock it could take,
and never reads instead while the write is still wanted."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ptmatch.db import begin_write_unless, is_sqlite, make_engine


@pytest.fixture
def sqlite_engine(database_url):
    if not is_sqlite(database_url):
        pytest.skip("SQLite's single write lock; PostgreSQL begins as always (tested below)")
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _holder(engine):
    """Another connection that holds the write lock until its `rollback`."""
    conn = engine.connect()
    conn.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the lock is taken
    return conn


def _can_write(engine) -> bool:
    """Could a third connection take the write lock right now (without waiting)?"""
    raw = engine.raw_connection()
    try:
        raw.execute("PRAGMA busy_timeout=0")
        try:
            raw.execute("BEGIN IMMEDIATE")
        except Exception:  # noqa: BLE001 - sqlite3.OperationalError: database is locked
            return False
        raw.execute("ROLLBACK")
        return True
    finally:
        raw.execute("PRAGMA busy_timeout=30000")
        raw.close()


def test_without_contention_it_takes_the_lock_and_never_asks(sqlite_engine, sessions):
    asked = []
    with sessions(bind=sqlite_engine) as session:
        assert begin_write_unless(session, lambda: asked.append(1) or True) is True
        assert not _can_write(sqlite_engine)  # this session holds it
    assert asked == []


def _commit_and_hold_again(holder):
    """The other writer commits a change (data_version moves) and takes the lock again."""
    holder.execute(text("CREATE TABLE IF NOT EXISTS _wu (x INTEGER)"))
    holder.execute(text("INSERT INTO _wu VALUES (1)"))
    holder.commit()
    holder.execute(text("SELECT 1"))


def _scripted_pauses(monkeypatch, script: dict):
    """Replace the 2 ms pause between tries: the n-th pause runs script[n] (if any)."""
    from ptmatch import clock

    calls = []

    def pause(_seconds):
        calls.append(1)
        if len(calls) in script:
            script[len(calls)]()

    monkeypatch.setattr(clock, "pause", pause)
    return calls


def test_while_another_holds_the_lock_it_reads_once_the_write_is_pointless(
    sqlite_engine, sessions, monkeypatch
):
    holder = _holder(sqlite_engine)
    asked = []
    pauses = _scripted_pauses(monkeypatch, {3: lambda: _commit_and_hold_again(holder)})
    try:
        with sessions(bind=sqlite_engine) as session:
            wrote = begin_write_unless(session, lambda: asked.append(len(pauses)) or True)
            # Not asked while nothing was committed; asked once, right after the commit.
            assert wrote is False and asked == [3] and len(pauses) == 3
            assert session.execute(text("SELECT 1")).scalar() == 1  # a read transaction
            assert holder.in_transaction()  # the holder kept its lock all along
    finally:
        holder.rollback()
        holder.execute(text("DROP TABLE IF EXISTS _wu"))
        holder.commit()
        holder.close()


def test_it_takes_the_lock_once_freed_while_the_write_is_still_wanted(
    sqlite_engine, sessions, monkeypatch
):
    holder = _holder(sqlite_engine)
    asked = []
    pauses = _scripted_pauses(
        monkeypatch, {2: lambda: _commit_and_hold_again(holder), 4: holder.rollback}
    )
    try:
        with sessions(bind=sqlite_engine) as session:
            assert begin_write_unless(session, lambda: asked.append(1) and False) is True
            assert asked == [1] and len(pauses) == 4
            assert not _can_write(sqlite_engine)  # now this session holds it
            assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30000  # restored
            session.rollback()
        assert _can_write(sqlite_engine)
    finally:
        holder.execute(text("DROP TABLE IF EXISTS _wu"))
        holder.commit()
        holder.close()


def test_on_postgresql_it_simply_begins(database_url, engine, sessions):
    if is_sqlite(database_url):
        pytest.skip("the PostgreSQL side")
    with sessions() as session:
        assert begin_write_unless(session, lambda: pytest.fail("asked")) is True
        assert session.execute(text("SELECT 1")).scalar() == 1
