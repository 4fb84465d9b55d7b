"""Issue 13: care stage against the slot's kind, hard and soft wishes, the one table of hard
filters (the pool view shows exactly whom matching could offer), the PTV 11 deadline in the
ranking, and the move on after an attended Sprechstunde."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ptmatch.catalog import LANGUAGES, METHODS
from ptmatch.domain import filters, matching, offers, workbench
from ptmatch.models import (
    BookingStatus,
    CareStage,
    EntryStatus,
    Modality,
    Patient,
    PatientStatus,
    Preference,
    SlotKind,
    WaitlistEntry,
)
from tests.conftest import NOW
from tests.factories import (
    add_to_list,
    make_patient,
    make_practice,
    make_slot,
    make_therapist,
)

TOMORROW_14 = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)  # Wednesday 14:00 Berlin
PTV11 = dt.date(2026, 11, 10)


@pytest.fixture
def world(session):
    practice = make_practice(session)
    therapist = make_therapist(
        session,
        practice,
        specialties=("depression",),
        exclusions=("psychosis",),
        methods=("vt",),
        languages=("de",),
    )
    return practice, therapist


def _candidates(session, world, *, kind=SlotKind.SPRECHSTUNDE, modality=Modality.IN_PERSON):
    practice, therapist = world
    slot = make_slot(session, therapist, start_at=TOMORROW_14, kind=kind, modality=modality)
    return {c.patient_id: c for c in matching.rank_candidates(session, slot, NOW)}


# (name, patient fields, slot kind, slot modality): each excluding case has an accepting twin.
EXCLUDED = [
    (
        "stage_sprechstunde_vs_therapy_place",
        dict(care_stage=CareStage.SPRECHSTUNDE, ptv11_date=PTV11),
        SlotKind.THERAPY_PLACE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "stage_sprechstunde_vs_probatorik",
        dict(care_stage=CareStage.SPRECHSTUNDE, ptv11_date=PTV11),
        SlotKind.PROBATORIK,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "stage_therapy_vs_sprechstunde",
        dict(care_stage=CareStage.THERAPY, ptv11_date=PTV11),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "stage_group_vs_sprechstunde",
        dict(care_stage=CareStage.GROUP),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "stage_any_without_ptv11_vs_therapy_place",
        dict(care_stage=CareStage.ANY),
        SlotKind.THERAPY_PLACE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "stage_therapy_without_ptv11_vs_akut",
        dict(care_stage=CareStage.THERAPY),
        SlotKind.AKUT,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "methods_only",
        dict(methods_mask=METHODS.to_mask(["tp"]), methods_only=True),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "gender_only",
        dict(therapist_gender_wish="m", gender_only=True),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "languages_only",
        dict(languages_mask=LANGUAGES.to_mask(["tr"]), languages_only=True),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "video_only_vs_in_person",
        dict(video_pref=Preference.WANTED, video_only=True),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    ("video_no_vs_video", dict(video_pref=Preference.NO), SlotKind.SPRECHSTUNDE, Modality.VIDEO),
]
ACCEPTED = [
    (
        "stage_therapy_vs_therapy_place",
        dict(care_stage=CareStage.THERAPY, ptv11_date=PTV11),
        SlotKind.THERAPY_PLACE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "stage_any_with_ptv11_vs_probatorik",
        dict(care_stage=CareStage.ANY, ptv11_date=PTV11),
        SlotKind.PROBATORIK,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "stage_sprechstunde_vs_sprechstunde",
        dict(care_stage=CareStage.SPRECHSTUNDE),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "stage_any_vs_sprechstunde",
        dict(care_stage=CareStage.ANY, ptv11_date=PTV11),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "stage_therapy_with_ptv11_vs_akut",
        dict(care_stage=CareStage.THERAPY, ptv11_date=PTV11),
        SlotKind.AKUT,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "methods_soft",
        dict(methods_mask=METHODS.to_mask(["tp"]), methods_only=False),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "methods_only_met",
        dict(methods_mask=METHODS.to_mask(["vt", "tp"]), methods_only=True),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "gender_soft",
        dict(therapist_gender_wish="m", gender_only=False),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "gender_only_met",
        dict(therapist_gender_wish="f", gender_only=True),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "languages_soft",
        dict(languages_mask=LANGUAGES.to_mask(["tr"]), languages_only=False),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
    (
        "video_only_vs_video",
        dict(video_pref=Preference.WANTED, video_only=True),
        SlotKind.SPRECHSTUNDE,
        Modality.VIDEO,
    ),  # noqa: E501
    (
        "video_wanted_soft_vs_in_person",
        dict(video_pref=Preference.WANTED, video_only=False),
        SlotKind.SPRECHSTUNDE,
        Modality.IN_PERSON,
    ),  # noqa: E501
]


@pytest.mark.parametrize("name,fields,kind,modality", EXCLUDED, ids=[c[0] for c in EXCLUDED])
def test_a_patient_who_excludes_the_slot_is_never_a_candidate(
    session, world, name, fields, kind, modality
):
    practice, _ = world
    fitting = make_patient(session, lists=[practice], care_stage=CareStage.ANY, ptv11_date=PTV11)
    patient = make_patient(session, lists=[practice], **fields)
    found = _candidates(session, world, kind=kind, modality=modality)
    assert fitting.id in found  # the slot itself is offerable
    assert patient.id not in found


@pytest.mark.parametrize("name,fields,kind,modality", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_a_patient_who_accepts_the_slot_is_a_candidate(
    session, world, name, fields, kind, modality
):
    practice, _ = world
    patient = make_patient(session, lists=[practice], **fields)
    assert patient.id in _candidates(session, world, kind=kind, modality=modality)


def test_soft_wishes_add_points_and_say_so(session, world):
    practice, therapist = world
    plain = make_patient(session, lists=[practice])
    gender = make_patient(session, lists=[practice], therapist_gender_wish="f")
    language = make_patient(
        session, lists=[practice], languages_mask=LANGUAGES.to_mask(["de"]), languages_only=False
    )
    found = _candidates(session, world)
    assert found[gender.id].score == found[plain.id].score + matching.GENDER_POINTS
    assert found[language.id].score == found[plain.id].score + matching.LANGUAGE_POINTS
    assert "Wunsch zum Geschlecht erfüllt" in [r.msgid for r in found[gender.id].reasons]
    assert "Gemeinsame Sprache" in [r.msgid for r in found[language.id].reasons]


def test_an_excluded_problem_area_stays_hard_one_outside_the_specialties_stays_soft(session, world):
    practice, _ = world
    excluded = make_patient(session, lists=[practice], problems=("psychosis",))
    outside = make_patient(session, lists=[practice], problems=("ocd",))
    found = _candidates(session, world)
    assert excluded.id not in found
    assert outside.id in found


def test_group_seats_respect_the_care_stage(session, world):
    from ptmatch.domain import groups
    from tests.factories import make_group

    practice, therapist = world
    therapist.offers_group = True
    group = make_group(session, therapist)
    wants = dict(lists=[practice], group_pref=Preference.WANTED)
    only_group = make_patient(session, care_stage=CareStage.GROUP, **wants)
    any_stage = make_patient(session, care_stage=CareStage.ANY, **wants)
    sprechstunde = make_patient(session, care_stage=CareStage.SPRECHSTUNDE, **wants)
    found = {c.patient_id for c in groups.rank_group_candidates(session, group, NOW)}
    assert {only_group.id, any_stage.id} <= found
    assert sprechstunde.id not in found


def test_passes_names_the_failed_filters(session, world):
    practice, therapist = world
    slot = make_slot(session, therapist, start_at=TOMORROW_14, kind=SlotKind.THERAPY_PLACE)
    patient = make_patient(
        session, lists=[practice], care_stage=CareStage.SPRECHSTUNDE, problems=("psychosis",)
    )
    target = matching.build_context(session, slot, NOW).target()
    assert filters.passes(session, target, patient.id) == ["exclusions", "stage"]


# --- the PTV 11 deadline ------------------------------------------------------------------------


def test_with_equal_fit_the_patient_closest_to_the_deadline_comes_first(session, world):
    practice, _ = world
    added = NOW - dt.timedelta(days=10)
    later = make_patient(
        session, lists=[practice], urgent=True, ptv11_date=dt.date(2026, 11, 1), added_at=added
    )
    sooner = make_patient(
        session, lists=[practice], urgent=True, ptv11_date=dt.date(2026, 10, 31), added_at=added
    )
    slot = make_slot(session, world[1], start_at=TOMORROW_14)
    ranked = matching.rank_candidates(session, slot, NOW)
    assert [c.patient_id for c in ranked] == [sooner.id, later.id]
    assert ranked[0].score == ranked[1].score  # the same step: the deadline alone decides
    assert [c.deadline for c in ranked] == [dt.date(2026, 11, 28), dt.date(2026, 11, 29)]
    # The database orders too: the best one alone comes back first.
    assert [c.patient_id for c in matching.rank_candidates(session, slot, NOW, limit=1)] == [
        sooner.id
    ]


def test_ranking_lifts_a_patient_step_by_step_as_the_deadline_nears(session, world):
    practice, _ = world
    today = dt.date(2026, 11, 24)  # NOW in Berlin
    by_days_left = {}
    for left in (20, 14, 7, 0, -3):
        patient = make_patient(
            session,
            lists=[practice],
            urgent=True,
            ptv11_date=today + dt.timedelta(days=left - matching.DEADLINE_DAYS),
        )
        by_days_left[left] = patient.id
    no_date = make_patient(session, lists=[practice], urgent=True)
    found = _candidates(session, world)
    base = found[no_date.id].score
    assert found[by_days_left[20]].score == base
    assert found[by_days_left[14]].score == base + 10
    assert found[by_days_left[7]].score == base + 25
    assert found[by_days_left[0]].score == base + 40
    assert found[by_days_left[-3]].score == base + 40
    reasons = {left: [r.msgid for r in found[pid].reasons] for left, pid in by_days_left.items()}
    assert "Frist (4 Wochen ab PTV 11) endet in %(days)s Tag(en)" in reasons[7]
    assert "Frist (4 Wochen ab PTV 11) erreicht oder überschritten" in reasons[-3]
    step = next(r for r in found[by_days_left[7]].reasons if r.points == 25)
    assert step.params == {"days": 7} and step.clinical
    ranked = [c.patient_id for c in sorted(found.values(), key=lambda c: -c.score)]
    assert ranked.index(by_days_left[0]) < ranked.index(by_days_left[7])


def test_sql_score_equals_python_score_with_deadlines_and_wishes(session, world):
    practice, therapist = world
    today = dt.date(2026, 11, 24)
    for left in (30, 14, 8, 7, 1, 0, -10):
        make_patient(
            session,
            lists=[practice],
            urgent=left % 2 == 0,
            ptv11_date=today + dt.timedelta(days=left - matching.DEADLINE_DAYS),
            therapist_gender_wish="f" if left > 5 else "any",
            languages_only=left < 3,
        )
    slot = make_slot(session, therapist, start_at=TOMORROW_14)
    ctx = matching.build_context(session, slot, NOW)
    branches = [b.subquery() for b in matching._branches(ctx, with_facts=True)]
    rows = session.execute(branches[0].select()).all()
    assert len(rows) == 7
    for row in rows:
        facts = matching.Facts(
            **{
                f.name: getattr(row, f.name)
                for f in dataclasses.fields(matching.Facts)
                if hasattr(row, f.name)
            }
        )
        assert row.score == matching.score(facts, ctx)[0], row


# --- the pool view and workbench filters ----------------------------------------------------------


def test_workbench_filters_by_kind_and_deadline_and_sorts_by_deadline(session, world):
    practice, therapist = world
    today = dt.date(2026, 11, 24)
    soon = make_patient(
        session,
        lists=[practice],
        care_stage=CareStage.THERAPY,
        urgent=True,
        ptv11_date=today + dt.timedelta(days=3 - 28),
    )
    later = make_patient(
        session,
        lists=[practice],
        care_stage=CareStage.THERAPY,
        urgent=True,
        ptv11_date=today + dt.timedelta(days=12 - 28),
    )
    first_visit = make_patient(session, lists=[practice], care_stage=CareStage.SPRECHSTUNDE)

    def ids(**kw):
        page = workbench.list_waitlist(session, NOW, therapist, workbench.Filters(**kw))
        return [r.patient_id for r in page.items]

    assert set(ids(kind="therapy_place")) == {soon.id, later.id}
    assert set(ids(kind="sprechstunde")) == {first_visit.id}
    assert ids(deadline_days=7) == [soon.id]
    assert ids(deadline_days=14, sort="deadline") == [soon.id, later.id]
    assert ids(sort="deadline")[:2] == [soon.id, later.id]
    row = workbench.list_waitlist(session, NOW, therapist, workbench.Filters(deadline_days=7))
    assert row.items[0].deadline == today + dt.timedelta(days=3)


def test_pool_view_shows_only_ptv11_patients_for_a_therapy_place(session, world):
    practice, therapist = world
    with_form = make_patient(session, pool=True, care_stage=CareStage.THERAPY, ptv11_date=PTV11)
    without = make_patient(session, pool=True, care_stage=CareStage.ANY)
    page = workbench.list_pool(session, NOW, therapist, workbench.Filters(kind="therapy_place"))
    assert page.total == 1
    slot = make_slot(session, therapist, start_at=TOMORROW_14, kind=SlotKind.THERAPY_PLACE)
    assert workbench.pool_patient_ids(session, NOW, therapist, slot) == {with_form.id}
    assert without.id in workbench.pool_patient_ids(session, NOW, therapist)


def test_invalid_workbench_filters_name_their_field():
    from ptmatch.domain.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        workbench.Filters(kind="couch")
    assert err.value.field == "kind"
    with pytest.raises(InvalidInput) as err:
        workbench.Filters(deadline_days=-1)
    assert err.value.field == "deadline_days"


PATIENT = st.fixed_dictionaries(
    {
        "care_stage": st.sampled_from(list(CareStage)),
        "ptv11": st.booleans(),
        "urgent": st.booleans(),
        "methods": st.lists(st.sampled_from(["vt", "tp", "st"]), max_size=2),
        "methods_only": st.booleans(),
        "gender_wish": st.sampled_from(["any", "f", "m"]),
        "gender_only": st.booleans(),
        "languages": st.lists(st.sampled_from(["de", "en", "tr"]), min_size=1, max_size=2),
        "languages_only": st.booleans(),
        "video_pref": st.sampled_from(list(Preference)),
        "video_only": st.booleans(),
        "insurance": st.sampled_from(["gkv", "pkv", "self"]),
        "problems": st.lists(st.sampled_from(["depression", "psychosis", "ocd"]), max_size=2),
        "age": st.sampled_from([10, 16, 30, 70, None]),
        "start_hour": st.sampled_from([8, 14, 16]),
        "weekday": st.sampled_from([1, 2]),
        "status": st.sampled_from([PatientStatus.ACTIVE] * 4 + [PatientStatus.PAUSED]),
        "distance_deg": st.sampled_from([0.0, 0.1, 0.5, None]),
        "radius": st.sampled_from([5, 25, 100]),
    }
)
THERAPIST = st.fixed_dictionaries(
    {
        "gender": st.sampled_from(["f", "m"]),
        "methods": st.lists(st.sampled_from(["vt", "tp", "st"]), min_size=1, max_size=2),
        "languages": st.lists(st.sampled_from(["de", "en", "tr"]), min_size=1, max_size=2),
        "exclusions": st.lists(st.sampled_from(["psychosis", "ocd"]), max_size=1),
        "populations": st.lists(
            st.sampled_from(["children", "adolescents", "adults", "seniors"]), max_size=2
        ),
        "insurances": st.lists(st.sampled_from(["gkv", "pkv", "self"]), min_size=1, max_size=2),
        "kind": st.sampled_from(list(SlotKind)),
        "video": st.booleans(),
        "offers_in_person": st.booleans(),
    }
)


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(therapist_spec=THERAPIST, patient_specs=st.lists(PATIENT, min_size=1, max_size=8))
def test_the_pool_view_shows_exactly_the_patients_matching_could_offer(
    session, therapist_spec, patient_specs
):
    nested = session.begin_nested()
    try:
        practice = make_practice(session)
        t = therapist_spec
        therapist = make_therapist(
            session,
            practice,
            methods=t["methods"],
            languages=t["languages"],
            exclusions=t["exclusions"],
            populations=t["populations"],
            insurances=t["insurances"],
            gender=t["gender"],
            offers_in_person=t["offers_in_person"] or not t["video"],
        )
        for p in patient_specs:
            birth = None if p["age"] is None else dt.date(2026 - p["age"], 1, 1)
            deg = p["distance_deg"]
            patient = make_patient(
                session,
                care_stage=p["care_stage"],
                ptv11_date=PTV11 if p["ptv11"] else None,
                urgent=p["urgent"],
                methods=p["methods"],
                methods_only=p["methods_only"],
                therapist_gender_wish=p["gender_wish"],
                gender_only=p["gender_only"],
                languages=p["languages"],
                languages_only=p["languages_only"],
                video_pref=p["video_pref"],
                video_only=p["video_only"],
                insurance=p["insurance"],
                problems=p["problems"],
                birth_date=birth,
                status=p["status"],
                lat=None if deg is None else practice.lat + deg,
                lon=None if deg is None else practice.lon,
                max_distance_km=p["radius"],
                windows=[(p["weekday"], p["start_hour"] * 60, 20 * 60)],
            )
            add_to_list(session, patient, None)
        slot = make_slot(
            session,
            therapist,
            start_at=TOMORROW_14,  # Wednesday (weekday 2) 14:00 Berlin
            kind=t["kind"],
            modality=Modality.VIDEO if t["video"] else Modality.IN_PERSON,
        )
        assert set(matching.prefilter(session, slot, NOW)) == workbench.pool_patient_ids(
            session, NOW, therapist, slot
        )
    finally:
        nested.rollback()


# --- after the Sprechstunde ---------------------------------------------------------------------


def test_an_attended_sprechstunde_moves_the_patient_on_with_a_mail_and_their_lists(
    session, world, settings
):
    from ptmatch.models import OutboxMessage

    practice, therapist = world
    patient = make_patient(session, lists=[practice], pool=True, care_stage=CareStage.SPRECHSTUNDE)
    slot = make_slot(session, therapist, start_at=TOMORROW_14)
    from tests.factories import make_offer

    offer = make_offer(session, slot, patient)
    booking = offers.accept_offer(session, NOW, offer, patient.user, settings)
    assert session.get(Patient, patient.id).status == PatientStatus.BOOKED
    later = TOMORROW_14 + dt.timedelta(hours=1)
    offers.mark_booking(session, later, therapist.user, booking, BookingStatus.ATTENDED)
    session.refresh(patient)
    assert patient.care_stage == CareStage.THERAPY
    assert patient.ptv11_date == dt.date(2026, 11, 25)
    assert patient.status == PatientStatus.ACTIVE
    entries = session.query(WaitlistEntry).filter_by(patient_id=patient.id).all()
    assert len(entries) == 2 and all(e.status == EntryStatus.ACTIVE for e in entries)
    assert (
        session.query(OutboxMessage)
        .filter_by(kind="stage_therapy", user_id=patient.user_id)
        .count()
        == 1
    )
    # Marking again (a correction) changes nothing more.
    offers.mark_booking(session, later, therapist.user, booking, BookingStatus.ATTENDED)
    assert session.query(OutboxMessage).filter_by(kind="stage_therapy").count() == 1


def test_a_therapy_place_attended_does_not_change_the_stage(session, world, settings):
    practice, therapist = world
    patient = make_patient(
        session, lists=[practice], care_stage=CareStage.THERAPY, ptv11_date=PTV11
    )
    slot = make_slot(session, therapist, start_at=TOMORROW_14, kind=SlotKind.PROBATORIK)
    from tests.factories import make_offer

    booking = offers.accept_offer(
        session, NOW, make_offer(session, slot, patient), patient.user, settings
    )
    offers.mark_booking(
        session, TOMORROW_14 + dt.timedelta(hours=1), therapist.user, booking, "attended"
    )
    session.refresh(patient)
    assert patient.status == PatientStatus.BOOKED
