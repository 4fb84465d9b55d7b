"""The outbox sender's own loop: mail goes out within a moment of the commit that wrote it.

PostgreSQL: every transaction that enqueues a mail also sends ``NOTIFY ptmatch_outbox``
(``ptmatch.notifications.outbox.notify``), which PostgreSQL delivers when — and only if —
it commits. A listener thread holds one connection with ``LISTEN ptmatch_outbox`` and wakes
the sender for each notification. Should a notification be lost (the listener was
reconnecting, the connection dropped), the sender still polls every ``OUTBOX_SECONDS``;
after a reconnect it runs once at once, for whatever was committed meanwhile.

SQLite has no NOTIFY: the sender polls every ``OUTBOX_SQLITE_SECONDS`` (1 s).

The loop clears its wake-up flag *before* each run, so a commit during a run makes it run
again right after: nothing waits for the poll that was notified.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.engine import make_url

from ptmatch.config import Settings
from ptmatch.db import is_sqlite
from ptmatch.notifications.outbox import NOTIFY_CHANNEL

log = logging.getLogger("ptmatch.scheduler")


class Waker:
    """A flag the listener raises and the sender loop waits on (with a timeout: the poll)."""

    def __init__(self):
        self._event = threading.Event()
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Wait until woken or `timeout` seconds passed; True if woken. Clears the flag."""
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken


def poll_seconds(settings: Settings) -> float:
    """How long the sender sleeps when nobody wakes it."""
    if is_sqlite(settings.DATABASE_URL):
        return settings.OUTBOX_SQLITE_SECONDS
    return settings.OUTBOX_SECONDS


def conninfo(database_url: str) -> str:
    """The libpq connection string of an SQLAlchemy PostgreSQL URL (password kept)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


def listen(
    database_url: str,
    waker: Waker,
    stop: threading.Event,
    *,
    retry_seconds: float = 5.0,
    tick: float = 1.0,
) -> None:
    """Thread body: LISTEN and wake `waker` per notification until `stop` is set; on a lost
    connection wait `retry_seconds`, reconnect and wake once (the poll covers the gap)."""
    import psycopg

    while not stop.is_set():
        try:
            with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                log.info("outbox sender listening for commits")
                waker.wake()  # whatever was committed while nobody listened
                while not stop.is_set():
                    for _note in conn.notifies(timeout=tick):
                        waker.wake()
        except Exception as err:  # the connection went away: poll until it is back
            log.warning("outbox listener lost its connection (%s); retrying", type(err).__name__)
            stop.wait(retry_seconds)


def sender_loop(run: Callable[[], int], waker: Waker, stop: threading.Event, poll: float) -> None:
    """Thread body: run the sender when woken, and every `poll` seconds anyway."""
    while not stop.is_set():
        waker.wait(poll)
        if stop.is_set():
            break
        try:
            run()
        except Exception:  # run_job logs and swallows; this is the last line of defence
            log.exception("outbox sender failed")


class OutboxSender:
    """The sender loop and (on PostgreSQL) its listener, as daemon threads."""

    def __init__(self, settings: Settings, run: Callable[[], int]):
        self.settings = settings
        self.waker = Waker()
        self.stop_event = threading.Event()
        self.threads = [
            threading.Thread(
                target=sender_loop,
                args=(run, self.waker, self.stop_event, poll_seconds(settings)),
                name="outbox-sender",
                daemon=True,
            )
        ]
        if not is_sqlite(settings.DATABASE_URL):
            self.threads.append(
                threading.Thread(
                    target=listen,
                    args=(settings.DATABASE_URL, self.waker, self.stop_event),
                    name="outbox-listener",
                    daemon=True,
                )
            )

    def start(self) -> OutboxSender:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.waker.wake()
        for thread in self.threads:
            thread.join(timeout)
