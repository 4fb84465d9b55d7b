"""Issue 17: the workbench says "more than N entries" and "page x of more than y" for a list
longer than the count's cap, in German and English, and its pages still lead on."""

from __future__ import annotations

import datetime as dt

import pytest

from ptmatch.domain import paging
from tests.factories import make_patient, make_therapist


@pytest.fixture
def long_list(session, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 30)
    therapist = make_therapist(session)
    for i in range(60):
        make_patient(
            session,
            lists=[therapist.practice],
            first_name=f"Person{i:02d}",
            added_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=i),
        )
    session.commit()
    return therapist


def test_a_long_list_shows_more_than_the_cap(client, login_as, long_list):
    login_as(long_list.user)
    first = client.get("/praxis/").get_data(as_text=True)
    assert "mehr als 30 Einträge" in first and "60 Einträge" not in first
    assert "Seite 1 von mehr als 1" in first and "page=2" in first
    second = client.get("/praxis/?page=2").get_data(as_text=True)
    assert "Seite 2 von mehr als 2" in second and "page=3" in second
    assert "Person25" in second and "Person49" in second
    last = client.get("/praxis/?page=3").get_data(as_text=True)
    assert "60 Einträge" in last and "Seite 3 von 3" in last and "mehr als" not in last
    assert "page=4" not in last and "Person59" in last


def test_more_than_in_english(client, login_as, long_list):
    login_as(long_list.user)
    client.post("/lang", data={"lang": "en"})
    html = client.get("/praxis/").get_data(as_text=True)
    assert "more than 30 entries" in html and "Page 1 of more than 1" in html


def test_a_short_list_is_counted_exactly(client, session, login_as):
    therapist = make_therapist(session)
    for i in range(3):
        make_patient(session, lists=[therapist.practice], first_name=f"Person{i:02d}")
    session.commit()
    login_as(therapist.user)
    html = client.get("/praxis/").get_data(as_text=True)
    assert "3 Einträge" in html and "mehr als" not in html
