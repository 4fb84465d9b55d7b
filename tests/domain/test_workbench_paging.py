"""Issue 17 (figure 6): the practice's list counts at most COUNT_CAP entries beyond the
current page ("more than N"), and its two sort orders are read from an index."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect, text

from ptmatch.domain import paging, workbench
from tests.conftest import NOW
from tests.factories import make_patient, make_practice, make_therapist

DAY = dt.timedelta(days=1)


def _list(session, n):
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    ids = [
        make_patient(session, lists=[practice], added_at=NOW - (100 - i) * DAY).id for i in range(n)
    ]
    session.flush()
    return therapist, ids


def _page(session, therapist, page, sort="waiting"):
    return workbench.list_waitlist(
        session, NOW, therapist, workbench.Filters(sort=sort), page=page, per_page=5
    )


def test_a_list_longer_than_the_cap_is_counted_up_to_the_cap(session, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 10)
    therapist, ids = _list(session, 23)
    first = _page(session, therapist, 1)
    assert first.capped and first.total == 10
    assert first.pages == 2  # known to be full; "page 1 of more than 2"
    assert first.has_next and not first.has_prev
    assert [r.patient_id for r in first.items] == ids[:5]


def test_a_capped_count_reaches_past_the_current_page(session, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 10)
    therapist, ids = _list(session, 23)
    fourth = _page(session, therapist, 4)  # beyond the cap: counted up to its end (20)
    assert fourth.page == 4 and fourth.capped and fourth.total == 20 and fourth.has_next
    assert [r.patient_id for r in fourth.items] == ids[15:20]
    last = _page(session, therapist, 5)  # counted up to 25: all 23, exact again
    assert not last.capped and last.total == 23 and last.pages == 5 and not last.has_next
    assert [r.patient_id for r in last.items] == ids[20:]
    beyond = _page(session, therapist, 99)
    assert beyond.page == 5 and not beyond.capped and beyond.total == 23


def test_a_list_within_the_cap_is_counted_exactly(session, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 10)
    therapist, ids = _list(session, 10)
    page = _page(session, therapist, 2, sort="priority")
    assert not page.capped and page.total == 10 and page.pages == 2 and not page.has_next
    assert [r.patient_id for r in page.items] == ids[5:]


def test_count_at_most_stops_after_the_cap(session):
    from sqlalchemy import literal, select, union_all

    rows = union_all(*(select(literal(i).label("n")) for i in range(7))).subquery()
    query = select(rows.c.n)
    assert paging.count_at_most(session, query, 3) == 4
    assert paging.count_at_most(session, query, 7) == 7


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("ix_waitlist_practice_status_added", ["practice_id", "status", "added_at", "id"]),
        (
            "ix_waitlist_practice_status_priority",
            ["practice_id", "status", "priority", "added_at", "id"],
        ),
    ],
)
def test_the_list_orders_have_their_indexes(session, name, columns):
    indexes = {
        ix["name"]: ix for ix in inspect(session.connection()).get_indexes("waitlist_entries")
    }
    assert name in indexes
    got = [
        c or e
        for c, e in zip(
            indexes[name]["column_names"],
            indexes[name].get("expressions", indexes[name]["column_names"]),
            strict=True,
        )
    ]
    assert [c.split()[0].strip('"') for c in got] == columns


@pytest.mark.parametrize("sort", ["waiting", "priority"])
def test_the_list_page_is_read_in_index_order(session, sort):
    """No sort step: the page's rows come from the index in the list's order."""
    therapist, _ids = _list(session, 3)
    order = "w.priority DESC, w.added_at, w.id" if sort == "priority" else "w.added_at, w.id"
    sql = (
        "SELECT w.id FROM waitlist_entries w WHERE w.practice_id = :p AND w.status = 'active' "
        f"ORDER BY {order} LIMIT 25"
    )
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        plan = " ".join(
            str(r[-1])
            for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql), {"p": therapist.practice_id})
        )
        assert "TEMP B-TREE" not in plan and "ix_waitlist_practice_status" in plan, plan
    else:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(
            conn.execute(text("EXPLAIN " + sql), {"p": therapist.practice_id}).scalars()
        )
        assert "Sort" not in plan and "ix_waitlist_practice_status" in plan, plan
