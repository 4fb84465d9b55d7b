"""Issue 17: the workbench's free text is answered by an index — pg_trgm (GIN) on PostgreSQL,
an FTS5 trigram table on SQLite that triggers keep in step with every write of the intake
text. (What the search finds is tested in test_workbench.py.)"""

from __future__ import annotations

import pytest
from sqlalchemy import delete, event, text, update

from ptmatch.domain import workbench
from ptmatch.models import PatientClinical, search
from tests.conftest import NOW
from tests.factories import add_to_list, make_patient, make_practice, make_therapist


def _world(session):
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    patient = make_patient(session, description="Angst vor Spinnen und Übelkeit im Bus")
    add_to_list(session, patient, practice)
    session.flush()
    return therapist, patient


def _found(session, therapist, q) -> bool:
    page = workbench.list_waitlist(session, NOW, therapist, workbench.Filters(q=q))
    return page.total == 1


def test_the_index_follows_every_write_of_the_intake_text(session):
    therapist, patient = _world(session)
    assert _found(session, therapist, "spinnen")
    assert _found(session, therapist, "ÜBELKEIT")
    session.execute(
        update(PatientClinical)
        .where(PatientClinical.patient_id == patient.id)
        .values(description="Schlafprobleme seit dem Umzug")
    )
    session.expire_all()
    assert not _found(session, therapist, "Spinnen")
    assert _found(session, therapist, "umzug")
    session.execute(delete(PatientClinical).where(PatientClinical.patient_id == patient.id))
    assert not _found(session, therapist, "umzug")


def test_the_search_objects_exist_and_answer_the_query(session, database_url, monkeypatch):
    therapist, _patient = _world(session)
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        names = set(
            conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE name LIKE 'patient_clinical_fts%'"
            ).scalars()
        )
        assert {search.FTS_TABLE, f"{search.FTS_TABLE}_ai", f"{search.FTS_TABLE}_au"} <= names
        condition, by_patient = workbench._text_condition(session, "sqlite", "Spinnen")
        assert by_patient  # a rare word: its patients, looked up in the FTS table, lead
        monkeypatch.setattr(workbench, "FTS_RARE", 0)
        condition, by_patient = workbench._text_condition(session, "sqlite", "Spinnen")
        assert not by_patient and search.FTS_TABLE in str(condition.compile(conn))
        plan = " ".join(
            str(row[-1])
            for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT rowid FROM patient_clinical_fts "
                "WHERE patient_clinical_fts MATCH '\"Spinnen\"'"
            )
        )
        assert "VIRTUAL TABLE INDEX" in plan
    else:
        assert conn.execute(
            text("SELECT 1 FROM pg_indexes WHERE indexname = :n"), {"n": search.TRGM_INDEX}
        ).scalar()
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(
            conn.execute(
                text(
                    "EXPLAIN SELECT patient_id FROM patient_clinical "
                    "WHERE description ILIKE '%spinnen%'"
                )
            ).scalars()
        )
        assert search.TRGM_INDEX in plan
    assert _found(session, therapist, "Spinnen")


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("Sp", True),  # shorter than a trigram: LIKE
        ("vor Spinnen", True),
        ('"Spinnen', False),  # FTS5 query syntax is plain text
        ("Spinnen*", False),
        ("Spinnen OR Katzen", False),  # every word must occur
        ("NEAR(Spinnen", False),
    ],
)
def test_short_terms_and_query_syntax_are_plain_text(session, q, expected):
    therapist, _patient = _world(session)
    assert _found(session, therapist, q) is expected


@pytest.mark.parametrize("rare", [200, 0])  # the rare-word path and the common-word path
def test_rare_and_common_words_find_the_same_entries(session, monkeypatch, rare):
    monkeypatch.setattr(workbench, "FTS_RARE", rare)
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    texts = ["Übelkeit am Morgen", "Angst, ÜBELKEIT", "Schlafprobleme", "übelkeit beim Essen"]
    patients = [make_patient(session, description=t) for t in texts]
    for p in patients:
        add_to_list(session, p, practice)
    other = make_patient(session, description="Übelkeit")  # on another practice's list
    add_to_list(session, other, make_practice(session))
    session.flush()
    page = workbench.list_waitlist(session, NOW, therapist, workbench.Filters(q="übelkeit"))
    assert {r.patient_id for r in page.items} == {patients[i].id for i in (0, 1, 3)}
    assert page.total == 3 and not page.capped


def test_a_rare_word_leads_the_query_on_sqlite(session):
    """SQLite's statistics know only the average list: a rare word's patients must lead, or
    a long list is read to its end for a few rows."""
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("the SQLite FTS path")
    therapist, _patient = _world(session)
    statements = []

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        if "FROM waitlist_entries" in statement and "LIMIT" in statement:
            statements.append((statement, parameters))

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", keep)
    try:
        workbench.list_waitlist(session, NOW, therapist, workbench.Filters(q="Spinnen"))
    finally:
        event.remove(bind, "before_cursor_execute", keep)
    conn = session.connection()
    for statement, parameters in statements:
        plan = " ".join(
            str(row[-1])
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        )
        assert "ix_waitlist_patient_status" in plan, plan
