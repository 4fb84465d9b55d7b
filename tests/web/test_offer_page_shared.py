"""Issue 17: the mailed offer page is rendered once per slot, deadline and language and shared
by the patients of a wave, each with their own link and CSRF token; a changed fact is a new
page at once. An answer that arrives after the slot is gone gets "taken" from one read and
never asks for the write lock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from flask import template_rendered
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from ptmatch.db import is_sqlite
from ptmatch.models import Booking
from ptmatch.web.pagecache import SharedPages
from tests.conftest import NOW
from tests.factories import empty_tables_quickly, make_network, make_offer, make_slot

TOKEN_A = "tok_" + "S" * 40
TOKEN_B = "tok_" + "T" * 40
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
MARKER_RE = re.compile(r"ptm-[0-9a-f]{16}-")


@pytest.fixture(autouse=True)
def _clean_database(engine):
    yield
    empty_tables_quickly(engine)


@pytest.fixture
def app(settings, engine):
    """Without rate limits: they count each token-page request in a write of their own."""
    from ptmatch import create_app

    app = create_app(dataclasses.replace(settings, RATE_LIMITS_ENABLED=False))
    yield app
    app.extensions["ptmatch_engine"].dispose()


@pytest.fixture
def wave(session):
    """One slot offered to two patients of practice X."""
    net = make_network(session, x={"name": "Praxis am Rhein"}, more_on_x=[{}])
    slot = make_slot(session, net.ther_x, start_at=NOW + dt.timedelta(hours=30))
    make_offer(session, slot, net.on_x[0], token=TOKEN_A)
    make_offer(session, slot, net.on_x[1], token=TOKEN_B)
    session.commit()
    return net, slot


def _renders(app) -> list[str]:
    seen: list[str] = []

    def note(_sender, template, context, **_extra):
        seen.append(template.name)

    template_rendered.connect(note, app, weak=False)
    return seen


def _csrf(html: str) -> set[str]:
    return set(CSRF_RE.findall(html))


def test_the_patients_of_a_wave_share_one_render_each_with_their_own_link_and_token(app, wave):
    renders = _renders(app)
    alice, bob = FlaskClient(app, use_cookies=True), FlaskClient(app, use_cookies=True)
    page_a = alice.get(f"/o/{TOKEN_A}").get_data(as_text=True)
    page_b = bob.get(f"/o/{TOKEN_B}").get_data(as_text=True)
    assert renders.count("offers/offer.html") == 1  # Bob got Alice's render
    assert f'action="/o/{TOKEN_A}"' in page_a and TOKEN_B not in page_a
    assert f'action="/o/{TOKEN_B}"' in page_b and TOKEN_A not in page_b
    assert f'value="/o/{TOKEN_B}?"' in page_b  # the language switch comes back to Bob's page
    assert not MARKER_RE.search(page_a + page_b)
    (token_a,), (token_b,) = _csrf(page_a), _csrf(page_b)
    assert token_a != token_b  # two sessions, two tokens
    # Each token is the one its own session accepts: Bob's answer with his page's token books.
    booked = bob.post(f"/o/{TOKEN_B}", data={"csrf_token": token_b, "answer": "accept"})
    assert booked.status_code == 200 and "Ihr Termin ist gebucht" in booked.get_data(as_text=True)


def test_a_changed_fact_is_shown_at_once(app, session, wave):
    net, slot = wave
    client = FlaskClient(app, use_cookies=True)
    assert "Praxis am Rhein" in client.get(f"/o/{TOKEN_A}").get_data(as_text=True)
    net.x.name = "Praxis an der Sieg"  # the practice, alone
    session.commit()
    html = client.get(f"/o/{TOKEN_A}").get_data(as_text=True)
    assert "Praxis an der Sieg" in html and "Praxis am Rhein" not in html
    slot.start_at = NOW + dt.timedelta(hours=31)  # the slot, alone
    session.commit()
    html = client.get(f"/o/{TOKEN_A}").get_data(as_text=True)
    assert "Mittwoch, 25. November 2026, 17:00" in html  # NOW + 31 h, Berlin time


def test_each_language_gets_its_own_page(app, wave):
    german = FlaskClient(app, use_cookies=True)
    english = FlaskClient(app, use_cookies=True)
    de = german.get(f"/o/{TOKEN_A}").get_data(as_text=True)
    en = english.get(f"/o/{TOKEN_A}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Termin annehmen" in de and "Termin annehmen" not in en
    assert "Accept" in en


def test_the_cache_is_bounded_and_keeps_the_recently_used(app):
    pages = SharedPages(size=2)
    with app.test_request_context("/"):
        for key in ("a", "b", "a", "c"):
            pages.render("offers/taken.html", key, {})
    assert [k[2] for k in pages._pages] == ["a", "c"]


def _statements(app) -> list[str]:
    seen: list[str] = []

    def hook(_conn, _cursor, statement, *_):
        seen.append(statement.strip().upper())

    event.listen(app.extensions["ptmatch_engine"], "before_cursor_execute", hook)
    return seen


def test_an_answer_after_the_slot_is_gone_reads_once_and_writes_nothing(
    app, session, wave, database_url
):
    winner, loser = FlaskClient(app, use_cookies=True), FlaskClient(app, use_cookies=True)
    token_w = _csrf(winner.get(f"/o/{TOKEN_A}").get_data(as_text=True)).pop()
    token_l = _csrf(loser.get(f"/o/{TOKEN_B}").get_data(as_text=True)).pop()
    won = winner.post(f"/o/{TOKEN_A}", data={"csrf_token": token_w, "answer": "accept"})
    assert won.status_code == 200
    statements = _statements(app)
    late = loser.post(f"/o/{TOKEN_B}", data={"csrf_token": token_l, "answer": "accept"})
    assert late.status_code == 200 and "schon vergeben" in late.get_data(as_text=True)
    verbs = [s.split(None, 1)[0] for s in statements]
    assert verbs.count("SELECT") == 1
    assert not {"UPDATE", "INSERT", "DELETE", "SAVEPOINT"} & set(verbs)
    if is_sqlite(database_url):
        assert "BEGIN" in statements and "BEGIN IMMEDIATE" not in statements
    session.commit()
    assert session.scalar(select(func.count(Booking.id))) == 1
