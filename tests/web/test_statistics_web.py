"""/admin/statistik and /praxis/statistik: charts and tables after slots are posted and booked,
small counts hidden outside a practice's own view, CSV downloads, the period picker's
refusals, and nobody else comes in."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest

from ptmatch.db import settings_of
from ptmatch.domain import offers
from ptmatch.models import BookingStatus, Offer, OfferMode
from tests.conftest import NOW
from tests.factories import empty_tables_quickly, make_network, make_slot

START = dt.datetime(2026, 11, 26, 13, 0, tzinfo=dt.UTC)  # Thursday 14:00 Berlin


@pytest.fixture(autouse=True)
def _clean_database(engine):
    yield
    empty_tables_quickly(engine)


@pytest.fixture
def net(session):
    """X posted a slot (auto) yesterday that A booked, and one that is still offering."""
    net = make_network(session, a={"urgent": True})
    settings = settings_of(session)
    posted_at = NOW - dt.timedelta(days=1)
    slot = offers.post_slot(
        session,
        posted_at,
        net.ther_x.user,
        net.ther_x,
        start_at=START,
        minutes=50,
        mode=OfferMode.AUTO,
        settings=settings,
    )
    offer = session.query(Offer).filter_by(slot_id=slot.id, patient_id=net.a.id).one()
    offers.accept_offer(session, posted_at + dt.timedelta(hours=2), offer, net.a.user, settings)
    make_slot(session, net.ther_x, start_at=START + dt.timedelta(days=1))
    session.commit()
    return net


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        assert tag != "script" or dict(attrs).get("src", "").startswith("/"), "inline script"
        assert "style" not in dict(attrs), f"inline style on <{tag}>"


def _page(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_admin_sees_region_charts_and_tables_with_small_counts_hidden(client, login_as, net):
    login_as(net.admin)
    html = _page(client, "/admin/statistik")
    parser = _Parser()
    parser.feed(html)
    assert parser.tags.count("svg") == 4  # fill rate, first appointment, waiting, attendance
    assert html.count("<table") >= 5  # the figures, a table per chart, urgency, places
    # one slot filled, two posted: counts under 5 are not shown outside a practice's own view
    assert "&lt; 5" in html
    assert not re.search(r"Termine gemeldet</th><td[^>]*>2<", html)
    assert "Dringlich" in html  # the region's urgency split (aggregated)
    assert "cdn" not in html.lower()


def test_practice_sees_its_own_counts(client, login_as, net):
    login_as(net.ther_x.user)
    html = _page(client, "/praxis/statistik")
    assert html.count("<svg") == 4
    assert re.search(r"Termine gemeldet</th><td[^>]*>2<", html)
    assert re.search(r"Vor Beginn besetzt</th><td[^>]*>1<", html)
    assert "&lt; 5" not in html
    assert "Dringlich" in html


def test_practice_of_y_sees_only_its_own_practice(client, login_as, net):
    login_as(net.ther_y.user)
    html = _page(client, "/praxis/statistik")
    assert re.search(r"Termine gemeldet</th><td[^>]*>0<", html)


def test_admin_on_one_practice_gets_no_urgency_split(client, login_as, net):
    login_as(net.admin)
    html = _page(client, f"/admin/statistik?praxis={net.x.id}")
    assert "Dringlich" not in html
    assert client.get("/admin/statistik?praxis=999999").status_code == 404


def test_csv_downloads(client, login_as, net):
    login_as(net.ther_x.user)
    response = client.get("/praxis/statistik.csv?tabelle=wahrnehmung")
    assert response.mimetype == "text/csv"
    assert response.get_data(as_text=True).splitlines()[0] == "label,value"
    summary = client.get("/praxis/statistik.csv").get_data(as_text=True)
    assert "Termine gemeldet,2," in summary
    assert client.get("/praxis/statistik.csv?tabelle=nichts").status_code == 404
    login_as(net.admin)
    region = client.get("/admin/statistik.csv?tabelle=kennzahlen").get_data(as_text=True)
    assert "Termine gemeldet,< 5," in region


def test_bad_period_gets_a_message_not_a_500(client, login_as, net):
    login_as(net.admin)
    html = _page(client, "/admin/statistik?von=2026-11-20&bis=2026-11-01")
    assert "invalid-feedback" in html
    html = _page(client, "/admin/statistik?von=kaputt")
    assert "invalid-feedback" in html


def test_period_picker_moves_the_window(client, login_as, net):
    login_as(net.ther_x.user)
    html = _page(client, "/praxis/statistik?von=2026-01-01&bis=2026-01-31")
    assert re.search(r"Termine gemeldet</th><td[^>]*>0<", html)


def test_others_are_refused(client, login_as, net):
    for user in (net.sec_x, net.a.user):
        login_as(user)
        for url in ("/admin/statistik", "/praxis/statistik", "/praxis/statistik.csv"):
            assert client.get(url).status_code in (302, 403, 404)


def test_attendance_counts_marked_bookings(client, login_as, net, session):
    from ptmatch.models import Booking

    booking = session.query(Booking).one()
    booking.status = BookingStatus.ATTENDED
    session.commit()
    login_as(net.ther_x.user)
    csv_text = client.get(
        "/praxis/statistik.csv?tabelle=wahrnehmung&von=2026-11-01&bis=2026-11-30"
    ).get_data(as_text=True)
    assert "Erschienen,1" in csv_text
