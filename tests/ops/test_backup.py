"""Backups: a restore drill with a writer running during the backup (every table of the
restored database equals the source at one moment between two of the writer's commits, and
the manifest matches), refusal of damaged backups and non-empty targets, encryption,
retention, the nightly job, and the PostgreSQL tool checks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from ptmatch.db import Base, is_sqlite
from ptmatch.domain import offers
from ptmatch.models import Offer, OfferStatus
from ptmatch.ops import backup
from tests.conftest import NOW
from tests.factories import make_network

KEY = "Zm9yLXRlc3RzLW9ubHktMzItYnl0ZXMtbG9uZy1rZXk="  # 32 bytes, url-safe base64


# --- the restore drill ------------------------------------------------------------------------


def fingerprint(conn) -> dict[str, str]:
    """Every row of every table, hashed per table."""
    out = {}
    for table in Base.metadata.sorted_tables:
        rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
        out[table.name] = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
    return out


def slot_times():
    """Weekday hours (Berlin 9-18) from Thursday on: a fresh, clash-free start each time."""
    day = NOW + dt.timedelta(days=2)
    while True:
        if day.weekday() < 5:
            for hour in range(8, 17):  # UTC; 9-18 Berlin in winter
                yield day.replace(hour=hour, minute=0)
        day += dt.timedelta(days=1)


class Writer(threading.Thread):
    """Posts a slot (auto mode: the first wave in the same transaction), then accepts its
    first offer (second transaction), again and again. After each commit it records the
    fingerprint of the whole database: the states a consistent backup may show."""

    def __init__(self, sessions, settings, therapist_id: int):
        super().__init__(daemon=True)
        self.sessions, self.settings, self.therapist_id = sessions, settings, therapist_id
        self.states: list[dict[str, str]] = []
        self.commits = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def record(self, session) -> None:
        with self.sessions() as reader:
            self.states.append(fingerprint(reader.connection()))
        self.commits += 1

    def run(self) -> None:
        from ptmatch.models import Therapist

        try:
            times = slot_times()
            while not self.stop.is_set() and self.commits < 60:
                with self.sessions() as s:
                    therapist = s.get(Therapist, self.therapist_id)
                    slot = offers.post_slot(
                        s,
                        NOW,
                        therapist.user,
                        therapist,
                        start_at=next(times),
                        minutes=45,
                        settings=self.settings,
                    )
                    s.commit()
                    slot_id = slot.id
                self.record(s)
                with self.sessions() as s:
                    offer = s.scalar(
                        select(Offer)
                        .where(Offer.slot_id == slot_id, Offer.status == OfferStatus.PENDING)
                        .order_by(Offer.id)
                        .limit(1)
                    )
                    if offer is not None:
                        offers.accept_offer(s, NOW, offer, offer.patient.user, self.settings)
                        s.commit()
                self.record(s)
        except BaseException as err:  # reported by the test
            self.error = err


def wait_for(condition, seconds=60.0):
    import time

    deadline, tick = time.monotonic() + seconds, threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        tick.wait(0.01)  # not time.sleep: it fails under faketime (the run a year ahead)


@pytest.fixture
def fresh_database(database_url, tmp_path):
    """An empty database of the same engine: a SQLite file, or a new PostgreSQL database."""
    if is_sqlite(database_url):
        yield f"sqlite:///{tmp_path / 'restored.sqlite'}"
        return
    url = make_url(database_url)
    name = f"{url.database}_restore_drill"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def network(session):
    net = make_network(session, more_on_x=[{} for _ in range(30)])
    session.commit()
    return net


@pytest.mark.parametrize("key", ["", KEY], ids=["plain", "encrypted"])
def test_restore_drill_with_a_writer_running(
    sessions, settings, database_url, network, fresh_database, tmp_path, key, monkeypatch
):
    writer = Writer(sessions, settings, network.ther_x.id)
    count_rows, paused = backup.row_counts, []

    def row_counts_after_more_writes(conn):
        """The backup counts its rows only after the writer committed twice more: counts
        read from anything but the backed-up snapshot would then differ."""
        if not paused:
            paused.append(writer.commits)
            wait_for(lambda: writer.commits >= paused[0] + 2 or writer.error)
        return count_rows(conn)

    monkeypatch.setattr(backup, "row_counts", row_counts_after_more_writes)
    writer.start()
    try:
        wait_for(lambda: writer.commits >= 3 or writer.error)
        manifest_path, manifest = backup.backup(database_url, tmp_path / "b", NOW, key=key)
        at_backup = writer.commits
        wait_for(lambda: writer.commits >= at_backup + 3 or writer.error)
    finally:
        writer.stop.set()
        writer.join(60)
    assert writer.error is None, writer.error

    report = backup.restore(manifest_path, fresh_database, key=key)
    assert report.ok, report.lines()
    assert sum(manifest.tables.values()) > 0 and manifest.revision
    engine = create_engine(fresh_database)
    try:
        with engine.connect() as conn:
            restored = fingerprint(conn)
    finally:
        engine.dispose()
    # the restored database is the source as of one moment between two writer commits
    matches = [i for i, state in enumerate(writer.states) if state == restored]
    assert matches, "the restored tables match no committed state of the source (torn?)"
    assert 0 < matches[0] < len(writer.states) - 1  # the writer wrote before and after
    payload = (manifest_path.parent / manifest.file).read_bytes()
    if key:
        assert payload.startswith(backup.MAGIC) and b"SQLite format" not in payload[:100]


def test_a_damaged_backup_is_refused(database_url, network, fresh_database, tmp_path):
    manifest_path, manifest = backup.backup(database_url, tmp_path, NOW)
    payload = tmp_path / manifest.file
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0xFF
    payload.write_bytes(bytes(data))
    with pytest.raises(backup.BackupError, match="checksum mismatch"):
        backup.restore(payload, fresh_database)
    assert backup._existing_tables(fresh_database) == []  # nothing restored


def test_a_wrong_key_or_damaged_ciphertext_is_refused(database_url, network, tmp_path):
    manifest_path, manifest = backup.backup(database_url, tmp_path, NOW, key=KEY)
    target = f"sqlite:///{tmp_path / 'x.sqlite'}"
    other = "b3RoZXIta2V5LWZvci10ZXN0cy0zMi1ieXRlcy1sb25n"[:43] + "="
    if not is_sqlite(database_url):
        target = database_url  # refused before anything is touched
    with pytest.raises(backup.BackupError, match="BACKUP_KEY"):
        backup.decrypt_file(tmp_path / manifest.file, tmp_path / "plain", "")
    with pytest.raises(backup.BackupError, match="cannot decrypt"):
        backup.decrypt_file(tmp_path / manifest.file, tmp_path / "plain", other)
    if is_sqlite(database_url):
        with pytest.raises(backup.BackupError, match="cannot decrypt"):
            backup.restore(manifest_path, target, key=other)
    # a chunk cut off at the end, the checksum forged to match: still refused
    payload = tmp_path / manifest.file
    payload.write_bytes(payload.read_bytes()[:-10])
    with pytest.raises(backup.BackupError, match="cut off|cannot decrypt"):
        backup.decrypt_file(payload, tmp_path / "plain", KEY)


def test_restore_refuses_a_database_with_tables_unless_forced(
    database_url, network, fresh_database, tmp_path
):
    manifest_path, _manifest = backup.backup(database_url, tmp_path, NOW)
    assert backup.restore(manifest_path, fresh_database).ok
    with pytest.raises(backup.BackupError, match="already has .* tables"):
        backup.restore(manifest_path, fresh_database)
    assert backup.restore(manifest_path, fresh_database, force=True).ok


def test_a_manifest_that_does_not_match_is_reported(
    database_url, network, fresh_database, tmp_path
):
    manifest_path, manifest = backup.backup(database_url, tmp_path, NOW)
    data = json.loads(manifest_path.read_text())
    data["tables"]["patients"] += 1
    manifest_path.write_text(json.dumps(data))
    report = backup.restore(manifest_path, fresh_database)
    assert not report.ok and not report.counts_ok
    assert any("patients: manifest" in line for line in report.lines())


def test_cli_backup_then_restore_gives_identical_counts(
    database_url, network, fresh_database, tmp_path, monkeypatch
):
    from ptmatch.cli import main

    monkeypatch.setenv("PTMATCH_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PTMATCH_DATABASE_URL", database_url)
    runner = CliRunner()
    made = runner.invoke(main, ["backup", "--out", str(tmp_path / "backups")])
    assert made.exit_code == 0, made.output
    (payload,) = [p for p in (tmp_path / "backups").iterdir() if not p.name.endswith(".json")]
    done = runner.invoke(main, ["restore", str(payload), "--database-url", fresh_database])
    assert done.exit_code == 0, done.output
    assert "row counts: ok" in done.output and "restore checked: ok" in done.output
    again = runner.invoke(main, ["restore", str(payload), "--database-url", fresh_database])
    assert again.exit_code == 1 and "already has" in again.output


# --- retention and the nightly job ------------------------------------------------------------


def fake_backup(folder: Path, when: dt.datetime) -> str:
    name = backup.PREFIX + backup._stamp(when) + ".sqlite"
    (folder / name).write_bytes(b"x")
    backup.Manifest(
        created_at=when.isoformat(),
        engine="sqlite",
        revision="0001",
        tables={},
        file=name,
        sha256=backup.sha256_of(folder / name),
    ).write(folder)
    return name


def test_retention_keeps_exactly_the_configured_backups(tmp_path, settings):
    # restic's rules: the newest of each of the last 3 days and of each of the last 3 weeks
    settings = dataclasses.replace(settings, BACKUP_KEEP_DAILY=3, BACKUP_KEEP_WEEKLY=3)
    # Tue 24 Nov 2026 back to Sun 8 Nov: two backups a day (02:00 and 14:00 UTC)
    names = {}
    for days in range(17):
        for hour in (2, 14):
            when = dt.datetime(2026, 11, 24, hour, tzinfo=dt.UTC) - dt.timedelta(days=days)
            names[when] = fake_backup(tmp_path, when)
    backup.prune(tmp_path, settings)
    kept = sorted(m.when for _p, m in backup.list_backups(tmp_path))
    utc = dt.UTC
    assert kept == [
        dt.datetime(2026, 11, 15, 14, tzinfo=utc),  # weekly: the newest of week 46
        dt.datetime(2026, 11, 22, 14, tzinfo=utc),  # daily (Sun 22), and newest of week 47
        dt.datetime(2026, 11, 23, 14, tzinfo=utc),  # daily (Mon 23)
        dt.datetime(2026, 11, 24, 14, tzinfo=utc),  # daily (Tue 24), and newest of week 48
    ]
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {names[w] for w in kept} | {names[w] + backup.MANIFEST_SUFFIX for w in kept}


def test_the_nightly_job(settings, database_url, network, tmp_path, clock):
    from ptmatch.scheduler.tasks.backup import nightly_backup

    assert nightly_backup(None, NOW, settings) == 0  # no BACKUP_DIR: nothing
    folder = tmp_path / "nightly"
    settings = dataclasses.replace(settings, BACKUP_DIR=str(folder), BACKUP_HOUR=11)
    assert nightly_backup(None, NOW, settings) == 0  # 10:00 Berlin: before BACKUP_HOUR
    later = NOW + dt.timedelta(hours=1)
    assert nightly_backup(None, later, settings) == 1
    assert nightly_backup(None, later + dt.timedelta(hours=5), settings) == 0  # once a day
    assert nightly_backup(None, later + dt.timedelta(days=1), settings) == 1
    assert len(backup.list_backups(folder)) == 2


# --- PostgreSQL tools -------------------------------------------------------------------------


def test_a_missing_tool_is_named(monkeypatch):
    monkeypatch.setattr(backup.shutil, "which", lambda _tool: None)
    with pytest.raises(backup.BackupError, match="pg_dump was not found"):
        backup.tool_major("pg_dump")


@pytest.mark.postgres
def test_pg_dump_of_another_major_version_is_refused(engine, monkeypatch, tmp_path, database_url):
    monkeypatch.setattr(backup, "tool_major", lambda tool: (9, f"{tool} (PostgreSQL) 9.6"))
    with pytest.raises(backup.BackupError, match="major version 9 but the server is"):
        backup.backup(database_url, tmp_path, NOW)
    assert list(tmp_path.iterdir()) == []


def test_erasures_since_the_backup_are_made_again_after_a_restore(
    database_url, session, settings, fresh_database, tmp_path, monkeypatch
):
    from ptmatch.cli import main
    from ptmatch.domain import patients
    from ptmatch.models import Patient, PatientStatus

    net = make_network(session, a={"first_name": "Vergessen", "last_name": "Werden"})
    session.commit()
    manifest_path, _manifest = backup.backup(database_url, tmp_path, NOW)
    patients.erase_personal_data(
        session, NOW, net.a, None, reason="patient_request", settings=settings
    )
    session.commit()
    assert backup.restore(manifest_path, fresh_database).ok
    restored = create_engine(fresh_database)
    try:
        with restored.connect() as conn:
            back = conn.execute(select(Patient.first_name).where(Patient.id == net.a.id))
            assert back.scalar() == "Vergessen"  # the backup still holds the patient

        monkeypatch.setenv("PTMATCH_INSTANCE_PATH", str(tmp_path))
        monkeypatch.setenv("PTMATCH_DATABASE_URL", fresh_database)
        done = CliRunner().invoke(main, ["reapply-erasures", "--from-database", database_url])
        assert done.exit_code == 0, done.output
        assert f"made again here (patient ids {net.a.id})" in done.output
        with restored.connect() as conn:
            row = conn.execute(
                select(Patient.first_name, Patient.status).where(Patient.id == net.a.id)
            ).one()
        assert row.status == PatientStatus.DELETED and row.first_name != "Vergessen"
        again = CliRunner().invoke(main, ["reapply-erasures", "--from-database", database_url])
        assert "0 made again" in again.output
    finally:
        restored.dispose()


def test_the_delete_page_says_backups_keep_the_data_until_retention_ends(
    client, session, login_as, settings
):
    from tests.factories import make_patient

    patient = make_patient(session)
    session.commit()
    login_as(patient.user)
    html = client.get("/patient/loeschen").get_data(as_text=True)
    assert backup.retention_days(settings) == 35  # 4 weekly backups + a week of margin
    assert "Sicherungskopien (Backups)" in html and "spätestens nach 35 Tagen" in html
