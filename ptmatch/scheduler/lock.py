"""Single-active lock for the scheduler: a PostgreSQL advisory lock, or a file lock on SQLite.

A second scheduler started beside the first waits as a standby and takes over when the
first process dies (the lock dies with its connection or file descriptor).

The active scheduler also asks `still_held()` every few seconds: the advisory lock is gone
when its connection was terminated (pg_terminate_backend, a network cut PostgreSQL noticed);
a file lock is gone when the lock file was removed or replaced (another process may now hold
a lock on the new file).
"""

from __future__ import annotations

import fcntl
import logging
import os

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ptmatch.db import is_sqlite

ADVISORY_KEY = 0x70746D61  # "ptma"
log = logging.getLogger("ptmatch.scheduler")
# pg_locks shows a one-bigint advisory key as classid (high 32 bits), objid (low), objsubid 1.
_HELD_SQL = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND classid = 0 AND objid = :k AND objsubid = 1"
)


class SchedulerLock:
    def __init__(self, engine: Engine, lock_file: str):
        self.engine = engine
        self.lock_file = lock_file
        self._conn = None
        self._fd = None

    def try_acquire(self) -> bool:
        if is_sqlite(self.engine):
            os.makedirs(os.path.dirname(self.lock_file) or ".", exist_ok=True)
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        conn = self.engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
        conn.commit()
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def still_held(self) -> bool:
        """Is the lock still ours? False once it is lost (never raises)."""
        if self._fd is not None:
            try:
                held = os.fstat(self._fd).st_ino
                return os.stat(self.lock_file).st_ino == held
            except OSError:
                return False
        if self._conn is not None:
            try:
                got = self._conn.execute(_HELD_SQL, {"k": ADVISORY_KEY}).scalar()
                self._conn.commit()
                return got == 1
            except Exception as err:  # the connection is gone: so is the lock
                log.warning("scheduler lock connection failed: %s", type(err).__name__)
                return False
        return False

    def backend_pid(self) -> int | None:
        """The PostgreSQL backend holding the advisory lock (for operators and tests)."""
        if self._conn is None:
            return None
        pid = self._conn.execute(text("SELECT pg_backend_pid()")).scalar()
        self._conn.commit()
        return pid

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                self._conn.commit()
            except Exception:  # a lost connection holds nothing to unlock
                self._conn.invalidate()
            self._conn.close()
            self._conn = None
