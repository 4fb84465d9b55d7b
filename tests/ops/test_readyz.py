"""/readyz: the database answers, the schema is at the Alembic head, the scheduler's heartbeat
is fresh; 503 names the failed check, 200 again once it is fixed. /healthz stays trivial."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text

from ptmatch.models import SchedulerBeat
from ptmatch.models.ops import SCHEDULER_BEAT
from ptmatch.ops.heartbeat import beat
from ptmatch.ops.readiness import code_heads
from ptmatch.scheduler.jobs import all_jobs
from ptmatch.scheduler.runner import run_job
from tests.conftest import NOW


def _ready(client):
    response = client.get("/readyz")
    return response.status_code, response.get_json()


def test_ready_with_a_fresh_heartbeat(client, session):
    beat(session, SCHEDULER_BEAT, NOW - dt.timedelta(seconds=30))
    session.commit()
    status, body = _ready(client)
    assert status == 200, body
    assert body["status"] == "ready" and body["failed"] == []
    assert set(body["checks"]) == {"database", "schema", "scheduler"}


def test_503_without_any_heartbeat(client):
    status, body = _ready(client)
    assert status == 503 and body["failed"] == ["scheduler"]
    assert body["checks"]["scheduler"]["detail"] == "no heartbeat yet"


def test_stale_heartbeat_is_503_until_the_scheduler_beats_again(client, session, clock):
    beat(session, SCHEDULER_BEAT, NOW)
    session.commit()
    assert _ready(client)[0] == 200
    clock.advance(seconds=61)  # HEARTBEAT_STALE_SECONDS is 60
    status, body = _ready(client)
    assert status == 503 and body["failed"] == ["scheduler"]
    assert "61 s ago" in body["checks"]["scheduler"]["detail"]
    beat(session, SCHEDULER_BEAT, NOW + dt.timedelta(seconds=61))
    session.commit()
    assert _ready(client)[0] == 200


def test_a_missing_migration_is_503_until_migrated(client, session, engine):
    beat(session, SCHEDULER_BEAT, NOW)
    session.commit()
    (head,) = code_heads()
    with engine.begin() as conn:  # the database one revision behind the code
        conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    try:
        status, body = _ready(client)
        assert status == 503 and body["failed"] == ["schema"]
        assert "older" in body["checks"]["schema"]["detail"]
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert _ready(client)[0] == 200


def test_the_scheduler_heartbeat_job_and_job_runs_write_rows(sessions, settings, session, clock):
    (job,) = [j for j in all_jobs() if j.name == "heartbeat"]
    assert job.interval(settings) == settings.HEARTBEAT_SECONDS == 5
    assert run_job(sessions, job, settings) == 1
    clock.advance(seconds=5)
    run_job(sessions, job, settings)
    rows = {r.name: r.at for r in session.scalars(select(SchedulerBeat))}
    assert rows == {
        SCHEDULER_BEAT: NOW + dt.timedelta(seconds=5),
        "job:heartbeat": NOW + dt.timedelta(seconds=5),
    }


def test_a_failed_job_records_no_run(sessions, settings, session):
    from ptmatch.scheduler.jobs import Job

    def broken(_session, _now, _settings):
        raise RuntimeError("boom")

    assert run_job(sessions, Job("broken", broken), settings) == 0
    assert session.scalar(select(SchedulerBeat).where(SchedulerBeat.name == "job:broken")) is None


def test_healthz_stays_trivial(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_operations_settings_are_checked(tmp_path):
    import pytest

    from ptmatch.config import ConfigError, load_settings

    for bad in (
        {"METRICS_TOKEN": "short"},
        {"BACKUP_KEY": "not-a-fernet-key"},
        {"BACKUP_HOUR": 24},
        {"HEARTBEAT_SECONDS": 0},
    ):
        with pytest.raises(ConfigError):
            load_settings(str(tmp_path), bad)
    key = "A" * 43 + "="
    assert load_settings(str(tmp_path), {"BACKUP_KEY": key}).BACKUP_KEY == key


def test_503_when_the_database_does_not_answer(settings, tmp_path):
    import dataclasses

    from ptmatch import create_app

    gone = f"sqlite:///{tmp_path / 'no-such-folder' / 'x.sqlite'}"
    app = create_app(dataclasses.replace(settings, DATABASE_URL=gone))
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["failed"] == ["database"]
        assert app.test_client().get("/healthz").status_code == 200  # liveness: no database
    finally:
        app.extensions["ptmatch_engine"].dispose()
