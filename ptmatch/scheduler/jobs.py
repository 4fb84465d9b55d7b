"""Job registry: every module in ptmatch.scheduler.tasks contributes its JOBS."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from ptmatch.config import Settings


@dataclass(frozen=True)
class Job:
    name: str
    func: Callable  # (session, now, settings) -> int ; flushes, never commits
    seconds_setting: str | None = None  # the setting holding the interval
    default_seconds: int = 60

    def interval(self, settings: Settings) -> int:
        if self.seconds_setting:
            return getattr(settings, self.seconds_setting)
        return self.default_seconds


def all_jobs() -> list[Job]:
    import ptmatch.scheduler.tasks as pkg

    jobs: list[Job] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"ptmatch.scheduler.tasks.{info.name}")
        jobs.extend(getattr(module, "JOBS", []))
    return jobs
