"""JSON logs (setting LOG_JSON): one line per request and per job run.

Only what an operator needs and nothing that names a person: a request id, the route
*template* (`/o/<token>`, never the path with the token), method, status, duration and the
user's role; for a job its name, outcome, count and duration. Other log records become
JSON lines too (their messages carry ids only, by house rule).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

REQUESTS = logging.getLogger("ptmatch.requests")
JOBS = logging.getLogger("ptmatch.jobs")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        else:
            payload["message"] = record.getMessage()
            if record.exc_info:
                payload["error"] = (
                    record.exc_info[0].__name__ if record.exc_info[0] else "exception"
                )
        return json.dumps(payload, separators=(",", ":"), default=str)


def use_json_logs(level: int = logging.INFO) -> None:
    """Send every log record to stderr as one JSON line (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
    for name in (REQUESTS.name, JOBS.name):
        logging.getLogger(name).setLevel(logging.INFO)


def request_id(offered: str | None) -> str:
    """A proxy's X-Request-ID if it looks like one, else a fresh one."""
    import uuid

    return offered if offered and _REQUEST_ID.match(offered) else uuid.uuid4().hex


def log_request(
    *, request_id: str, route: str, method: str, status: int, seconds: float, role: str
) -> None:
    REQUESTS.info(
        "request",
        extra={
            "fields": {
                "event": "request",
                "request_id": request_id,
                "route": route,
                "method": method,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                "role": role,
            }
        },
    )


def log_job(*, job: str, ok: bool, count: int, seconds: float) -> None:
    (JOBS.info if ok else JOBS.error)(
        "job",
        extra={
            "fields": {
                "event": "job",
                "job": job,
                "status": "ok" if ok else "failed",
                "count": count,
                "duration_ms": round(seconds * 1000, 1),
            }
        },
    )
