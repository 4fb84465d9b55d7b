"""PostgreSQL pool: a connection is pinged before use only after it sat idle (issue 17),
and a dead one found so is replaced; one back in use within seconds costs no round trip."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, exc, text

from ptmatch.clock import pause
from ptmatch.db import make_engine

pytestmark = pytest.mark.postgres


def _counting_pings(engine, monkeypatch) -> list[int]:
    pings: list[int] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection):
        pings.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def _backend(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT pg_backend_pid()"))


def _kill(database_url: str, pid: int) -> None:
    killer = create_engine(database_url)
    try:
        with killer.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            for _ in range(100):
                gone = not conn.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                if gone:
                    return
                pause(0.05)
    finally:
        killer.dispose()
    raise AssertionError("the backend did not go away")


def test_a_connection_that_sat_idle_is_pinged_and_replaced_when_dead(database_url, monkeypatch):
    engine = make_engine(database_url, pool_size=1, max_overflow=0, ping_idle_seconds=0.0)
    try:
        pings = _counting_pings(engine, monkeypatch)
        first = _backend(engine)
        assert pings == []  # a brand-new connection is not pinged
        _kill(database_url, first)
        second = _backend(engine)  # no error: the ping found it dead, the pool replaced it
        assert second != first
        assert len(pings) == 1
    finally:
        engine.dispose()


def test_a_connection_back_in_use_within_seconds_is_not_pinged(database_url, monkeypatch):
    engine = make_engine(database_url, pool_size=1, max_overflow=0, ping_idle_seconds=3600)
    try:
        pings = _counting_pings(engine, monkeypatch)
        first = _backend(engine)
        assert [_backend(engine) for _ in range(5)] == [first] * 5
        assert pings == []
        # Without the ping nothing notices a dead connection before it is used: the price.
        _kill(database_url, first)
        with pytest.raises(exc.OperationalError):
            _backend(engine)
        assert _backend(engine) != first  # and the pool replaced it after that one failure
    finally:
        engine.dispose()
