"""Rules behind issue 15's UX fixes: a caller's name without its umlaut, a postcode that
matches nothing, why a slot finds nobody, and the finder applying the patient's own wishes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ptmatch.domain import geo, matching, patients, secretariat, waitlist
from ptmatch.domain.errors import InvalidInput
from ptmatch.models import Postcode, Role
from tests.conftest import NOW
from tests.factories import (
    make_patient,
    make_practice,
    make_secretary,
    make_slot,
    make_therapist,
    make_user,
)

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("query", ["Krüger", "krüger", "Kruger", "Krueger", "KRUEGER", "krug"])
def test_caller_search_folds_umlauts_and_their_spellings(session, query):
    x = make_practice(session)
    sec = make_secretary(session, [x])
    kruger = make_patient(session, lists=[x], last_name="Krüger")
    make_patient(session, lists=[x], last_name="Kramer")
    hits = secretariat.search_callers(session, NOW, sec, query)
    assert [h.patient for h in hits] == [kruger]


def test_fold_name():
    assert {secretariat.fold_name(n) for n in ("Krüger", "Krueger", "Kruger")} == {"kruger"}
    assert secretariat.fold_name("Weiß") == secretariat.fold_name("weiss")


def test_a_postcode_that_matches_nothing_is_refused(session):
    session.add(Postcode(code="53111", place="Bonn", lat=50.7, lon=7.1))
    session.flush()
    with pytest.raises(InvalidInput) as exc:
        geo.check_postcode_exists(session, "99999")
    assert exc.value.field == "postcode"
    geo.check_postcode_exists(session, "53111")  # known
    geo.check_postcode_exists(session, "53119")  # its delivery area is known: approximate


def test_without_an_imported_table_every_postcode_passes(session):
    geo.check_postcode_exists(session, "99999")


def _slot_on(session, therapist, weekday: int, hour: int, now):
    day = now.astimezone(BERLIN).date() + dt.timedelta(days=1)
    while day.weekday() != weekday:
        day += dt.timedelta(days=1)
    start = dt.datetime.combine(day, dt.time(hour), tzinfo=BERLIN).astimezone(dt.UTC)
    return make_slot(session, therapist, start_at=start)


def test_why_nobody_names_the_weekday_nobody_is_free(session, now):
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    make_patient(session, lists=[practice], windows=[(0, 8 * 60, 20 * 60)])  # Mondays only
    saturday = _slot_on(session, therapist, 5, 10, now)
    why = matching.why_nobody(session, saturday, now)
    assert why[0].msgid.startswith("Niemand auf Ihren Listen") and "%(weekday)s Zeit" in (
        why[0].msgid
    )
    assert why[0].params == {"weekday": "samstags"}


def test_why_nobody_names_the_hour_and_the_empty_list(session, now):
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    assert (
        "wartet niemand"
        in matching.why_nobody(session, _slot_on(session, therapist, 0, 10, now), now)[0].msgid
    )
    make_patient(session, lists=[practice], windows=[(0, 8 * 60, 10 * 60)])  # Monday mornings
    late = _slot_on(session, therapist, 0, 17, now)
    assert "zu dieser Uhrzeit" in matching.why_nobody(session, late, now)[0].msgid


def test_finder_applies_the_patients_gender_wish_and_names_therapists(session, now):
    practice = make_practice(session, name="Praxis Mann")
    user = make_user(session, Role.THERAPIST, display_name="Jonas Beispiel")
    make_therapist(session, practice, user=user, gender="m")
    patient = make_patient(session, therapist_gender_wish="f")
    filters = waitlist.FinderFilters(distance_km=300)
    assert waitlist.find_practices(session, patient, 0, filters, now.date()) == []
    patient.therapist_gender_wish = "any"
    hits = waitlist.find_practices(session, patient, 0, filters, now.date())
    assert [h.practice.name for h in hits] == ["Praxis Mann"]
    assert hits[0].names and "Beispiel" in hits[0].names[0]


def test_registration_refuses_an_unknown_postcode(session, now):
    session.add(Postcode(code="53111", place="Bonn", lat=50.7, lon=7.1))
    session.flush()
    profile = patients.Profile(
        first_name="Jana",
        last_name="Krüger",
        birth_date=dt.date(1990, 4, 1),
        postcode="99999",
        windows=[(1, 8 * 60, 20 * 60)],
    )
    with pytest.raises(InvalidInput) as exc:
        patients.register_patient(
            session,
            now,
            email="jana@example.org",
            password="ein langes Passwort 2026",
            profile=profile,
            intake=patients.Intake(),
            consent_health=True,
            consent_rules=True,
        )
    assert exc.value.field == "postcode"
