"""Database: declarative base, engine factory with SQLite pragmas, one session per request or job.

SQLite: WAL, busy_timeout and foreign keys on every connection, and every transaction
opened with BEGIN IMMEDIATE (SQLAlchemy's documented pysqlite recipe), so two writers
queue on the busy timeout instead of failing with "database is locked" when a read
transaction tries to upgrade to a write. The one exception is a read-only request: a GET or HEAD of
a view marked with `reads_only` (many GETs write an audit event, so it is opt-in). Its
session is bound with the execution option ``READ_ONLY`` and opens a plain deferred
``BEGIN``, so such page views never queue for the single write lock (WAL readers do not
block the writer, nor it them). Should such a session ever try to write, its flush fails
loudly instead of racing for the lock.
"""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import DateTime, MetaData, create_engine, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from ptmatch.config import Settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)

    def __repr__(self) -> str:
        """`<Offer 12 pending slot=3 patient=7>`: id, status and references only, so a failing
        assertion is readable and no personal field ever lands in a log or a traceback. Reads
        only what is already loaded (never a lazy load or a refresh)."""
        loaded = self.__dict__
        parts = [type(self).__name__, str(loaded.get("id", "?"))]
        status = loaded.get("status")
        if status is not None:
            parts.append(str(getattr(status, "value", status)))
        for column in self.__table__.columns:
            if (
                column.name.endswith("_id")
                and column.foreign_keys
                and loaded.get(column.key) is not None
            ):
                parts.append(f"{column.name[:-3]}={loaded[column.key]}")
        return "<" + " ".join(parts) + ">"


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


def is_sqlite(url_or_engine) -> bool:
    url = str(getattr(url_or_engine, "url", url_or_engine))
    return url.startswith("sqlite")


BUSY_TIMEOUT_SECONDS = 30  # SQLite: how long a writer waits for the write lock
READ_ONLY = "ptmatch_read_only"  # execution option: this connection's transactions only read
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def reads_only(view):
    """Mark a view whose GET/HEAD only reads: its session opens no write transaction."""
    setattr(view, READ_ONLY, True)
    return view


def make_engine(url: str, *, immediate: bool = True, **kwargs) -> Engine:
    """`immediate=False` (tests' setup sessions only) keeps SQLite's deferred BEGIN; so does
    a connection with the execution option READ_ONLY (see `read_only`)."""
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            # Let SQLAlchemy, not pysqlite, emit BEGIN (see the "begin" hook below).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            options = conn.get_execution_options()
            deferred = not immediate or options.get(READ_ONLY, False)
            pointless = options.get(WRITE_UNLESS)
            if not deferred and pointless is not None:
                _begin_write_unless(conn, pointless)
            else:
                conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

        return engine
    ping_after = kwargs.pop("ping_idle_seconds", PING_IDLE_SECONDS)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        ping_when_idle(engine, ping_after)
    return engine


PING_IDLE_SECONDS = 10.0
_RETURNED = "ptmatch_returned_at"  # the pool record's info: when it was last checked in


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only when it sat idle for `idle_seconds`.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: one more round trip per request
    (measured: 6-9 % of the offer page's throughput on PostgreSQL). A connection handed back
    and taken again within seconds is alive as far as anybody can tell; one that sat in the
    pool — over a night, across a database restart or a firewall's idle timeout — gets the
    ping, and a dead one is replaced (the pool retries the checkout on
    ``DisconnectionError``). What is lost: a restart within the last `idle_seconds` of a
    connection's use fails the one request that next takes it, and that failure makes the
    pool replace all its connections older than it."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record):
        record.info[_RETURNED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, _proxy):
        returned = record.info.get(_RETURNED)
        if returned is None or time.monotonic() - returned <= idle_seconds:
            return  # brand new, or back in use within seconds
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as err:
            raise exc.DisconnectionError("a pooled connection went away while idle") from err


WRITE_UNLESS = "ptmatch_write_unless"  # execution option: see begin_write_unless
LOCK_POLL_SECONDS = 0.001  # the first pause; doubled up to LOCK_POLL_MAX_SECONDS
LOCK_POLL_MAX_SECONDS = 0.008


def begin_write_unless(session: Session, pointless) -> bool:
    """Begin `session`'s transaction for a request that may write, unless meanwhile a write
    has become pointless. On SQLite the write lock is polled (every 1, 2, 4, then 8 ms);
    whenever another connection has committed since (``PRAGMA data_version``), `pointless()`
    is asked (a fresh read on another connection); once it says True, a read transaction
    begins instead. A request that only finds its answer too late (a burst's losers) then
    leaves as soon as the winner commits, instead of queueing for the lock behind the busy
    handler's back-off sleeps (up to 100 ms each). PostgreSQL: a plain BEGIN.

    True: the transaction may write; False: `pointless()` said so, and it only reads."""
    said: list[bool] = []

    def ask() -> bool:
        if pointless():
            said.append(True)
            return True
        return False

    session.connection(execution_options={WRITE_UNLESS: ask})
    return not said


def _begin_write_unless(conn, pointless) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from ptmatch import clock

    raw = conn.connection.dbapi_connection  # the polls go to sqlite3 directly: they are many
    raw.execute("PRAGMA busy_timeout=0")
    try:
        seen = raw.execute("PRAGMA data_version").fetchone()[0]
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the first try, as every writer's
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig):
                raise
        waited, pause = 0.0, LOCK_POLL_SECONDS
        while True:
            clock.pause(pause)
            waited += pause
            pause = min(pause * 2, LOCK_POLL_MAX_SECONDS)
            # Ask only when another connection has committed meanwhile (the database's
            # data_version moved), and before trying the freed lock: waiting costs no reads,
            # and the losers of a burst leave without taking the lock in turn.
            now_seen = raw.execute("PRAGMA data_version").fetchone()[0]
            if now_seen != seen:
                seen = now_seen
                if pointless():
                    raw.execute("BEGIN")
                    return
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or waited >= BUSY_TIMEOUT_SECONDS:
                    raise
    finally:
        raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")


def read_only(engine: Engine) -> Engine:
    """The same engine (and pool) whose transactions say they only read: a deferred BEGIN
    on SQLite; on PostgreSQL no transaction at all (autocommit). PostgreSQL runs READ
    COMMITTED, where every statement sees a snapshot of its own inside a transaction as
    much as outside, so a reader loses nothing and saves the BEGIN and COMMIT round trips
    (an offer page: one round trip under load, where it was four with the pool's ping
    at every checkout; see `ping_when_idle`)."""
    options: dict = {READ_ONLY: True}
    if not is_sqlite(engine):
        options["isolation_level"] = "AUTOCOMMIT"
    return engine.execution_options(**options)


def make_session_factory(engine: Engine, settings: Settings) -> sessionmaker[Session]:
    """Sessions that carry the settings they were made with (`settings_of`): the outbox
    addresses mails from them (BASE_URL, MAIL_FROM), so no module keeps settings of its own."""
    return sessionmaker(
        bind=engine, expire_on_commit=False, autoflush=True, info={"settings": settings}
    )


def settings_of(session: Session) -> Settings:
    """The settings of the edge (request, job, command) that made this session."""
    try:
        return session.info["settings"]
    except KeyError:
        raise RuntimeError(
            "this session carries no settings: make it with "
            "ptmatch.db.make_session_factory(engine, settings)"
        ) from None


def init_app(app, settings: Settings) -> None:
    """Give the app an engine and a session per request, committed once at the edge."""
    from flask import g

    engine = make_engine(settings.DATABASE_URL)
    app.extensions["ptmatch_engine"] = engine
    app.extensions["ptmatch_sessions"] = make_session_factory(engine, settings)
    read_sessions = make_session_factory(read_only(engine), settings)
    event.listen(read_sessions, "before_flush", _refuse_writes)
    app.extensions["ptmatch_read_sessions"] = read_sessions

    @app.after_request
    def _commit(response):
        session = g.pop("db_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _cleanup(_exc):
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()


def _refuse_writes(session, _context, _instances) -> None:
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a view marked reads_only tried to write")


def is_read_only_request() -> bool:
    from flask import current_app, request

    view = current_app.view_functions.get(request.endpoint or "")
    return request.method in READ_ONLY_METHODS and getattr(view, READ_ONLY, False)


def read_session() -> Session:
    """A session of its own that only reads (SQLite: a deferred BEGIN, no write lock), for a
    write request's first look; the caller closes it (``with read_session() as s:``)."""
    from flask import current_app

    return current_app.extensions["ptmatch_read_sessions"]()


def get_session() -> Session:
    """The request's session (created on first use); a read-only one (no write lock on
    SQLite) for a GET of a view marked `reads_only`."""
    from flask import current_app, g

    if "db_session" not in g:
        kind = "ptmatch_read_sessions" if is_read_only_request() else "ptmatch_sessions"
        g.db_session = current_app.extensions[kind]()
    return g.db_session


# --- events published on commit (metrics) ---------------------------------------------------

_EVENTS = "ptmatch_events"


def note_event(session: Session, name: str) -> None:
    """Remember that `name` happened in this transaction (an audit action, "mail.sent" ...).
    Listeners installed with `publish_events_on_commit` hear it only if the transaction
    commits: a rolled-back savepoint or transaction takes its events with it."""
    tx = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_EVENTS, []).append((name, tx))


def _within(tx, ended) -> bool:
    while tx is not None:
        if tx is ended:
            return True
        tx = tx.parent
    return False


def publish_events_on_commit(sessions: sessionmaker[Session], callback) -> None:
    """Call `callback(names)` after each commit of a session from `sessions` with the events
    noted in the committed transaction (none of a savepoint that was rolled back)."""

    @event.listens_for(sessions, "after_commit")
    def _published(session):
        noted = session.info.pop(_EVENTS, None)
        if noted:
            callback([name for name, _tx in noted])

    @event.listens_for(sessions, "after_soft_rollback")
    def _dropped(session, previous_transaction):
        noted = session.info.get(_EVENTS)
        if not noted:
            return
        if previous_transaction.parent is None:  # the whole transaction
            session.info.pop(_EVENTS, None)
        else:  # a savepoint
            session.info[_EVENTS] = [e for e in noted if not _within(e[1], previous_transaction)]
