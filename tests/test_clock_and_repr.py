"""The one clock (frozen in tests, read by every edge) and readable model reprs."""

from __future__ import annotations

import ast
import datetime as dt
import pathlib

from ptmatch import clock as app_clock
from tests.conftest import NOW
from tests.factories import make_offer, make_patient, make_practice, make_slot, make_therapist

PACKAGE = pathlib.Path(app_clock.__file__).parent


def test_the_fixture_freezes_the_app_clock(clock):
    assert app_clock.now() == NOW
    assert clock.advance(minutes=90) == NOW + dt.timedelta(minutes=90)
    assert app_clock.now() == NOW + dt.timedelta(minutes=90)


def test_a_page_that_shows_now_shows_the_frozen_time(client, session, login_as, clock):
    """The secretariat's day view prints today's date: the frozen one, and it moves with the
    clock."""
    from tests.factories import make_secretary

    secretary = make_secretary(session, [make_practice(session)])
    session.commit()
    login_as(secretary)
    assert "24.11.2026" in client.get("/sekretariat/termine").get_data(as_text=True)
    clock.advance(days=3)
    login_as(secretary)  # the old session stamp is three days old now
    assert "27.11.2026" in client.get("/sekretariat/termine").get_data(as_text=True)


def test_nothing_but_the_clock_reads_the_wall_clock():
    """datetime.now / utcnow / date.today / time.time only in ptmatch/clock.py (and the bench's
    process start gate, which synchronises real processes)."""
    allowed = {PACKAGE / "clock.py", PACKAGE / "bench" / "server.py"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            func = node.func if isinstance(node, ast.Call) else None
            if not isinstance(func, ast.Attribute):
                continue
            target = ast.unparse(func.value).split(".")[-1]
            if (
                func.attr in {"now", "utcnow", "today"} and target in {"datetime", "date", "dt"}
            ) or (func.attr == "time" and target == "time"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {ast.unparse(func)}")
    assert not offenders, offenders


def test_models_have_a_readable_repr_without_personal_data(session):
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    patient = make_patient(session, first_name="Geheim", lists=[practice])
    slot = make_slot(session, therapist)
    offer = make_offer(session, slot, patient)
    assert repr(offer) == f"<Offer {offer.id} pending slot={slot.id} patient={patient.id}>"
    assert "Geheim" not in repr(patient) and repr(patient).startswith(f"<Patient {patient.id} ")
