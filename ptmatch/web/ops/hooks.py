"""Per-request bookkeeping: a request id, the latency histogram and (LOG_JSON) one JSON line."""

from __future__ import annotations

import time

from flask import Flask, g, request
from flask_login import current_user

from ptmatch.ops import logs, metrics


def init_app(app: Flask) -> None:
    settings = app.extensions["settings"]
    metrics.watch(app.extensions["ptmatch_sessions"])
    if settings.LOG_JSON:
        logs.use_json_logs()

    @app.before_request
    def _started():
        g.request_started = time.perf_counter()
        g.request_id = logs.request_id(request.headers.get("X-Request-ID"))

    @app.after_request
    def _finished(response):
        started = g.pop("request_started", None)
        if started is None:
            return response
        seconds = time.perf_counter() - started
        metrics.observe_request(request.endpoint, request.method, response.status_code, seconds)
        response.headers["X-Request-ID"] = g.request_id
        if settings.LOG_JSON:
            user = current_user if getattr(current_user, "is_authenticated", False) else None
            logs.log_request(
                request_id=g.request_id,
                route=request.url_rule.rule if request.url_rule is not None else "-",
                method=request.method,
                status=response.status_code,
                seconds=seconds,
                role=str(user.role) if user is not None else "anonymous",
            )
        return response
