"""`ptmatch report`: a printable single-file HTML report; parsed by an HTML parser here."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from ptmatch.models import Booking, BookingStatus, SlotStatus
from tests.conftest import NOW
from tests.factories import empty_tables_quickly, make_network, make_slot

VOID = {"meta", "link", "br", "img", "input", "hr", "line", "rect", "path"}


class Checker(HTMLParser):
    """Balanced tags, no external resource, no script."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.seen: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append(tag)
        attrs = dict(attrs)
        assert tag != "script"
        assert not (attrs.get("src") or attrs.get("href", "").startswith(("http", "//")))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.seen.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(autouse=True)
def _clean_database(engine):
    yield
    empty_tables_quickly(engine)


@pytest.fixture
def net(session):
    net = make_network(session)
    for days in (3, 5):
        slot = make_slot(
            session,
            net.ther_x,
            start_at=NOW - dt.timedelta(days=days),
            created_at=NOW - dt.timedelta(days=days + 2),
            status=SlotStatus.BOOKED,
        )
        session.add(
            Booking(
                slot_id=slot.id,
                patient_id=net.a.id,
                status=BookingStatus.ATTENDED,
                created_at=NOW - dt.timedelta(days=days + 1),
            )
        )
    session.commit()
    return net


def _run(app, settings, monkeypatch, tmp_path, *args):
    import ptmatch.cli as cli

    monkeypatch.setattr(cli, "cli_settings", lambda: settings)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli.main, ["report", *args, "--out", str(out)])
    return result, out


def test_region_report_is_valid_html_with_charts(app, settings, monkeypatch, tmp_path, net):
    result, out = _run(app, settings, monkeypatch, tmp_path, "--month", "2026-11")
    assert result.exit_code == 0, result.output
    checker = Checker()
    checker.feed(out.read_text(encoding="utf-8"))
    checker.close()
    assert checker.stack == []
    assert checker.seen[0] == "html" and checker.seen.count("svg") == 4
    text = " ".join(checker.text)
    assert "Monatsbericht" in text
    assert "1.10.2026 – 31.10.2026" in text  # compared with the month before
    assert "< 5" in text  # the region report hides small counts


def test_practice_report_has_its_own_counts(app, settings, monkeypatch, tmp_path, net):
    result, out = _run(
        app, settings, monkeypatch, tmp_path, "--month", "2026-11", "--practice", net.x.slug
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "Praxis X" in html and "&lt; 5" not in html


def test_bad_month_and_unknown_practice_are_refused(app, settings, monkeypatch, tmp_path, net):
    result, out = _run(app, settings, monkeypatch, tmp_path, "--month", "2026-13")
    assert result.exit_code == 2 and "YYYY-MM" in result.output and not out.exists()
    result, out = _run(
        app, settings, monkeypatch, tmp_path, "--month", "2026-11", "--practice", "nope"
    )
    assert result.exit_code == 2 and not out.exists()
