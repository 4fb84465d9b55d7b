"""The one clock of the app: every edge (view, job, CLI command) asks it for `now`.

The domain never reads the time; it takes `now` as a parameter. The edges call `now()`
here, which reads the current source: the system clock in production, a `FrozenClock`
in tests (and in tools that replay time, like the simulator). Nothing else in the
package may call `datetime.now()` or `time.time()` for business time; a test checks it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FrozenClock:
    """A clock that only moves when told to (tests, simulations). Thread-safe."""

    def __init__(self, at: dt.datetime):
        self._at = _aware(at)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._at

    def set(self, at: dt.datetime) -> None:
        with self._lock:
            self._at = _aware(at)

    def advance(self, delta: dt.timedelta | None = None, **kwargs) -> dt.datetime:
        """Move forward by `delta` or by timedelta(**kwargs); returns the new time."""
        step = delta if delta is not None else dt.timedelta(**kwargs)
        with self._lock:
            self._at = self._at + step
            return self._at


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("the clock keeps aware UTC datetimes")
    return at.astimezone(dt.UTC)


_source: SystemClock | FrozenClock = SystemClock()


def now() -> dt.datetime:
    """The current time (aware, UTC) from the app's clock source."""
    return _source.now()


def timestamp() -> int:
    """`now()` as whole POSIX seconds, for session stamps."""
    return int(_source.now().timestamp())


def pause(seconds: float) -> None:
    """Wait `seconds` of real time. Not time.sleep: under libfaketime (CI runs the suite
    400 days ahead) Python's sleep fails with EINVAL; a timed wait on an event works."""
    threading.Event().wait(seconds)


def get_source() -> SystemClock | FrozenClock:
    return _source


def set_source(source: SystemClock | FrozenClock) -> SystemClock | FrozenClock:
    """Replace the clock source; returns the previous one."""
    global _source
    previous, _source = _source, source
    return previous


@contextlib.contextmanager
def frozen(at: dt.datetime):
    """Freeze the app clock at `at` for the duration of the block; yields the FrozenClock."""
    clock = FrozenClock(at)
    previous = set_source(clock)
    try:
        yield clock
    finally:
        set_source(previous)
