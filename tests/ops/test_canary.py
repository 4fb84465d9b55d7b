"""A canary patient's name, email, password and offer token never reach the metrics or the
JSON logs (LOG_JSON), whatever the patient does: log in (also wrongly), look, accept."""

from __future__ import annotations

import dataclasses
import io
import json
import logging

import pytest

from ptmatch.ops import logs
from ptmatch.scheduler.jobs import all_jobs
from ptmatch.scheduler.runner import run_job
from tests.conftest import NOW
from tests.factories import make_network, make_offer, make_slot, make_user

FIRST, LAST = "Kanarienvogel", "Zwitscherling"
EMAIL = "kanari.zwitscher@example.org"
PASSWORD = "Kanarien-Passwort-2026"
TOKEN = "tok_" + "K" * 40


@pytest.fixture
def json_lines(monkeypatch):
    """The JSON lines the app writes, captured (the root logger keeps pytest's handlers)."""
    monkeypatch.setattr(logs, "use_json_logs", lambda: None)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_canary_never_in_metrics_or_json_logs(settings, engine, session, json_lines):
    from ptmatch import create_app
    from tests.conftest import CsrfClient

    settings = dataclasses.replace(settings, LOG_JSON=True)
    user = make_user(session, email=EMAIL, password=PASSWORD, display_name=f"{FIRST} {LAST}")
    net = make_network(session, a={"user": user, "first_name": FIRST, "last_name": LAST})
    slot = make_slot(session, net.ther_x, start_at=NOW.replace(day=26, hour=13))
    make_offer(session, slot, net.a, token=TOKEN)
    session.commit()

    app = create_app(settings)
    app.test_client_class = CsrfClient
    try:
        client = app.test_client()
        wrong = {"email": EMAIL, "password": "falsch-falsch-falsch"}
        assert client.post("/auth/login", data=wrong).status_code == 200
        login = client.post("/auth/login", data={"email": EMAIL, "password": PASSWORD})
        assert login.status_code == 302
        assert client.get("/patient/").status_code == 200
        assert client.get(f"/o/{TOKEN}").status_code == 200
        assert client.post(f"/o/{TOKEN}", data={"answer": "accept"}).status_code == 200
        for job in all_jobs():
            run_job(app.extensions["ptmatch_sessions"], job, settings)
        page = client.get("/metrics").get_data(as_text=True)
    finally:
        app.extensions["ptmatch_engine"].dispose()

    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    requests = [line for line in lines if line.get("event") == "request"]
    jobs = [line for line in lines if line.get("event") == "job"]
    # the lines are there, with what an operator needs
    assert {"request_id", "route", "method", "status", "duration_ms", "role"} <= set(requests[0])
    assert any(r["route"] == "/o/<token>" and r["method"] == "POST" for r in requests)
    assert any(r["route"] == "/patient/" and r["role"] == "patient" for r in requests)
    assert {j["job"] for j in jobs} == {j.name for j in all_jobs()}
    assert "ptmatch_offers_accepted_total" in page
    # and nothing that names the canary
    everything = json_lines.getvalue() + page
    for secret in (FIRST, LAST, EMAIL, "kanari", PASSWORD, TOKEN):
        assert secret.lower() not in everything.lower(), secret


def test_request_id_is_kept_or_made(client):
    kept = client.get("/healthz", headers={"X-Request-ID": "lb-1234abcd"})
    assert kept.headers["X-Request-ID"] == "lb-1234abcd"
    made = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert made.headers["X-Request-ID"] != "<script>alert(1)</script>"
    assert len(made.headers["X-Request-ID"]) == 32


def test_use_json_logs_turns_the_root_logger_to_json(capsys):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.use_json_logs()
        logs.use_json_logs()  # idempotent
        assert sum(isinstance(h.formatter, logs.JsonFormatter) for h in root.handlers) == 1
        logs.log_job(job="outbox", ok=True, count=3, seconds=0.0123)
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "job" and line["job"] == "outbox" and line["count"] == 3
    assert line["status"] == "ok" and line["duration_ms"] == 12.3
