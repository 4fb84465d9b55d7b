"""CSRF on every POST route, security headers, cookies, language switch."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter

from ptmatch.db import Base
from ptmatch.models import Role
from tests.factories import make_patient, make_practice, make_user


def _row_counts(sessions):
    with sessions() as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t))
            for t in Base.metadata.sorted_tables
        }


def _fill_url(rule) -> str:
    values = {}
    for arg in rule.arguments:
        conv = rule._converters.get(arg)
        kind = conv.__class__.__name__ if conv is not None else ""
        values[arg] = (
            1
            if isinstance(conv, IntegerConverter)  # ptmatch.web.bounds.IdConverter included
            else sorted(conv.items)[0]
            if kind == "AnyConverter"
            else "x"
        )
    path = rule.rule
    for arg, value in values.items():
        path = re.sub(r"<(?:[^:<>]+:)?" + arg + ">", str(value), path)
    return path


@pytest.mark.parametrize("role", [None, Role.PATIENT, Role.THERAPIST, Role.SECRETARY, Role.ADMIN])
def test_every_post_route_rejects_missing_csrf_and_changes_nothing(
    app, client, session, sessions, login_as, role
):
    make_practice(session)
    if role is not None:
        login_as(make_user(session, role))
    session.commit()
    before = _row_counts(sessions)
    post_rules = [r for r in app.url_map.iter_rules() if "POST" in r.methods]
    assert post_rules, "expected POST routes"
    for rule in post_rules:
        resp = client.post(_fill_url(rule), data={"x": "1"}, csrf=False)
        if rule.rule.startswith("/api/"):
            # The API takes no cookie, so no CSRF token either: without a key it is a 401,
            # whoever is logged in.
            assert resp.status_code == 401, f"{rule.rule} answered {resp.status_code}"
            continue
        assert resp.status_code == 400, (
            f"{rule.rule} answered {resp.status_code} without a CSRF token"
        )
    assert _row_counts(sessions) == before


def test_security_headers_on_every_page(client):
    resp = client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in resp.headers


def test_no_inline_script_in_base_layout(client):
    html = client.get("/").get_data(as_text=True)
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag, tag
    assert not re.search(r"<script[^>]*>\s*\S", html.replace("</script>", "</script>\n")) or all(
        "src=" in t for t in re.findall(r"<script[^>]*>", html)
    )


def test_authenticated_pages_are_not_cached(client, session, login_as):
    login_as(make_patient(session).user)
    session.commit()
    assert client.get("/patient/").headers["Cache-Control"] == "no-store"
    assert client.get("/auth/login").headers["Cache-Control"] == "no-store"


def test_hsts_and_secure_cookie_with_https(settings, engine):
    from ptmatch import create_app

    app = create_app(replace(settings, HTTPS=True))
    client = app.test_client()
    resp = client.get("/")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    client.get("/auth/login")
    resp = client.get("/auth/login")
    cookies = resp.headers.getlist("Set-Cookie") or client.get("/hilfe").headers.getlist(
        "Set-Cookie"
    )
    for cookie in cookies:
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    app.extensions["ptmatch_engine"].dispose()


def test_session_cookie_flags(client):
    resp = client.get("/auth/login")
    cookie = resp.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_language_switch(client):
    assert "Anmelden" in client.get("/auth/login").get_data(as_text=True)
    resp = client.post("/lang", data={"lang": "en", "next": "/auth/login"})
    assert resp.headers["Location"] == "/auth/login"
    html = client.get("/auth/login").get_data(as_text=True)
    assert '<html lang="en">' in html
    resp = client.post("/lang", data={"lang": "en", "next": "//evil.example"})
    assert "evil" not in resp.headers["Location"]


def test_errors_render_pages_not_tracebacks(client):
    resp = client.get("/does-not-exist")
    assert resp.status_code == 404 and "Diese Seite gibt es nicht." in resp.get_data(as_text=True)
