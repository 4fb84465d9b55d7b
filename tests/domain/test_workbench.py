"""The waitlist workbench: filters (alone and combined), search, sorting, pages, the pool,
the patient file and the entry actions (refer / remove keep the history)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import event, select

from ptmatch.catalog import PROBLEM_AREAS
from ptmatch.domain import access, workbench
from ptmatch.domain.errors import InvalidInput, NotAllowed, NotFound
from ptmatch.models import (
    AuditEvent,
    ClinicalNote,
    EntryStatus,
    OutboxMessage,
    PatientStatus,
    Preference,
    RemovalReason,
    Role,
    WaitlistEntry,
)
from tests.conftest import NOW
from tests.factories import add_to_list, make_patient, make_practice, make_therapist, make_user

DAY = dt.timedelta(days=1)
BONN = (50.7374, 7.0982)
KOELN = (50.9375, 6.9603)  # about 25 km from Bonn
BERLIN_CITY = (52.52, 13.405)


def _world(session):
    """One practice list with four distinct patients and two that must never show."""
    practice = make_practice(session)
    therapist = make_therapist(
        session,
        practice,
        specialties=("depression", "anxiety"),
        exclusions=("psychosis", "addiction"),
    )
    people = {
        "anna": make_patient(
            session,
            lists=[practice],
            birth_date=dt.date(1996, 5, 1),
            gender="f",
            problems=("depression",),
            description="Seit dem Umzug gedrückte Stimmung, Schlafprobleme",
            group_pref=Preference.NO,
            video_pref=Preference.ACCEPTABLE,
            insurance="gkv",
            added_at=NOW - 100 * DAY,
        ),
        "ben": make_patient(
            session,
            birth_date=dt.date(2010, 3, 1),
            gender="m",
            problems=("anxiety", "addiction"),
            description="Prüfungsangst, Alkohol am Wochenende",
            group_pref=Preference.WANTED,
            video_pref=Preference.WANTED,
            insurance="pkv",
            urgent=True,
            added_at=NOW - 10 * DAY,
        ),
        "cem": make_patient(
            session,
            lists=[practice],
            birth_date=dt.date(1956, 1, 10),
            gender="m",
            problems=("grief",),
            description="Trauer nach dem Tod der Ehefrau",
            group_pref=Preference.ACCEPTABLE,
            video_pref=Preference.NO,
            insurance="beihilfe",
            added_at=NOW - 50 * DAY,
        ),
        "dora": make_patient(
            session,
            lists=[practice],
            birth_date=None,
            gender="d",
            problems=("psychosis",),
            description="Zu 100% erschöpft",
            group_pref=Preference.NO,
            video_pref=Preference.ACCEPTABLE,
            insurance="gkv",
            added_at=NOW - 5 * DAY,
        ),
    }
    add_to_list(session, people["ben"], practice, via_practice_link=True)
    elsewhere = make_patient(session, lists=[make_practice(session)], description="Stimmung")
    gone = make_patient(session, description="Stimmung")
    add_to_list(
        session,
        gone,
        practice,
        status=EntryStatus.REMOVED,
        removed_at=NOW,
        removed_reason=RemovalReason.LEFT,
    )
    session.flush()
    names = {p.id: name for name, p in people.items()} | {
        elsewhere.id: "elsewhere",
        gone.id: "gone",
    }
    return therapist, people, names


def _shown(session, therapist, names, **filters) -> set[str]:
    page = workbench.list_waitlist(
        session, NOW, therapist, workbench.Filters(**filters), per_page=100
    )
    return {names[row.patient_id] for row in page.items}


TODAY = NOW.date()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"anna", "ben", "cem", "dora"}),
        ({"age_min": 18}, {"anna", "cem"}),
        ({"age_max": 17}, {"ben"}),
        ({"age_min": 30, "age_max": 30}, {"anna"}),
        ({"gender": "m"}, {"ben", "cem"}),
        ({"problems": ("anxiety",)}, {"ben"}),
        ({"problems": ("depression", "grief")}, {"anna", "cem"}),
        ({"fits_profile": True}, {"anna"}),
        ({"q": "Stimmung"}, {"anna"}),
        ({"group": "wanted"}, {"ben"}),
        ({"group": "ok"}, {"ben", "cem"}),
        ({"video": "wanted"}, {"ben"}),
        ({"video": "ok"}, {"anna", "ben", "dora"}),
        ({"urgent": True}, {"ben"}),
        ({"insurance": "pkv"}, {"ben"}),
        ({"via_link": True}, {"ben"}),
        ({"waiting_from": TODAY - 20 * DAY}, {"ben", "dora"}),
        ({"waiting_to": TODAY - 20 * DAY}, {"anna", "cem"}),
        ({"waiting_from": TODAY - 50 * DAY, "waiting_to": TODAY - 50 * DAY}, {"cem"}),
    ],
)
def test_each_filter_alone(session, filters, expected):
    therapist, _people, names = _world(session)
    assert _shown(session, therapist, names, **filters) == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"gender": "m", "age_min": 18}, {"cem"}),
        ({"fits_profile": True, "q": "Stimmung"}, {"anna"}),
        ({"fits_profile": True, "q": "Prüfungsangst"}, set()),
        (
            {
                "problems": ("anxiety",),
                "urgent": True,
                "via_link": True,
                "insurance": "pkv",
                "group": "wanted",
            },
            {"ben"},
        ),
        ({"video": "ok", "insurance": "gkv", "age_max": 40}, {"anna"}),
        ({"waiting_from": TODAY - 60 * DAY, "gender": "m"}, {"ben", "cem"}),
    ],
)
def test_filters_combined(session, filters, expected):
    therapist, _people, names = _world(session)
    assert _shown(session, therapist, names, **filters) == expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("stimmung", {"anna"}),  # case-insensitive
        ("TRAUER", {"cem"}),
        ("Prüfungsangst", {"ben"}),
        ("umzug schlaf", {"anna"}),  # every word must occur
        ("umzug trauer", set()),
        ("%", {"dora"}),  # LIKE wildcards are matched literally
        ("_", set()),
        ("nirgends", set()),
    ],
)
def test_free_text_search(session, q, expected):
    therapist, _people, names = _world(session)
    assert _shown(session, therapist, names, q=q) == expected


def test_fits_profile_never_shows_an_excluded_problem(session):
    practice = make_practice(session)
    excluded = ("psychosis", "addiction", "eating")
    therapist = make_therapist(
        session,
        practice,
        specialties=("depression", "anxiety", "trauma", "ocd"),
        exclusions=excluded,
    )
    patients = [
        make_patient(session, lists=[practice], problems=(code,)) for code in PROBLEM_AREAS.codes()
    ]
    for bad in excluded:  # a specialty plus an exclusion: still out
        patients.append(make_patient(session, lists=[practice], problems=("depression", bad)))
    patients.append(make_patient(session, lists=[practice], problems=("anxiety", "grief")))
    page = workbench.list_waitlist(
        session, NOW, therapist, workbench.Filters(fits_profile=True), per_page=100
    )
    excl_mask = PROBLEM_AREAS.to_mask(excluded)
    for row in page.items:
        assert PROBLEM_AREAS.to_mask(row.problems) & excl_mask == 0
    assert sorted(tuple(sorted(r.problems)) for r in page.items) == sorted(
        [("depression",), ("anxiety",), ("trauma",), ("ocd",), ("anxiety", "grief")]
    )


def test_fits_profile_without_specialties_applies_only_exclusions(session):
    practice = make_practice(session)
    therapist = make_therapist(session, practice, specialties=(), exclusions=("psychosis",))
    keep = make_patient(session, lists=[practice], problems=("grief",))
    make_patient(session, lists=[practice], problems=("psychosis", "grief"))
    page = workbench.list_waitlist(session, NOW, therapist, workbench.Filters(fits_profile=True))
    assert [r.patient_id for r in page.items] == [keep.id]


@pytest.mark.parametrize(
    "bad", [{"problems": ("aliens",)}, {"group": "maybe"}, {"insurance": "aok"}, {"q": "x" * 101}]
)
def test_filters_refuse_unknown_values(bad):
    with pytest.raises(InvalidInput):
        workbench.Filters(**bad)


def test_sort_by_waiting_time_and_priority(session):
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    old = make_patient(session, lists=[practice], added_at=NOW - 90 * DAY)
    mid = make_patient(session, lists=[practice], added_at=NOW - 60 * DAY)
    new = make_patient(session, lists=[practice], added_at=NOW - 1 * DAY)
    session.scalar(select(WaitlistEntry).where(WaitlistEntry.patient_id == new.id)).priority = 3
    session.scalar(select(WaitlistEntry).where(WaitlistEntry.patient_id == mid.id)).priority = 1
    session.flush()
    by_wait = workbench.list_waitlist(session, NOW, therapist, workbench.Filters())
    by_prio = workbench.list_waitlist(session, NOW, therapist, workbench.Filters(sort="priority"))
    assert [r.patient_id for r in by_wait.items] == [old.id, mid.id, new.id]
    assert [r.patient_id for r in by_prio.items] == [new.id, mid.id, old.id]
    assert by_wait.items[0].waiting_days == 90


def test_pagination_covers_every_entry_once(session):
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    ids = [
        make_patient(session, lists=[practice], added_at=NOW - (30 - i) * DAY).id for i in range(23)
    ]
    pages = [
        workbench.list_waitlist(session, NOW, therapist, workbench.Filters(), page=n, per_page=10)
        for n in (1, 2, 3)
    ]
    assert [p.total for p in pages] == [23, 23, 23]
    assert [len(p.items) for p in pages] == [10, 10, 3]
    assert [r.patient_id for p in pages for r in p.items] == ids
    assert pages[0].pages == 3 and pages[0].has_next and not pages[0].has_prev
    beyond = workbench.list_waitlist(
        session, NOW, therapist, workbench.Filters(), page=99, per_page=10
    )
    assert beyond.page == 3 and [r.patient_id for r in beyond.items] == ids[20:]


def test_list_page_uses_a_fixed_number_of_queries(session):
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    for _ in range(30):
        make_patient(session, lists=[practice], problems=("depression", "anxiety"))
    session.flush()
    _ = therapist.user  # loaded, as in a request
    statements = []

    def count(*_args):
        statements.append(1)

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", count)
    try:
        page = workbench.list_waitlist(
            session, NOW, therapist, workbench.Filters(problems=("anxiety",)), per_page=30
        )
        session.flush()
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert len(page.items) == 30
    assert len(statements) <= 3  # count, page, one audit insert


def test_list_view_is_audited_with_the_patient_ids(session):
    therapist, _people, _names = _world(session)
    page = workbench.list_waitlist(session, NOW, therapist, workbench.Filters())
    event_ = session.scalar(select(AuditEvent).where(AuditEvent.action == "workbench.list_viewed"))
    assert event_.practice_id == therapist.practice_id
    assert sorted(event_.details["patient_ids"]) == sorted(r.patient_id for r in page.items)


# --- pool -----------------------------------------------------------------------------------------


def _pool_patient(session, *, at=BONN, **overrides):
    return make_patient(session, pool=True, lat=at[0], lon=at[1], **overrides)


def _pool_ids(session, therapist, **filters) -> set[int]:
    page = workbench.list_pool(session, NOW, therapist, workbench.Filters(**filters), per_page=100)
    return {r.pseudonym for r in page.items}


def test_pool_shows_only_fitting_patients_within_reach(session):
    practice = make_practice(session, lat=BONN[0], lon=BONN[1])
    therapist = make_therapist(
        session,
        practice,
        gender="f",
        exclusions=("psychosis",),
        languages=("de",),
        insurances=("gkv",),
        populations=("adults",),
    )
    near = _pool_patient(session)
    koeln_ok = _pool_patient(session, at=KOELN, max_distance_km=30)
    unknown_age = _pool_patient(session, birth_date=None)
    unknown_place = _pool_patient(session, at=(None, None))  # not filtered by distance (geo rule)
    out = [
        _pool_patient(session, at=KOELN, max_distance_km=20),  # beyond the patient's own radius
        _pool_patient(session, at=BERLIN_CITY, max_distance_km=100),
        _pool_patient(session, problems=("psychosis", "depression")),  # exclusion
        _pool_patient(session, therapist_gender_wish="m"),
        _pool_patient(session, insurance="self"),
        _pool_patient(session, languages=("tr",)),
        _pool_patient(
            session, birth_date=dt.date(2018, 1, 1)
        ),  # a child, the therapist sees adults
        _pool_patient(session, status=PatientStatus.PAUSED),
        _pool_patient(session, paused_until=NOW.date() + 7 * DAY),
        _pool_patient(session, consent_rules_at=None),
        _pool_patient(session, user=make_user(session, Role.PATIENT, email_verified_at=None)),
        _pool_patient(session, lists=[practice]),  # already on the own list
        make_patient(session, lists=[make_practice(session)]),  # not in the pool
    ]
    shown = _pool_ids(session, therapist)
    assert shown == {
        access.pseudonym_of(session, p.id) for p in (near, koeln_ok, unknown_age, unknown_place)
    }
    assert not shown & {access.pseudonym_of(session, p.id) for p in out}


def test_pool_patient_without_location_shows_distance_unknown_and_sorts_last(session):
    practice = make_practice(session, lat=BONN[0], lon=BONN[1])
    therapist = make_therapist(session, practice)
    nowhere = _pool_patient(session, at=(None, None), added_at=NOW - 300 * DAY)
    koeln = _pool_patient(session, at=KOELN, max_distance_km=30, added_at=NOW - 10 * DAY)
    rows = workbench.list_pool(session, NOW, therapist, workbench.Filters(sort="distance")).items
    assert [r.pseudonym for r in rows] == [
        access.pseudonym_of(session, koeln.id),
        access.pseudonym_of(session, nowhere.id),
    ]
    assert rows[1].distance_band == "Entfernung unbekannt"


def test_pool_respects_video_only_therapists(session):
    practice = make_practice(session, lat=BONN[0], lon=BONN[1])
    therapist = make_therapist(session, practice, offers_in_person=False, offers_video=True)
    ok = _pool_patient(session, video_pref=Preference.ACCEPTABLE)
    _pool_patient(session, video_pref=Preference.NO)
    assert _pool_ids(session, therapist) == {access.pseudonym_of(session, ok.id)}


def test_pool_rows_are_pseudonymous(session):
    practice = make_practice(session, lat=BONN[0], lon=BONN[1])
    therapist = make_therapist(session, practice)
    patient = _pool_patient(
        session,
        at=KOELN,
        max_distance_km=30,
        birth_date=dt.date(1990, 5, 17),
        added_at=NOW - 22 * DAY,
    )
    (row,) = workbench.list_pool(session, NOW, therapist, workbench.Filters()).items
    assert {f.name for f in dataclasses.fields(row)}.isdisjoint(
        {
            "first_name",
            "last_name",
            "name",
            "email",
            "phone",
            "birth_date",
            "postcode",
            "lat",
            "lon",
            "patient_id",
        }
    )
    values = " ".join(str(v) for v in dataclasses.astuple(row))
    for secret in (patient.first_name, patient.last_name, patient.phone, "1990"):
        assert secret not in values
    assert row.pseudonym == access.pseudonym_of(session, patient.id)
    assert row.age_band == "35–44"
    assert row.distance_band == "20–50 km"
    assert row.waiting_weeks == 3


def test_pool_filters_and_distance_sort(session):
    practice = make_practice(session, lat=BONN[0], lon=BONN[1])
    therapist = make_therapist(session, practice, specialties=("anxiety",))
    far = _pool_patient(
        session, at=KOELN, max_distance_km=30, problems=("anxiety",), added_at=NOW - 80 * DAY
    )
    near = _pool_patient(session, problems=("anxiety",), added_at=NOW - 5 * DAY)
    _pool_patient(session, problems=("grief",))
    page = workbench.list_pool(
        session, NOW, therapist, workbench.Filters(fits_profile=True, sort="distance")
    )
    assert [r.pseudonym for r in page.items] == [
        access.pseudonym_of(session, near.id),
        access.pseudonym_of(session, far.id),
    ]
    page = workbench.list_pool(session, NOW, therapist, workbench.Filters(problems=("anxiety",)))
    assert [r.pseudonym for r in page.items] == [
        access.pseudonym_of(session, far.id),
        access.pseudonym_of(session, near.id),
    ]


def test_no_pool_when_the_practice_does_not_take_pool_patients(session):
    practice = make_practice(session, accepts_pool=False)
    therapist = make_therapist(session, practice)
    _pool_patient(session)
    assert not workbench.pool_available(therapist)
    assert workbench.list_pool(session, NOW, therapist, workbench.Filters()).items == []


def test_pseudonym_is_stable_short_and_keyed():
    from ptmatch.domain.access import pseudonym

    assert pseudonym(42, "k1") == pseudonym(42, "k1")
    assert pseudonym(42, "k1") != pseudonym(43, "k1")
    assert pseudonym(42, "k1").startswith("P-") and len(pseudonym(42, "k1")) == 10
    # Not a plain hash of the sequential id: without the secret it cannot be recomputed.
    assert pseudonym(42, "k1") != pseudonym(42, "k2")
    import hashlib

    plain = hashlib.sha256(b"ptmatch-pool:42").hexdigest()[:8].upper()
    assert pseudonym(42, "k1") != "P-" + plain


@pytest.mark.parametrize(
    ("km", "band"),
    [(0.4, "unter 5 km"), (7, "5–10 km"), (19.9, "10–20 km"), (49, "20–50 km"), (51, "über 50 km")],
)
def test_distance_bands(km, band):
    assert workbench.distance_band(km) == band


def test_great_circle_distance_bonn_koeln():
    assert workbench.great_circle_km(*BONN, *KOELN) == pytest.approx(24.6, abs=0.5)


# --- patient file ---------------------------------------------------------------------------------


def test_patient_file_loads_clinical_data_audited(session):
    therapist, people, _names = _world(session)
    record = workbench.load_patient_file(session, NOW, therapist.user, people["anna"].id)
    assert "Umzug" in record.clinical.description
    assert record.active_entry is not None and record.age == 30
    viewed = session.scalar(select(AuditEvent).where(AuditEvent.action == "clinical.viewed"))
    assert viewed.patient_id == people["anna"].id and viewed.practice_id == therapist.practice_id


def test_patient_waiting_only_elsewhere_is_not_found(session):
    therapist = make_therapist(session)
    other = make_patient(session, lists=[make_practice(session)])
    with pytest.raises(NotFound):
        workbench.load_patient_file(session, NOW, therapist.user, other.id)
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "clinical.viewed")) is None


def test_pool_patient_file_is_not_allowed(session):
    therapist = make_therapist(session)
    pooled = _pool_patient(session)
    with pytest.raises(NotAllowed):
        workbench.load_patient_file(session, NOW, therapist.user, pooled.id)


# --- actions --------------------------------------------------------------------------------------


def _entry(session, patient, practice) -> WaitlistEntry:
    return session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.patient_id == patient.id, WaitlistEntry.practice_id == practice.id
        )
    )


def test_set_priority(session):
    therapist, people, _names = _world(session)
    entry = _entry(session, people["cem"], therapist.practice)
    workbench.set_priority(session, NOW, therapist.user, entry.id, 2)
    assert entry.priority == 2
    assert (
        session.scalar(
            select(AuditEvent.details).where(AuditEvent.action == "waitlist.priority_set")
        )["priority"]
        == 2
    )


@pytest.mark.parametrize("value", [-1, 4, True])
def test_priority_out_of_range(session, value):
    therapist, people, _names = _world(session)
    entry = _entry(session, people["cem"], therapist.practice)
    with pytest.raises(InvalidInput):
        workbench.set_priority(session, NOW, therapist.user, entry.id, value)


def test_actions_on_another_practice_entry_are_not_found(session):
    therapist = make_therapist(session)
    other_practice = make_practice(session)
    patient = make_patient(session, lists=[other_practice])
    entry = _entry(session, patient, other_practice)
    with pytest.raises(NotFound):
        workbench.set_priority(session, NOW, therapist.user, entry.id, 1)
    with pytest.raises(NotFound):
        workbench.remove_entry(session, NOW, therapist.user, entry.id, "no_fit")
    with pytest.raises(NotFound):
        workbench.add_clinical_note(session, NOW, therapist.user, patient.id, "Notiz")
    assert entry.status == EntryStatus.ACTIVE


def test_add_clinical_note(session):
    therapist, people, _names = _world(session)
    note = workbench.add_clinical_note(
        session, NOW, therapist.user, people["anna"].id, "  Erstgespräch geplant "
    )
    assert note.text == "Erstgespräch geplant" and note.practice_id == therapist.practice_id
    audit_row = session.scalar(select(AuditEvent).where(AuditEvent.action == "clinical.note_added"))
    assert "Erstgespräch" not in str(audit_row.details)


@pytest.mark.parametrize("text", ["", "   ", "x" * 5001])
def test_note_text_is_checked(session, text):
    therapist, people, _names = _world(session)
    with pytest.raises(InvalidInput):
        workbench.add_clinical_note(session, NOW, therapist.user, people["anna"].id, text)
    assert session.scalar(select(ClinicalNote.id)) is None


def test_refer_moves_the_entry_and_keeps_its_history(session):
    therapist, people, _names = _world(session)
    target = make_practice(session)
    anna = people["anna"]
    old = _entry(session, anna, therapist.practice)
    moved = workbench.refer_entry(session, NOW, therapist.user, old.id, target.id)
    assert old.status == EntryStatus.REMOVED
    assert old.removed_reason == RemovalReason.REFERRED
    assert old.referred_to_id == target.id and old.removed_at == NOW
    assert old.added_at == NOW - 100 * DAY  # history kept
    assert moved.practice_id == target.id and moved.status == EntryStatus.ACTIVE
    assert moved.added_at == old.added_at  # waiting time carries over
    mail = session.scalar(select(OutboxMessage))
    assert mail.kind == "waitlist_referred" and mail.user_id == anna.user_id
    assert target.name not in mail.body_text
    assert (
        session.scalar(select(AuditEvent.details).where(AuditEvent.action == "waitlist.referred"))[
            "target_practice_id"
        ]
        == target.id
    )


def test_refer_reactivates_an_earlier_entry_at_the_target(session):
    therapist, people, _names = _world(session)
    target = make_practice(session)
    cem = people["cem"]
    earlier = add_to_list(
        session,
        cem,
        target,
        added_at=NOW - 300 * DAY,
        status=EntryStatus.REMOVED,
        removed_at=NOW - 200 * DAY,
        removed_reason=RemovalReason.LEFT,
    )
    moved = workbench.refer_entry(
        session, NOW, therapist.user, _entry(session, cem, therapist.practice).id, target.id
    )
    assert moved.id == earlier.id
    assert moved.status == EntryStatus.ACTIVE and moved.removed_reason is None
    assert moved.added_at == NOW - 300 * DAY


@pytest.mark.parametrize("target", ["own", "inactive", "missing"])
def test_refer_needs_another_active_practice(session, target):
    therapist, people, _names = _world(session)
    entry = _entry(session, people["anna"], therapist.practice)
    target_id = {
        "own": therapist.practice_id,
        "inactive": make_practice(session, is_active=False).id,
        "missing": 999_999,
    }[target]
    with pytest.raises(InvalidInput) as err:
        workbench.refer_entry(session, NOW, therapist.user, entry.id, target_id)
    assert err.value.field == "target"
    assert entry.status == EntryStatus.ACTIVE


def test_remove_keeps_the_entry_with_its_reason(session):
    therapist, people, _names = _world(session)
    entry = _entry(session, people["dora"], therapist.practice)
    workbench.remove_entry(session, NOW, therapist.user, entry.id, "unreachable")
    session.flush()
    kept = session.get(WaitlistEntry, entry.id)
    assert kept.status == EntryStatus.REMOVED
    assert kept.removed_reason == RemovalReason.REMOVED_BY_PRACTICE and kept.removed_at == NOW
    assert kept.added_at == NOW - 5 * DAY
    assert session.scalar(select(OutboxMessage.kind)) == "waitlist_removed"
    assert (
        session.scalar(select(AuditEvent.details).where(AuditEvent.action == "waitlist.removed"))[
            "reason"
        ]
        == "unreachable"
    )
    with pytest.raises(NotFound):  # no longer on the list: nothing more to do with it
        workbench.remove_entry(session, NOW, therapist.user, entry.id, "other")


def test_remove_needs_a_known_reason(session):
    therapist, people, _names = _world(session)
    entry = _entry(session, people["dora"], therapist.practice)
    with pytest.raises(InvalidInput):
        workbench.remove_entry(session, NOW, therapist.user, entry.id, "because")
    assert entry.status == EntryStatus.ACTIVE
