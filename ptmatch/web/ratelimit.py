"""Rate limits per client address (issue 16), counted in the app's database.

Each limited endpoint belongs to a kind with its own limit (Settings RATE_LIMIT_*): forms sent
for registration, login, reset and list joins, and every request to a mailed token page
(offers, group offers, verification, check-in). Over the limit the request gets the 429 page
with a Retry-After header, before the view runs.

Why an own table and not Flask-Limiter: Flask-Limiter's storages are memory (correct for one
worker only), Redis, Memcached and MongoDB; none is the app's database, and ptmatch runs with
nothing but SQLite or PostgreSQL. One conditional upsert per request (domain/throttle.py) holds
across gunicorn workers and hosts; it is committed before the view runs, so a request that
fails later still counts.
"""

from __future__ import annotations

from flask import Flask, make_response, render_template, request
from werkzeug.middleware.proxy_fix import ProxyFix

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.domain import throttle

# endpoint -> (kind, setting with the limit, methods counted)
POSTS = frozenset({"POST"})
ALL = frozenset({"GET", "POST"})
LIMITED: dict[str, tuple[str, str, frozenset[str]]] = {
    "patient.register": ("register", "RATE_LIMIT_REGISTER", POSTS),
    "auth.login": ("login", "RATE_LIMIT_LOGIN", POSTS),
    "auth.second_factor": ("login", "RATE_LIMIT_LOGIN", POSTS),
    "auth.request_reset": ("reset", "RATE_LIMIT_RESET", POSTS),
    "auth.set_password": ("reset", "RATE_LIMIT_RESET", POSTS),
    "patient.join": ("lists", "RATE_LIMIT_LISTS", POSTS),
    "patient.join_pool": ("lists", "RATE_LIMIT_LISTS", POSTS),
    "patient.leave": ("lists", "RATE_LIMIT_LISTS", POSTS),
    "patient.join_via_link": ("lists", "RATE_LIMIT_LISTS", POSTS),
    "offers.token_offer": ("token", "RATE_LIMIT_TOKEN_PAGES", ALL),
    "group_offers.show": ("token", "RATE_LIMIT_TOKEN_PAGES", ALL),
    "group_offers.accept": ("token", "RATE_LIMIT_TOKEN_PAGES", ALL),
    "group_offers.decline": ("token", "RATE_LIMIT_TOKEN_PAGES", ALL),
    "patient.verify_email": ("token", "RATE_LIMIT_TOKEN_PAGES", ALL),
    "patient.checkin": ("token", "RATE_LIMIT_TOKEN_PAGES", ALL),
}


def client_address() -> str:
    """The client's address (the proxy's X-Forwarded-For only when TRUSTED_PROXIES says so)."""
    return (request.remote_addr or "unknown")[:64]


def init_app(app: Flask) -> None:
    settings = app.extensions["settings"]
    if settings.TRUSTED_PROXIES:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.TRUSTED_PROXIES)
    if not settings.RATE_LIMITS_ENABLED:
        return

    @app.before_request
    def _rate_limit():
        rule = LIMITED.get(request.endpoint or "")
        if rule is None or request.method not in rule[2]:
            return None
        kind, setting, _methods = rule
        limit = getattr(settings, setting)
        if not limit:
            return None
        db = get_session()  # on SQLite a second session would wait for this one's write lock
        allowed = throttle.count_request(
            db, clock.now(), kind, client_address(), limit, settings.RATE_LIMIT_WINDOW_SECONDS
        )
        db.commit()  # counted now: a request that fails later still counts
        if not allowed:
            response = make_response(
                render_template("errors/error.html", code=429, message=None), 429
            )
            response.headers["Retry-After"] = str(settings.RATE_LIMIT_WINDOW_SECONDS)
            return response
        return None
