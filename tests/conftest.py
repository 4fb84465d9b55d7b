"""Test harness: one schema per run (built by the Alembic migrations), tables emptied after
each test, a fixed clock, factories, and a client that fills in CSRF tokens.

SQLite by default (a file database, so concurrency tests get real commits); PostgreSQL
when PTMATCH_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from ptmatch.db import Base, is_sqlite, make_engine, make_session_factory

NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)  # a Tuesday, 10:00 in Berlin
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
# Cheap argon2id for the suite (one test checks the production defaults).
CHEAP_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024, "ARGON2_PARALLELISM": 1}

from ptmatch.domain import passwords as _passwords  # noqa: E402

_passwords.set_parameters(time_cost=1, memory_kib=1024, parallelism=1)  # before factories hash


def pytest_addoption(parser):
    parser.addoption(
        "--require-postgres",
        action="store_true",
        help="fail (instead of skip) when PTMATCH_TEST_DATABASE_URL is unset or unreachable",
    )
    parser.addoption(
        "--require-browser",
        action="store_true",
        help="fail (instead of skip) when the browser tests' tools (Playwright, Chromium, "
        "axe-core, the Nu HTML checker with Java) are missing",
    )


def pytest_configure(config):
    if config.getoption("--require-postgres"):
        url = os.environ.get("PTMATCH_TEST_DATABASE_URL", "")
        if not url.startswith("postgresql"):
            raise pytest.UsageError(
                "--require-postgres needs PTMATCH_TEST_DATABASE_URL=postgresql+psycopg://..."
            )


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PTMATCH_TEST_DATABASE_URL", "").startswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="PostgreSQL only (set PTMATCH_TEST_DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("PTMATCH_TEST_DATABASE_URL")
    if url:
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite")


@pytest.fixture(scope="session")
def engine(database_url):
    from ptmatch.migrate import upgrade

    engine = make_engine(database_url)
    if not is_sqlite(engine):
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(database_url)
    yield engine
    engine.dispose()


_TABLES = None


def _empty_tables(engine) -> None:
    global _TABLES
    if _TABLES is None:
        _TABLES = [t.name for t in reversed(Base.metadata.sorted_tables)]
    # DELETE, children first: for the few rows a test writes this is ~20x faster than
    # TRUNCATE on PostgreSQL (ids keep counting up; no test may rely on their values).
    with engine.begin() as conn:
        for name in _TABLES:
            conn.execute(text(f'DELETE FROM "{name}"'))


@pytest.fixture(autouse=True)
def _clean_database(request, engine):
    yield
    _empty_tables(engine)


@pytest.fixture
def sessions(engine, settings):
    """Sessions as the app and the scheduler make them (they carry the test settings)."""
    return make_session_factory(engine, settings)


@pytest.fixture(scope="session")
def _setup_engine(database_url, engine):
    """For the tests' own `session`: on SQLite a deferred BEGIN, so a test that reads while
    the app (or other threads) write does not hold the write lock. The app and `sessions`
    keep BEGIN IMMEDIATE, as in production."""
    setup_engine = make_engine(database_url, immediate=False)
    yield setup_engine
    setup_engine.dispose()


@pytest.fixture
def session(_setup_engine, settings):
    """A session for domain tests and test setup; commit before using `client`."""
    s = make_session_factory(_setup_engine, settings)()
    yield s
    s.rollback()
    s.close()


@pytest.fixture(autouse=True)
def clock():
    """The app clock, frozen at NOW for every test; move it with clock.advance(...) or
    clock.set(...). Views, jobs and CLI commands read it instead of the wall clock."""
    from ptmatch import clock as app_clock

    with app_clock.frozen(NOW) as frozen:
        yield frozen


@pytest.fixture
def now():
    return NOW


@pytest.fixture
def settings(tmp_path, database_url):
    """The test settings (a frozen ptmatch.config.Settings); a test that needs other values
    makes its own with dataclasses.replace(settings, NAME=value)."""
    from ptmatch.config import load_settings

    return load_settings(
        str(tmp_path),
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": TEST_SECRET,
            "TESTING": True,
            "BASE_URL": "https://ptmatch.test",
            "MAIL_DIR": str(tmp_path / "mail"),
            "SCHEDULER_LOCK_FILE": str(tmp_path / "scheduler.lock"),
            **CHEAP_ARGON2,
        },
    )


class CsrfClient(FlaskClient):
    """POSTs carry a fresh CSRF token scraped from a page, unless csrf=False."""

    _token_re = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

    def csrf_token(self) -> str:
        html = super().get("/hilfe").get_data(as_text=True)
        match = self._token_re.search(html)
        assert match, "no CSRF token on /hilfe"
        return match.group(1)

    def post(self, *args, csrf: bool = True, **kwargs):
        if csrf:
            data = dict(kwargs.pop("data", None) or {})
            data.setdefault("csrf_token", self.csrf_token())
            kwargs["data"] = data
        return super().post(*args, **kwargs)


@pytest.fixture
def app(settings, engine):
    from ptmatch import create_app

    app = create_app(settings)
    app.test_client_class = CsrfClient
    yield app
    app.extensions["ptmatch_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def login_as(client, sessions):
    """login_as(user) puts a logged-in session for `user` on the client (no form round trip)."""

    from ptmatch import clock as app_clock

    def _login(user, c=None):
        c = c or client
        version = user.session_version  # no DB read: the test's session may hold a lock
        with c.session_transaction() as sess:
            sess.clear()
            sess["_user_id"] = f"{user.id}:{version}"
            sess["_fresh"] = True
            sess["login_at"] = app_clock.timestamp()
            sess["seen_at"] = app_clock.timestamp()
        return c

    return _login
