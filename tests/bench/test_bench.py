"""Smoke tests of the benchmark harness on a tiny region: the generator, the matching figure
and the report shape. No timing is asserted (that is what `scripts/bench` is for)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from ptmatch.bench import generate, matching, report
from ptmatch.bench.geography import region_for
from ptmatch.models import (
    Availability,
    EntryStatus,
    Patient,
    PatientClinical,
    PatientStatus,
    Practice,
    Slot,
    SlotStatus,
    Therapist,
    WaitlistEntry,
)

SIZE = 200
# GeoNames rows (tab separated) around Bonn; 53111 twice (weight 2).
ROWS = [
    ("53111", "Bonn", 50.7374, 7.0982),
    ("53111", "Bonn Zentrum", 50.7360, 7.1000),
    ("53113", "Bonn", 50.7250, 7.1100),
    ("53115", "Bonn", 50.7200, 7.0800),
    ("53225", "Bonn Beuel", 50.7380, 7.1300),
    ("53757", "Sankt Augustin", 50.7700, 7.1900),
    ("53173", "Bonn Bad Godesberg", 50.6800, 7.1600),
    ("53332", "Bornheim", 50.7600, 6.9900),
]


@pytest.fixture
def postcodes(tmp_path):
    path = tmp_path / "postcodes-DE.txt"
    path.write_text(
        "".join(
            f"DE\t{code}\t{place}\tNordrhein-Westfalen\tNW\t\t\t\t\t{lat}\t{lon}\t4\n"
            for code, place, lat, lon in ROWS
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def region(engine, now, postcodes):
    return generate.generate(engine, generate.Spec(SIZE, seed=7, postcodes=postcodes), now)


def test_generator_writes_the_requested_number_of_active_patients(region, session):
    active = session.scalar(
        select(func.count(Patient.id)).where(Patient.status == PatientStatus.ACTIVE)
    )
    assert active == SIZE
    assert region.rows["patients"] == SIZE + int(SIZE * 0.2)
    assert session.scalar(select(func.count(PatientClinical.patient_id))) == region.rows["patients"]


def test_every_active_patient_waits_somewhere_and_has_availability(region, session):
    without_list = session.scalar(
        select(func.count(Patient.id)).where(
            Patient.status == PatientStatus.ACTIVE,
            ~select(WaitlistEntry.id)
            .where(
                WaitlistEntry.patient_id == Patient.id, WaitlistEntry.status == EntryStatus.ACTIVE
            )
            .exists(),
        )
    )
    without_windows = session.scalar(
        select(func.count(Patient.id)).where(
            ~select(Availability.id).where(Availability.patient_id == Patient.id).exists()
        )
    )
    assert (without_list, without_windows) == (0, 0)


def test_generated_places_come_from_the_postcode_file(region, session):
    codes = {code for code, *_ in ROWS}
    used = set(session.scalars(select(Patient.postcode).distinct())) | set(
        session.scalars(select(Practice.postcode))
    )
    assert region.region_source == "postcodes-DE.txt"
    assert used <= codes


def test_therapists_are_approved_and_enrolled_for_two_factor(region, session):
    therapists = session.scalars(select(Therapist)).all()
    assert len(therapists) == region.rows["therapists"] >= 3
    assert all(t.is_approved and t.user.has_totp for t in therapists)


def _captured_rows(monkeypatch, engine, now, postcodes, seed: int) -> dict:
    captured: dict = {}

    class Capture(generate.BulkWriter):
        def write(self, table_name, columns, rows):
            captured.setdefault(table_name, []).extend(rows)

    monkeypatch.setattr(generate, "BulkWriter", Capture)
    generate.generate(engine, generate.Spec(SIZE, seed=seed, postcodes=postcodes), now)
    return captured


def test_the_same_seed_gives_the_same_region(monkeypatch, engine, now, postcodes):
    first = _captured_rows(monkeypatch, engine, now, postcodes, seed=3)
    assert first == _captured_rows(monkeypatch, engine, now, postcodes, seed=3)
    assert first != _captured_rows(monkeypatch, engine, now, postcodes, seed=4)


def test_missing_postcode_file_falls_back_to_a_grid_around_bonn(tmp_path):
    region = region_for(10_000, tmp_path / "missing.txt")
    assert region.source == "synthetic grid"
    assert len(region.places) > 100
    assert all(49.5 < p.lat < 52 and 5.5 < p.lon < 8.7 for p in region.places)


def test_reset_refuses_a_database_with_real_users(database_url, session, now):
    from tests.factories import make_user

    make_user(session)
    session.commit()
    with pytest.raises(generate.NotABenchDatabase):
        generate.reset_database(database_url)


def test_matching_figure_reports_floor_rank_and_ratio(region, sessions, now):
    result = matching.run(sessions, now, slots=2, passes=1, seed=1)
    assert set(result) >= {"floor", "rank", "rank_top10", "ratio", "same_ids", "candidates"}
    assert result["floor"]["n"] == result["rank"]["n"] == 2
    with sessions() as s:
        assert s.scalar(select(func.count(Slot.id)).where(Slot.status != SlotStatus.CANCELLED)) == 0


def _doc(status_of_service: str) -> dict:
    na = {"status": "n/a", "reason": "ptmatch.domain.offers not built yet"}
    stats = {"n": 2, "p50_ms": 1.0, "p95_ms": 2.0, "max_ms": 2.0}
    service = {
        "size": 10_000,
        "post_to_offers": na,
        "contention": na,
        "throughput": na,
        "memory": {
            "status": "ok",
            "workers": 4,
            "peak_rss_mb": 90.0,
            "per_worker_mb": [90.0] * 4,
            "after_offer_traffic": False,
        },
    }
    if status_of_service == "error":
        service["contention"] = {"status": "error", "reason": "RuntimeError: boom"}
    return {
        "engine": "sqlite",
        "seed": 1,
        "quick": True,
        "sizes": {
            "10000": {
                "matching": {
                    "status": "ok",
                    "floor": stats,
                    "rank": stats,
                    "rank_top10": stats,
                    "ratio": 1.0,
                    "same_ids": True,
                    "mismatched_slots": 0,
                    "candidates": {"p50": 5, "max": 9},
                }
            }
        },
        "service": service,
    }


def test_table_prints_every_figure_and_marks_what_is_not_built():
    text = report.table(_doc("n/a"))
    for label in ("1 matching", "2 post", "3 contention", "4 throughput", "5 worker peak RSS"):
        assert label in text
    assert text.count(report.NA) == 3


def test_table_reports_a_failed_figure_as_an_error():
    assert "error: RuntimeError: boom" in report.table(_doc("error"))


def test_json_report_round_trips(tmp_path):
    path = tmp_path / "bench.json"
    report.write_json(_doc("n/a"), path)
    assert json.loads(path.read_text())["sizes"]["10000"]["matching"]["ratio"] == 1.0


def test_cli_rejects_a_malformed_size():
    from ptmatch.cli import main

    result = CliRunner().invoke(main, ["bench", "--sizes", "ten"])
    assert result.exit_code == 2
    assert "not a size" in result.output
