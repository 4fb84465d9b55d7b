"""/readyz (load balancers) and /metrics (Prometheus). /healthz, the liveness probe, stays in
the public blueprint. Neither page shows personal data; /metrics is served to loopback only,
or to a request with `Authorization: Bearer <METRICS_TOKEN>`."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, abort, jsonify, request

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.ops import metrics as ops_metrics
from ptmatch.ops import readiness
from ptmatch.web import current_settings

bp = Blueprint("ops", __name__)

# Set by a reverse proxy: a request that passed one did not start on this host.
PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


@bp.route("/readyz")
def readyz():
    """200 when every check passes, else 503 naming the failed checks."""
    checks = readiness.checks(get_session(), current_settings(), clock.now())
    failed = [c.name for c in checks if not c.ok]
    body = {
        "status": "not ready" if failed else "ready",
        "failed": failed,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
    response = jsonify(body)
    response.status_code = 503 if failed else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer_ok(token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, offered = header.partition(" ")
    return bool(
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(offered.strip().encode(), token.encode())
    )


def _from_loopback() -> bool:
    if any(request.headers.get(name) for name in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.route("/metrics")
def metrics():
    """Prometheus text format: counters, the latency histogram and the database gauges."""
    if not (_bearer_ok(current_settings().METRICS_TOKEN) or _from_loopback()):
        abort(403)
    body = ops_metrics.exposition(get_session(), clock.now())
    return Response(
        body, content_type=ops_metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"}
    )
