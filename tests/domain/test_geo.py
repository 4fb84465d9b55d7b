"""Distance, postcode lookup with its fallback, and the GeoNames import (file and CLI)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from ptmatch.domain import geo
from ptmatch.models import Postcode
from tests.factories import make_patient, make_practice

ROWS = [
    # country, code, place, state, state code, county, code, community, code, lat, lon, accuracy
    ["DE", "53111", "Bonn", "Nordrhein-Westfalen", "NW", "", "", "", "", "50.7374", "7.0982", "4"],
    ["DE", "53113", "Bonn", "Nordrhein-Westfalen", "NW", "", "", "", "", "50.7249", "7.1128", "4"],
    [
        "DE",
        "53840",
        "Troisdorf",
        "Nordrhein-Westfalen",
        "NW",
        "",
        "",
        "",
        "",
        "50.8150",
        "7.1560",
        "4",
    ],
    [
        "DE",
        "53840",
        "Troisdorf Spich",
        "Nordrhein-Westfalen",
        "NW",
        "",
        "",
        "",
        "",
        "50.8350",
        "7.1360",
        "4",
    ],
    ["DE", "50667", "Köln", "Nordrhein-Westfalen", "NW", "", "", "", "", "50.9375", "6.9603", "4"],
]


def write_file(path, rows=ROWS, extra: str = "") -> str:
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n" + extra, encoding="utf-8")
    return str(path)


def test_great_circle_distance_bonn_cologne():
    assert geo.distance_km(50.7374, 7.0982, 50.9375, 6.9603) == pytest.approx(24.3, abs=0.5)


def test_great_circle_distance_berlin_munich():
    assert geo.distance_km(52.5200, 13.4050, 48.1351, 11.5820) == pytest.approx(504, abs=3)


def test_distance_is_zero_to_itself_and_symmetric():
    assert geo.distance_km(50.0, 7.0, 50.0, 7.0) == 0
    assert geo.distance_km(50, 7, 51, 8) == pytest.approx(geo.distance_km(51, 8, 50, 7))


def test_distance_between_unknown_is_none():
    assert geo.distance_between(None, None, 50.0, 7.0) is None


def test_bounding_box_contains_the_circle():
    min_lat, max_lat, min_lon, max_lon = geo.bounding_box(50.0, 7.0, 20)
    assert geo.distance_km(50.0, 7.0, max_lat, 7.0) == pytest.approx(20, rel=0.01)
    assert geo.distance_km(50.0, 7.0, 50.0, max_lon) == pytest.approx(20, rel=0.01)
    assert min_lat < 50 < max_lat and min_lon < 7 < max_lon


def test_import_replaces_the_table(session, tmp_path):
    session.add(Postcode(code="99999", place="Alt", state="", lat=1.0, lon=1.0))
    session.flush()
    assert geo.import_postcodes(session, write_file(tmp_path / "pc.txt")) == 5
    assert session.scalar(select(func.count(Postcode.id))) == 5
    assert session.scalar(select(Postcode.id).where(Postcode.code == "99999")) is None


def test_import_skips_malformed_lines_and_reports_progress(session, tmp_path):
    path = write_file(
        tmp_path / "pc.txt",
        extra="DE\t12345\tkaputt\n\nDE\t\tleer\tx\tx\tx\tx\tx\tx\t1\t2\t4\n"
        "DE\t12345\tOrt\tx\tx\tx\tx\tx\tx\tnan\t2\t4\n"
        "DE\t12345\tOrt\tx\tx\tx\tx\tx\tx\tnan-ish\t2\t4\n",
    )
    seen = []
    assert geo.import_postcodes(session, path, batch_size=2, progress=seen.append) == 5
    assert seen == [2, 2, 1]


def test_locate_exact_averages_repeated_codes(session, tmp_path):
    geo.import_postcodes(session, write_file(tmp_path / "pc.txt"))
    loc = geo.locate(session, "53840")
    assert (
        loc.precision == "exact"
        and loc.lat == pytest.approx(50.825)
        and loc.lon == pytest.approx(7.146)
    )


def test_locate_falls_back_to_three_digits(session, tmp_path):
    geo.import_postcodes(session, write_file(tmp_path / "pc.txt"))
    loc = geo.locate(session, "53119")
    assert loc.precision == "area3" and loc.approximate
    assert loc.lat == pytest.approx((50.7374 + 50.7249) / 2)


def test_locate_falls_back_to_two_digits(session, tmp_path):
    geo.import_postcodes(session, write_file(tmp_path / "pc.txt"))
    loc = geo.locate(session, "53999")
    assert loc.precision == "area2"
    assert loc.lat == pytest.approx((50.7374 + 50.7249 + 50.8150 + 50.8350) / 4)


def test_locate_unknown_region(session, tmp_path):
    geo.import_postcodes(session, write_file(tmp_path / "pc.txt"))
    assert geo.locate(session, "01067") == geo.UNKNOWN
    assert not geo.UNKNOWN.known


def test_fill_missing_coordinates(session, tmp_path):
    geo.import_postcodes(session, write_file(tmp_path / "pc.txt"))
    practice = make_practice(session, postcode="50667", lat=None, lon=None)
    patient = make_patient(session, postcode="53113", lat=None, lon=None)
    assert geo.fill_missing_coordinates(session) == 2
    assert practice.lat == pytest.approx(50.9375) and patient.lat == pytest.approx(50.7249)


@pytest.mark.parametrize(
    ("code", "valid"), [("53111", True), ("5311", False), ("531111", False), ("5311a", False)]
)
def test_postcode_format(code, valid):
    assert geo.is_valid_postcode(code) is valid


def test_cli_imports_a_file(tmp_path, monkeypatch, database_url, engine, sessions):
    path = write_file(tmp_path / "pc.txt")
    monkeypatch.setenv("PTMATCH_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PTMATCH_DATABASE_URL", database_url)
    from ptmatch.cli import main

    result = CliRunner().invoke(main, ["import-postcodes", path])
    assert result.exit_code == 0, result.output
    assert "imported 5 postcodes" in result.output
    with sessions() as s:
        assert s.scalar(select(func.count(Postcode.id))) == 5


def test_cli_refuses_a_missing_file(tmp_path, monkeypatch, database_url):
    monkeypatch.setenv("PTMATCH_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PTMATCH_DATABASE_URL", database_url)
    from ptmatch.cli import main

    result = CliRunner().invoke(main, ["import-postcodes", str(tmp_path / "missing.txt")])
    assert result.exit_code != 0
