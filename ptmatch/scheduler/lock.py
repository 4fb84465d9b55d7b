"""Single-active lock for the scheduler: a PostgreSQL advisory lock, or a file lock on SQLite.

A second scheduler started beside the first waits as a standby and takes over when the
first process dies (the lock dies with its connection or file descriptor).
"""

from __future__ import annotations

import fcntl
import os

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ptmatch.db import is_sqlite

ADVISORY_KEY = 0x70746D61  # "ptma"


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

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            self._conn.commit()
            self._conn.close()
            self._conn = None
