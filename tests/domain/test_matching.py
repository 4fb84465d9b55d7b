"""Ranking: every hard filter excludes, the score orders as documented, reasons are listed,
and the SQL score agrees with the pure Python one."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, union_all

from ptmatch.catalog import METHODS
from ptmatch.domain import matching
from ptmatch.models import (
    EntryStatus,
    Modality,
    OfferStatus,
    PatientStatus,
    Preference,
    RemovalReason,
    Role,
    SlotStatus,
    WaitlistEntry,
)
from tests.conftest import NOW
from tests.factories import (
    add_to_list,
    empty_tables_quickly,
    make_offer,
    make_patient,
    make_practice,
    make_slot,
    make_therapist,
    make_user,
)

DAY = dt.timedelta(days=1)
TOMORROW_14 = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)  # Wednesday 14:00 Berlin
KOELN = (50.9375, 6.9603)  # about 25 km from Bonn


@pytest.fixture(autouse=True)
def _clean_database(engine):
    """The quick cleanup (tests.factories.empty_tables_quickly) instead of TRUNCATE."""
    yield
    empty_tables_quickly(engine)


@pytest.fixture
def world(session):
    practice = make_practice(session)
    therapist = make_therapist(
        session,
        practice,
        specialties=("depression",),
        exclusions=("psychosis",),
        methods=("vt",),
        populations=("adults",),
        languages=("de", "en"),
        insurances=("gkv", "pkv"),
    )
    slot = make_slot(session, therapist, start_at=TOMORROW_14)
    return practice, therapist, slot


def ids(session, slot, now=NOW):
    return [c.patient_id for c in matching.rank_candidates(session, slot, now)]


def test_a_fitting_patient_on_the_list_is_a_candidate(session, world):
    practice, _, slot = world
    patient = make_patient(session, lists=[practice])
    assert ids(session, slot) == [patient.id]
    assert matching.prefilter(session, slot, NOW) == [patient.id]


def _spoil(session, patient, practice, what):
    """Make one hard filter fail for a patient who otherwise fits."""
    user = patient.user
    match what:
        case "paused":
            patient.status = PatientStatus.PAUSED
        case "booked":
            patient.status = PatientStatus.BOOKED
        case "inactive":
            patient.status = PatientStatus.INACTIVE
        case "paused_until":
            patient.paused_until = (NOW + 3 * DAY).date()
        case "email_unverified":
            user.email_verified_at = None
        case "user_disabled":
            user.is_enabled = False
        case "no_consent":
            patient.consent_health_at = None
        case "left_list":
            entry = session.query(WaitlistEntry).filter_by(patient_id=patient.id).one()
            entry.status = EntryStatus.REMOVED
            entry.removed_reason = RemovalReason.LEFT
        case "wrong_weekday":
            for window in patient.availability:
                window.weekday = 0 if window.weekday == 2 else window.weekday
        case "window_too_short":
            for window in patient.availability:
                window.end_min = 14 * 60 + 30  # the session ends 14:50 Berlin
        case "window_starts_late":
            for window in patient.availability:
                window.start_min = 14 * 60 + 5
        case "exclusion":
            patient.clinical.problems_mask |= 1 << 7  # psychosis
        case "child":
            patient.birth_date = dt.date(2016, 1, 1)
        case "language":
            patient.languages_mask = 1 << 2  # Turkish only
        case "gender_wish":
            patient.therapist_gender_wish = "m"
        case "insurance":
            patient.insurance = "self"
        case _:
            raise AssertionError(what)
    session.flush()


HARD_FILTERS = [
    "paused",
    "booked",
    "inactive",
    "paused_until",
    "email_unverified",
    "user_disabled",
    "no_consent",
    "left_list",
    "wrong_weekday",
    "window_too_short",
    "window_starts_late",
    "exclusion",
    "child",
    "language",
    "gender_wish",
    "insurance",
]


def test_each_hard_filter_excludes(session, world):
    """One patient per hard filter, each failing only that filter: only the keeper remains."""
    practice, _, slot = world
    keeper = make_patient(session, lists=[practice])
    spoiled = {}
    for what in HARD_FILTERS:
        patient = make_patient(session, lists=[practice])
        _spoil(session, patient, practice, what)
        spoiled[patient.id] = what
    leaked = [spoiled.get(pid, pid) for pid in ids(session, slot) if pid != keeper.id]
    assert leaked == []
    assert ids(session, slot) == [keeper.id]
    assert matching.prefilter(session, slot, NOW) == [keeper.id]


def test_not_on_this_practice_list_is_excluded(session, world):
    _, _, slot = world
    make_patient(session, lists=[make_practice(session)])
    assert ids(session, slot) == []


def test_video_slot_excludes_patients_who_refuse_video(session, world):
    practice, therapist, _ = world
    slot = make_slot(session, therapist, start_at=TOMORROW_14 + 2 * DAY, modality=Modality.VIDEO)
    ok = make_patient(session, lists=[practice])
    make_patient(session, lists=[practice], video_pref=Preference.NO)
    assert ids(session, slot) == [ok.id]


def test_in_person_slot_keeps_patients_who_refuse_video(session, world):
    practice, _, slot = world
    patient = make_patient(session, lists=[practice], video_pref=Preference.NO)
    assert ids(session, slot) == [patient.id]


def test_unknown_age_is_not_excluded(session, world):
    practice, _, slot = world
    patient = make_patient(session, lists=[practice], birth_date=None)
    assert ids(session, slot) == [patient.id]


def test_pool_patient_within_their_distance_is_a_candidate(session, world):
    _, _, slot = world
    near = make_patient(session, pool=True, lat=50.75, lon=7.10, max_distance_km=10)
    make_patient(session, pool=True, lat=KOELN[0], lon=KOELN[1], max_distance_km=20)  # 25 km away
    far_but_willing = make_patient(
        session, pool=True, lat=KOELN[0], lon=KOELN[1], max_distance_km=30
    )
    assert sorted(ids(session, slot)) == sorted([near.id, far_but_willing.id])


def test_pool_patient_without_coordinates_is_not_filtered_by_distance(session, world):
    _, _, slot = world
    patient = make_patient(session, pool=True, lat=None, lon=None, postcode="")
    assert ids(session, slot) == [patient.id]


def test_pool_is_closed_when_the_practice_takes_no_pool_patients(session, world):
    practice, _, slot = world
    practice.accepts_pool = False
    make_patient(session, pool=True)
    assert ids(session, slot) == []


def test_patient_on_both_lists_appears_once(session, world):
    practice, _, slot = world
    patient = make_patient(session, lists=[practice], pool=True)
    candidates = matching.rank_candidates(session, slot, NOW)
    assert [c.patient_id for c in candidates] == [patient.id]
    assert candidates[0].on_practice_list is True


def test_phone_registered_patient_with_recorded_consent_is_a_candidate(session, world):
    practice, _, slot = world
    secretary = make_user(session, Role.SECRETARY)
    patient = make_patient(session, lists=[practice])
    patient.user_id = None
    patient.consent_recorded_by_id = secretary.id
    session.flush()
    assert ids(session, slot) == [patient.id]


def test_already_offered_this_slot_is_excluded_whatever_the_answer(session, world):
    practice, _, slot = world
    patient = make_patient(session, lists=[practice])
    make_offer(session, slot, patient, status=OfferStatus.DECLINED)
    assert ids(session, slot) == []


def test_pending_offer_for_an_overlapping_slot_excludes(session, world):
    practice, therapist, slot = world
    other_therapist = make_therapist(session, practice)
    overlapping = make_slot(
        session, other_therapist, start_at=TOMORROW_14 + dt.timedelta(minutes=30)
    )
    patient = make_patient(session, lists=[practice])
    make_offer(session, overlapping, patient)
    assert ids(session, slot) == []


def test_expired_or_non_overlapping_offers_do_not_exclude(session, world):
    practice, therapist, slot = world
    other_therapist = make_therapist(session, practice)
    later = make_slot(session, other_therapist, start_at=TOMORROW_14 + dt.timedelta(minutes=50))
    overlapping = make_slot(
        session, other_therapist, start_at=TOMORROW_14 - dt.timedelta(minutes=20)
    )
    patient = make_patient(session, lists=[practice])
    make_offer(session, later, patient)
    make_offer(session, overlapping, patient, expires_at=NOW - dt.timedelta(minutes=1))
    assert ids(session, slot) == [patient.id]


def test_reposted_slot_skips_who_accepted_or_declined_the_original(session, world):
    practice, therapist, original = world
    original.status = SlotStatus.CANCELLED
    canceller = make_patient(session, lists=[practice])
    decliner = make_patient(session, lists=[practice])
    taken = make_patient(session, lists=[practice])
    make_offer(session, original, canceller, status=OfferStatus.ACCEPTED)
    make_offer(session, original, decliner, status=OfferStatus.DECLINED)
    make_offer(session, original, taken, status=OfferStatus.TAKEN)
    repost = make_slot(session, therapist, start_at=TOMORROW_14, reposted_from_id=original.id)
    assert ids(session, repost) == [taken.id]


# --- score ----------------------------------------------------------------------------------------


def test_score_orders_by_the_documented_parts(session, world):
    practice, _, slot = world
    base = dict(problems=("anxiety",), added_at=NOW - 5 * DAY)
    plain = make_patient(session, lists=[practice], **base)
    urgent = make_patient(session, lists=[practice], urgent=True, **base)  # +40
    waited = make_patient(
        session, lists=[practice], problems=("anxiety",), added_at=NOW - 200 * DAY
    )  # 6 months: +24
    specialty = make_patient(
        session, lists=[practice], problems=("depression",), added_at=NOW - 5 * DAY
    )  # +25
    method = make_patient(session, lists=[practice], methods=("vt",), **base)  # +15
    linked = make_patient(session, **base)
    add_to_list(session, linked, practice, via_practice_link=True)  # +20
    prio = make_patient(session, **base)
    add_to_list(session, prio, practice, priority=3)  # +45
    candidates = matching.rank_candidates(session, slot, NOW)
    order = [c.patient_id for c in candidates]
    assert order == [prio.id, urgent.id, specialty.id, waited.id, linked.id, method.id, plain.id]
    scores = {c.patient_id: c.score for c in candidates}
    # Every candidate here lives at the practice's address: +15 for distance.
    assert scores[plain.id] == 15
    assert scores[prio.id] == 15 + 45
    assert scores[waited.id] == 15 + 6 * matching.WAIT_POINTS


def test_ties_break_by_waiting_since_then_id(session, world):
    practice, _, slot = world
    first = make_patient(session, lists=[practice], problems=("anxiety",), added_at=NOW - 3 * DAY)
    second = make_patient(session, lists=[practice], problems=("anxiety",), added_at=NOW - 3 * DAY)
    earlier = make_patient(session, lists=[practice], problems=("anxiety",), added_at=NOW - 4 * DAY)
    assert ids(session, slot) == [earlier.id, first.id, second.id]


def test_reasons_are_listed_for_the_therapist(session, world):
    practice, _, slot = world
    patient = make_patient(
        session,
        problems=("depression",),
        methods=("vt", "tp"),
        urgent=True,
        added_at=NOW - 65 * DAY,
    )
    add_to_list(session, patient, practice, via_practice_link=True, priority=2)
    candidate = matching.rank_candidates(session, slot, NOW)[0]
    reasons = {r.msgid: r for r in candidate.reasons}
    assert reasons["Wartet seit %(months)s Monat(en)"].params == {"months": 2}
    assert "Dringlich (PTV 11)" in reasons
    assert reasons["Priorität der Praxis: %(level)s"].points == 30
    assert "Über den Link der Praxis angemeldet" in reasons
    assert "Passt zu einem Schwerpunkt" in reasons
    assert reasons["Wunschverfahren: %(methods)s"].params == {"methods": "VT"}
    assert reasons["Entfernung: etwa %(km)s km"].params == {"km": 1}
    assert candidate.score == sum(r.points for r in candidate.reasons)
    msgid, params = reasons["Wartet seit %(months)s Monat(en)"]  # unpacks as (msgid, value)
    assert msgid % params == "Wartet seit 2 Monat(en)"


def test_video_wish_counts_for_video_slots(session, world):
    practice, therapist, _ = world
    slot = make_slot(session, therapist, start_at=TOMORROW_14 + 2 * DAY, modality=Modality.VIDEO)
    plain = make_patient(session, lists=[practice], added_at=NOW - 5 * DAY)
    wants = make_patient(session, lists=[practice], video_pref=Preference.WANTED)
    assert ids(session, slot) == [wants.id, plain.id]


def test_limit_returns_the_best(session, world):
    practice, _, slot = world
    make_patient(session, lists=[practice], problems=("anxiety",))
    best = make_patient(session, lists=[practice], urgent=True)
    assert [c.patient_id for c in matching.rank_candidates(session, slot, NOW, limit=1)] == [
        best.id
    ]


def test_sql_score_equals_python_score(session, world):
    """Patients with every combination of features: the database's order is the Python one."""
    practice, _, slot = world
    coords = [(50.7374, 7.0982), (50.77, 7.10), (50.82, 7.16), (50.90, 7.02), (None, None)]
    for i in range(30):
        lat, lon = coords[i % len(coords)]
        patient = make_patient(
            session,
            lists=[] if i % 3 == 0 else [practice],
            pool=i % 3 == 0,
            urgent=i % 4 == 0,
            problems=("depression",) if i % 5 == 0 else ("anxiety",),
            methods=METHODS.from_mask(1 << (i % 3)),
            lat=lat,
            lon=lon,
            max_distance_km=40,
            added_at=NOW - (i * 23 % 400) * DAY - dt.timedelta(hours=i),
        )
        if i % 3 and i % 2:
            entry = session.query(WaitlistEntry).filter_by(patient_id=patient.id).one()
            entry.priority = i % 4
            entry.via_practice_link = i % 7 == 0
    session.flush()
    ctx = matching.build_context(session, slot, NOW)
    union = union_all(*matching._branches(ctx, with_facts=True)).subquery()
    rows = session.execute(select(union)).all()
    assert len(rows) == 30
    for row in rows:
        facts = matching.Facts(
            patient_id=row.patient_id,
            added_at=row.added_at,
            on_list=bool(row.on_list),
            priority=row.priority,
            via_link=bool(row.via_link),
            urgent=bool(row.urgent),
            problems_mask=row.problems_mask,
            methods_mask=row.methods_mask,
            video_pref=str(row.video_pref),
            lat=row.lat,
            lon=row.lon,
        )
        assert row.score == matching.score(facts, ctx)[0], row


def test_waiting_months_boundaries():
    assert matching.waiting_months(NOW - 29 * DAY, NOW) == 0
    assert matching.waiting_months(NOW - 30 * DAY, NOW) == 1
    assert matching.waiting_months(NOW - 3000 * DAY, NOW) == matching.WAIT_MAX_MONTHS
    assert matching.waiting_months(NOW + DAY, NOW) == 0


@pytest.mark.parametrize("distinct", [5, matching.MAX_REACH_ARMS + 5])
def test_pool_reach_per_radius_and_per_band(session, world, distinct):
    """Few radii: one index arm each; very many: grouped in bands. Same answer either way."""
    _, _, slot = world
    expected = set()
    for i in range(distinct):
        radius = 20 + i * 3
        lat = (
            50.7374 + (radius + (1 if i % 2 else -1)) / matching.KM_PER_DEGREE
        )  # just outside / inside
        patient = make_patient(session, pool=True, lat=lat, lon=7.0982, max_distance_km=radius)
        if i % 2 == 0:
            expected.add(patient.id)
    assert len(matching.reach_values(session)) == distinct
    assert set(ids(session, slot)) == expected
