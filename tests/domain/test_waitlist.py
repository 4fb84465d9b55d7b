"""Waitlists: join / leave / booking removal / restore, and the practice finder."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ptmatch.catalog import PROBLEM_AREAS
from ptmatch.domain import waitlist
from ptmatch.domain.errors import InvalidInput, NotAllowed
from ptmatch.models import AuditEvent, EntryStatus, RemovalReason, WaitlistEntry
from tests.factories import make_patient, make_practice, make_therapist


def test_join_creates_an_active_entry(session, now):
    practice = make_practice(session)
    patient = make_patient(session)
    entry = waitlist.join_list(session, now, patient, practice)
    assert (entry.practice_id, entry.status, entry.added_at, entry.via_practice_link) == (
        practice.id,
        EntryStatus.ACTIVE,
        now,
        False,
    )


def test_join_pool_is_the_entry_without_practice(session, now):
    patient = make_patient(session)
    entry = waitlist.join_list(session, now, patient, None)
    assert entry.is_pool and waitlist.get_entry(session, patient, None).id == entry.id


def test_join_twice_keeps_one_entry(session, now):
    practice = make_practice(session)
    patient = make_patient(session)
    first = waitlist.join_list(session, now, patient, practice)
    second = waitlist.join_list(session, now + dt.timedelta(days=1), patient, practice)
    assert first.id == second.id and second.added_at == now


def test_practice_link_flags_an_existing_entry(session, now):
    practice = make_practice(session)
    patient = make_patient(session, lists=[practice])
    entry = waitlist.join_list(session, now, patient, practice, via_practice_link=True)
    assert entry.via_practice_link is True


def test_rejoin_reactivates_the_removed_row(session, now):
    practice = make_practice(session)
    patient = make_patient(session)
    entry = waitlist.join_list(session, now, patient, practice)
    waitlist.leave_list(session, now, patient, entry)
    later = now + dt.timedelta(days=2)
    again = waitlist.join_list(session, later, patient, practice)
    assert again.id == entry.id and again.status == EntryStatus.ACTIVE and again.added_at == later
    assert again.removed_reason is None
    assert session.scalar(select(func.count(WaitlistEntry.id))) == 1


def test_join_an_inactive_practice_is_refused(session, now):
    practice = make_practice(session, is_active=False)
    with pytest.raises(NotAllowed):
        waitlist.join_list(session, now, make_patient(session), practice)


def test_leave_keeps_the_row_with_reason(session, now):
    practice = make_practice(session)
    patient = make_patient(session, lists=[practice])
    entry = waitlist.get_entry(session, patient, practice)
    waitlist.leave_list(session, now, patient, entry)
    assert (entry.status, entry.removed_reason, entry.removed_at) == (
        EntryStatus.REMOVED,
        RemovalReason.LEFT,
        now,
    )
    assert (
        session.scalar(select(AuditEvent.action).where(AuditEvent.action == "waitlist.left"))
        is not None
    )


def test_leave_someone_elses_entry_is_refused(session, now):
    practice = make_practice(session)
    owner = make_patient(session, lists=[practice])
    other = make_patient(session)
    with pytest.raises(NotAllowed):
        waitlist.leave_list(session, now, other, waitlist.get_entry(session, owner, practice))


def test_get_own_entry_hides_other_patients_rows(session, now):
    practice = make_practice(session)
    owner = make_patient(session, lists=[practice])
    with pytest.raises(InvalidInput):
        waitlist.get_own_entry(
            session, make_patient(session), waitlist.get_entry(session, owner, practice).id
        )


def test_booking_removes_every_active_entry_and_release_restores_them(session, now):
    a, b, c = make_practice(session), make_practice(session), make_practice(session)
    patient = make_patient(session, lists=[a, b], pool=True)
    left = waitlist.join_list(session, now, patient, c)
    waitlist.leave_list(session, now, patient, left)
    removed = waitlist.leave_all_for_booking(session, now, patient)
    assert len(removed) == 3
    assert {e.removed_reason for e in removed} == {RemovalReason.BOOKED_ELSEWHERE}
    joined = {e.id: e.added_at for e in removed}
    assert waitlist.restore_after_release(session, now + dt.timedelta(days=9), patient) == 3
    active = waitlist.list_entries(session, patient, active_only=True)
    assert {e.id: e.added_at for e in active} == joined  # the waiting time is kept
    assert left.status == EntryStatus.REMOVED


def test_restore_twice_is_a_no_op(session, now):
    patient = make_patient(session, lists=[make_practice(session)])
    waitlist.leave_all_for_booking(session, now, patient)
    assert waitlist.restore_after_release(session, now, patient) == 1
    assert waitlist.restore_after_release(session, now, patient) == 0


def test_list_entries_pool_first(session, now):
    practice = make_practice(session)
    patient = make_patient(session, lists=[practice], pool=True)
    assert [e.is_pool for e in waitlist.list_entries(session, patient)] == [True, False]


# --- the finder ------------------------------------------------------------------------------

BONN = (50.7374, 7.0982)
KOELN = (50.9375, 6.9603)  # ~ 25 km from Bonn
BERLIN = (52.5200, 13.4050)


def _finder(session, patient, problems=("depression",), **filters):
    return waitlist.find_practices(
        session,
        patient,
        PROBLEM_AREAS.to_mask(problems),
        waitlist.FinderFilters(**filters),
        dt.date(2026, 11, 24),
    )


def _practice_with(session, coords=BONN, **therapist):
    practice = make_practice(session, lat=coords[0], lon=coords[1])
    make_therapist(session, practice, **therapist)
    return practice


def test_finder_filters_by_distance_nearest_first(session):
    near = _practice_with(session, BONN)
    mid = _practice_with(session, KOELN)
    _practice_with(session, BERLIN)
    patient = make_patient(session)
    hits = _finder(session, patient, distance_km=30)
    assert [h.practice.id for h in hits] == [near.id, mid.id]
    assert hits[0].distance_km == pytest.approx(0, abs=0.1) and 20 < hits[1].distance_km < 30
    assert [h.practice.id for h in _finder(session, patient, distance_km=10)] == [near.id]


def test_finder_without_patient_location_does_not_filter_by_distance(session):
    _practice_with(session, BERLIN)
    patient = make_patient(session, lat=None, lon=None)
    hits = _finder(session, patient, distance_km=5)
    assert len(hits) == 1 and hits[0].distance_km is None


def test_finder_hides_practices_whose_therapists_exclude_the_problem(session):
    _practice_with(session, exclusions=("addiction",))
    patient = make_patient(session)
    assert _finder(session, patient, problems=("addiction",)) == []
    assert len(_finder(session, patient, problems=("depression",))) == 1


@pytest.mark.parametrize(
    ("therapist", "filters"),
    [
        (dict(methods=("tp",)), dict(method="vt")),
        (dict(specialties=("anxiety",)), dict(specialty="trauma")),
        (dict(languages=("de",)), dict(language="tr")),
        (dict(gender="m"), dict(therapist_gender="f")),
        (dict(offers_video=False), dict(video=True)),
        (dict(offers_group=False), dict(group=True)),
        (dict(insurances=("pkv",)), dict()),
        (dict(populations=("children",)), dict()),
        (dict(approved_at=None), dict()),
    ],
)
def test_finder_filter_excludes(session, therapist, filters):
    _practice_with(session, **therapist)
    assert _finder(session, make_patient(session), **filters) == []


@pytest.mark.parametrize(
    ("therapist", "filters"),
    [
        (dict(methods=("vt", "emdr")), dict(method="emdr")),
        (dict(specialties=("trauma",)), dict(specialty="trauma")),
        (dict(languages=("de", "tr")), dict(language="tr")),
        (dict(gender="f"), dict(therapist_gender="f")),
        (dict(offers_video=True), dict(video=True)),
        (dict(offers_group=True), dict(group=True)),
    ],
)
def test_finder_filter_keeps(session, therapist, filters):
    _practice_with(session, **therapist)
    assert len(_finder(session, make_patient(session), **filters)) == 1


def test_finder_marks_lists_the_patient_is_on(session):
    practice = _practice_with(session)
    patient = make_patient(session, lists=[practice])
    assert _finder(session, patient)[0].on_list


def test_finder_counts_therapists_once_per_practice(session):
    practice = _practice_with(session)
    make_therapist(session, practice, methods=("tp",))
    hits = _finder(session, make_patient(session))
    assert len(hits) == 1 and hits[0].therapists == 2 and hits[0].methods == ["vt", "tp"]


def test_practice_by_slug_ignores_inactive(session):
    make_practice(session, slug="zu", is_active=False)
    make_practice(session, slug="offen")
    assert waitlist.get_practice_by_slug(session, "zu") is None
    assert waitlist.get_practice_by_slug(session, "offen").slug == "offen"
