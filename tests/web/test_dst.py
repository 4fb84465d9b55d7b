"""Issue 16: a wall-clock time the clocks skip (2027-03-28 02:30 Europe/Berlin) is refused with a
message, and one they pass twice (2027-10-31 02:30) asks which: summer or winter time. One
helper (ptmatch.localtime) converts local to UTC at every place a local time is entered."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ptmatch import localtime
from ptmatch.models import GroupProgram, Slot
from tests.factories import empty_tables_quickly, make_network, make_practice, make_therapist

GAP_DAY, GAP_TIME = dt.date(2027, 3, 28), dt.time(2, 30)
FOLD_DAY, FOLD_TIME = dt.date(2027, 10, 31), dt.time(2, 30)


@pytest.fixture(autouse=True)
def _clean_database(engine):
    yield
    empty_tables_quickly(engine)


def _count(session, model) -> int:
    session.commit()
    return session.scalar(select(func.count()).select_from(model))


# --- the helper ---------------------------------------------------------------------------------


def test_a_skipped_time_does_not_exist():
    with pytest.raises(localtime.NonexistentTime):
        localtime.to_utc(GAP_DAY, GAP_TIME)
    with pytest.raises(localtime.NonexistentTime):
        localtime.to_utc(GAP_DAY, dt.time(2, 0))
    assert localtime.to_utc(GAP_DAY, dt.time(3, 0)) == dt.datetime(2027, 3, 28, 1, 0, tzinfo=dt.UTC)
    assert localtime.to_utc(GAP_DAY, dt.time(1, 59)) == dt.datetime(
        2027, 3, 28, 0, 59, tzinfo=dt.UTC
    )


def test_a_doubled_time_needs_a_choice():
    with pytest.raises(localtime.AmbiguousTime):
        localtime.to_utc(FOLD_DAY, FOLD_TIME)
    summer = localtime.to_utc(FOLD_DAY, FOLD_TIME, fold=localtime.SUMMER)
    winter = localtime.to_utc(FOLD_DAY, FOLD_TIME, fold=localtime.WINTER)
    assert summer == dt.datetime(2027, 10, 31, 0, 30, tzinfo=dt.UTC)
    assert winter == dt.datetime(2027, 10, 31, 1, 30, tzinfo=dt.UTC)
    # Any other hour of that day is plain.
    assert localtime.to_utc(FOLD_DAY, dt.time(3, 0)) == dt.datetime(
        2027, 10, 31, 2, 0, tzinfo=dt.UTC
    )


def test_weekly_recurrence_keeps_the_wall_clock_time():
    start = localtime.to_utc(dt.date(2027, 3, 21), dt.time(17, 0))  # winter: 16:00 UTC
    assert localtime.same_time_weeks_later(start, 1) == dt.datetime(
        2027, 3, 28, 15, 0, tzinfo=dt.UTC
    )


# --- slot posting (therapists, and the secretariat for its practices) ----------------------------


def _post_slot(client, day: dt.date, time: str, **extra):
    data = {
        "start_time": time,
        "minutes": "50",
        "kind": "sprechstunde",
        "modality": "in_person",
        "mode": "manual",
        "day": day.isoformat(),
        "on_day": "Am gewählten Datum",
        **extra,
    }
    return client.post("/termine/neu", data=data)


def test_slot_at_a_skipped_time_is_refused_with_a_message(client, session, login_as):
    net = make_network(session)
    session.commit()
    login_as(net.ther_x.user)
    resp = _post_slot(client, GAP_DAY, "02:30")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "Diese Uhrzeit gibt es am 28.3.2027 nicht" in body
    assert _count(session, Slot) == 0


def test_slot_at_a_doubled_time_asks_which_then_takes_the_answer(client, session, login_as):
    net = make_network(session)
    session.commit()
    login_as(net.ther_x.user)
    resp = _post_slot(client, FOLD_DAY, "02:30")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 400 and _count(session, Slot) == 0
    assert "gibt es diese Uhrzeit zweimal" in body
    assert 'name="dst"' in body and "Sommerzeit" in body and "Winterzeit" in body

    resp = _post_slot(client, FOLD_DAY, "02:30", dst=str(localtime.WINTER))
    assert resp.status_code == 302
    session.commit()
    slot = session.scalar(select(Slot))
    assert slot.start_at == dt.datetime(2027, 10, 31, 1, 30, tzinfo=dt.UTC)


def test_secretariat_slot_at_a_skipped_time_is_refused(client, session, login_as):
    net = make_network(session)
    session.commit()
    login_as(net.sec_x)
    resp = _post_slot(client, GAP_DAY, "02:30", therapist=str(net.ther_x.id))
    assert resp.status_code == 400
    assert "Diese Uhrzeit gibt es am 28.3.2027 nicht" in resp.get_data(as_text=True)
    assert _count(session, Slot) == 0


def test_an_ordinary_time_needs_no_choice(client, session, login_as):
    net = make_network(session)
    session.commit()
    login_as(net.ther_x.user)
    resp = _post_slot(client, FOLD_DAY, "10:00")
    assert resp.status_code == 302
    session.commit()
    assert session.scalar(select(Slot)).start_at == dt.datetime(2027, 10, 31, 9, 0, tzinfo=dt.UTC)


# --- groups -------------------------------------------------------------------------------------


def _group_form(day: dt.date, time: str, **extra) -> dict:
    return {
        "title": "DBT-Skillsgruppe",
        "method": "dbt",
        "modality": "in_person",
        "start_date": day.isoformat(),
        "start_time": time,
        "session_count": "2",
        "minutes": "100",
        "min_participants": "2",
        "max_participants": "3",
        **extra,
    }


def test_group_at_a_skipped_time_is_refused(client, session, login_as):
    therapist = make_therapist(session, make_practice(session), offers_group=True)
    session.commit()
    login_as(therapist.user)
    resp = client.post("/praxis/gruppen/neu", data=_group_form(GAP_DAY, "02:30"))
    assert resp.status_code in (200, 400)
    assert "Diese Uhrzeit gibt es am 28.3.2027 nicht" in resp.get_data(as_text=True)
    assert _count(session, GroupProgram) == 0


def test_group_at_a_doubled_time_asks_which(client, session, login_as):
    therapist = make_therapist(session, make_practice(session), offers_group=True)
    session.commit()
    login_as(therapist.user)
    resp = client.post("/praxis/gruppen/neu", data=_group_form(FOLD_DAY, "02:30"))
    body = resp.get_data(as_text=True)
    assert "gibt es diese Uhrzeit zweimal" in body and 'name="dst"' in body
    assert _count(session, GroupProgram) == 0
    resp = client.post(
        "/praxis/gruppen/neu", data=_group_form(FOLD_DAY, "02:30", dst=str(localtime.SUMMER))
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    session.commit()
    group = session.scalar(select(GroupProgram))
    assert group.first_session_at == dt.datetime(2027, 10, 31, 0, 30, tzinfo=dt.UTC)
