"""Issue 19: self-enrolment into open groups, the cancel button, the decision mail to the
therapist, and rescheduling the participants of a group cancelled below its minimum."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ptmatch.db import settings_of
from ptmatch.domain import groups
from ptmatch.domain.errors import InvalidInput, NotAllowed, NotFound
from ptmatch.models import (
    EnrollmentStatus,
    EntryStatus,
    GroupEnrollment,
    GroupStatus,
    Modality,
    Offer,
    OfferStatus,
    OutboxMessage,
    Preference,
    WaitlistEntry,
)
from tests.conftest import NOW
from tests.factories import (
    GROUP_START,
    make_group,
    make_patient,
    make_practice,
    make_secretary,
    make_therapist,
    make_user,
)

FAR = dict(lat=53.55, lon=9.99)  # Hamburg
NEAR = dict(lat=50.94, lon=6.96)  # Cologne


@pytest.fixture
def practice(session):
    return make_practice(session, lat=50.94, lon=6.95)


@pytest.fixture
def therapist(session, practice):
    return make_therapist(session, practice, offers_group=True)


def _patient(session, **kwargs):
    kwargs.setdefault("group_pref", Preference.WANTED)
    for key, value in NEAR.items():
        kwargs.setdefault(key, value)
    return make_patient(session, **kwargs)


def _mails(session, kind):
    return session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == kind))


def _enrol(session, group, patient, actor=None, now=NOW):
    return groups.self_enrol(
        session, now, actor or patient.user, group, patient, settings_of(session)
    )


# --- seeing and joining ------------------------------------------------------------------------


def test_a_patient_sees_open_groups_that_fit_them(session, practice, therapist):
    fitting = make_group(session, therapist)
    make_group(session, therapist, self_enrol=False, first_session_at=GROUP_START + dt.timedelta(1))
    make_group(session, therapist, status=GroupStatus.CANCELLED, title="abgesagt")
    focus = make_group(
        session, therapist, problems_mask=1 << 40, first_session_at=GROUP_START + dt.timedelta(2)
    )
    patient = _patient(session)  # not on any list: self-enrolment needs none
    assert [g.id for g in groups.open_groups_for(session, patient, NOW)] == [fitting.id]
    assert focus.id not in [g.id for g in groups.open_groups_for(session, patient, NOW)]


def test_too_far_in_person_but_video_is_fine(session, practice, therapist):
    in_person = make_group(session, therapist)
    video = make_group(
        session,
        therapist,
        modality=Modality.VIDEO,
        first_session_at=GROUP_START + dt.timedelta(days=1),
    )
    far = _patient(session, **FAR, max_distance_km=20)
    assert [g.id for g in groups.open_groups_for(session, far, NOW)] == [video.id]
    with pytest.raises(InvalidInput):
        _enrol(session, in_person, far)
    no_video = _patient(session, **FAR, video_pref=Preference.NO)
    assert groups.open_groups_for(session, no_video, NOW) == []


def test_the_hard_filters_apply(session, practice, therapist):
    group = make_group(session, therapist)
    no_groups = _patient(session, group_pref=Preference.NO)
    evenings_busy = _patient(session, windows=[(3, 8 * 60, 12 * 60)])  # Thursday mornings only
    needs_access = _patient(session, needs_accessible_room=True)  # in person, no accessible room
    for patient in (no_groups, evenings_busy, needs_access):
        assert groups.open_groups_for(session, patient, NOW) == []
        with pytest.raises(InvalidInput):
            _enrol(session, group, patient)


def test_enrol_takes_seats_then_the_waitlist_in_order(session, practice, therapist):
    group = make_group(session, therapist, max_participants=3, enrolled_count=1)
    people = [_patient(session) for _ in range(4)]
    statuses = [_enrol(session, group, p) for p in people]
    assert [(e.status, e.position) for e in statuses] == [
        (EnrollmentStatus.ENROLLED, None),
        (EnrollmentStatus.ENROLLED, None),
        (EnrollmentStatus.WAITLISTED, 1),
        (EnrollmentStatus.WAITLISTED, 2),
    ]
    assert group.enrolled_count == 3
    assert _mails(session, "group_enrolled") == 2 and _mails(session, "group_waitlisted") == 2
    with pytest.raises(InvalidInput):
        _enrol(session, group, people[0])


def test_the_waitlist_goes_first(session, practice, therapist):
    group = make_group(session, therapist, max_participants=3, enrolled_count=2)
    waiting = _patient(session)
    session.add(
        GroupEnrollment(
            group_id=group.id,
            patient_id=waiting.id,
            status=EnrollmentStatus.WAITLISTED,
            position=1,
            created_at=NOW,
        )
    )
    session.flush()
    newcomer = _enrol(session, group, _patient(session))
    assert (newcomer.status, newcomer.position) == (EnrollmentStatus.WAITLISTED, 2)


def test_self_enrolment_switched_off_means_offers_only(session, practice, therapist):
    group = make_group(session, therapist, self_enrol=False)
    patient = _patient(session)
    with pytest.raises(NotAllowed):
        _enrol(session, group, patient)
    groups.set_self_enrol(session, NOW, therapist.user, group, True)
    assert _enrol(session, group, patient).status == EnrollmentStatus.ENROLLED


def test_a_pending_offer_is_accepted_instead(session, practice, therapist):
    patient = _patient(session, lists=[practice])
    group = groups.create_group(
        session,
        NOW,
        therapist.user,
        therapist,
        title="Skills",
        first_session_at=GROUP_START,
        session_count=4,
        minutes=90,
        min_participants=2,
        max_participants=4,
        settings=settings_of(session),
    )
    offer = session.scalar(select(Offer).where(Offer.group_id == group.id))
    assert offer.patient_id == patient.id
    assert _enrol(session, group, patient).status == EnrollmentStatus.ENROLLED
    session.refresh(offer)
    assert offer.status == OfferStatus.ACCEPTED


def test_no_enrolment_after_the_offer_deadline_or_by_strangers(session, practice, therapist):
    group = make_group(session, therapist)
    patient = _patient(session)
    with pytest.raises(NotAllowed):
        _enrol(session, group, patient, actor=make_user(session))
    with pytest.raises(InvalidInput):
        _enrol(session, group, patient, now=GROUP_START - dt.timedelta(minutes=30))
    with pytest.raises(NotFound):
        groups.get_open_group(session, group.id, GROUP_START)


def test_the_secretariat_enrols_a_caller_even_when_self_enrolment_is_off(
    session, practice, therapist
):
    group = make_group(session, therapist, self_enrol=False)
    caller = _patient(session, lists=[practice])
    secretary = make_secretary(session, [practice])
    enrollment = _enrol(session, group, caller, actor=secretary)
    assert enrollment.status == EnrollmentStatus.ENROLLED
    outsider = make_secretary(session, [make_practice(session)])
    with pytest.raises(NotAllowed):
        _enrol(session, group, _patient(session, lists=[practice]), actor=outsider)


# --- cancelling, the decision mail, rescheduling ------------------------------------------------


def _seat(session, group, patient, status=EnrollmentStatus.ENROLLED, position=None):
    session.add(
        GroupEnrollment(
            group_id=group.id,
            patient_id=patient.id,
            status=status,
            position=position,
            created_at=NOW,
        )
    )
    if status == EnrollmentStatus.ENROLLED:
        group.enrolled_count += 1
    session.flush()


def test_cancel_button_needs_reason_and_confirmation_and_tells_everyone(
    session, practice, therapist
):
    group = make_group(session, therapist, min_participants=2)
    a, b, c = (_patient(session, lists=[practice]) for _ in range(3))
    for p in (a, b, c):
        _seat(session, group, p)
    settings = settings_of(session)
    with pytest.raises(InvalidInput) as err:
        groups.cancel_group(
            session, NOW, therapist.user, group, reason=" ", confirmed=True, settings=settings
        )
    assert err.value.field == "reason"
    with pytest.raises(InvalidInput):
        groups.cancel_group(
            session, NOW, therapist.user, group, reason="krank", confirmed=False, settings=settings
        )
    with pytest.raises(NotAllowed):
        groups.cancel_group(
            session, NOW, make_user(session), group, reason="x", confirmed=True, settings=settings
        )
    groups.cancel_group(
        session,
        NOW,
        therapist.user,
        group,
        reason="Therapeutin erkrankt",
        confirmed=True,
        settings=settings,
    )
    assert group.status == GroupStatus.CANCELLED and group.cancel_reason == "Therapeutin erkrankt"
    assert _mails(session, "group_cancelled") == 3
    statuses = set(session.scalars(select(GroupEnrollment.status)))
    assert statuses == {EnrollmentStatus.CANCELLED}
    # Lists stay.
    assert (
        session.scalar(
            select(func.count(WaitlistEntry.id)).where(WaitlistEntry.status == EntryStatus.ACTIVE)
        )
        == 3
    )
    with pytest.raises(InvalidInput):
        groups.cancel_group(
            session, NOW, therapist.user, group, reason="again", confirmed=True, settings=settings
        )


def test_decision_mails_the_therapist_without_names(session, practice, therapist):
    settings = settings_of(session)
    confirmed = make_group(session, therapist, min_participants=2)
    for _ in range(2):
        _seat(session, confirmed, _patient(session))
    cancelled = make_group(
        session, therapist, min_participants=2, first_session_at=GROUP_START + dt.timedelta(1)
    )
    _seat(session, cancelled, _patient(session))
    later = GROUP_START + dt.timedelta(days=1) - dt.timedelta(hours=47)
    assert groups.decide_group(session, later, confirmed, settings) == GroupStatus.CONFIRMED
    assert groups.decide_group(session, later, cancelled, settings) == GroupStatus.CANCELLED
    mails = session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind.like("practice_group_%"))
    ).all()
    assert sorted(m.kind for m in mails) == [
        "practice_group_cancelled",
        "practice_group_confirmed",
    ]
    assert {m.to_addr for m in mails} == {therapist.user.email}
    assert f"/praxis/gruppen/{cancelled.id}" in " ".join(m.body_text for m in mails)
    assert groups.decide_group(session, later, confirmed, settings) is None  # twice: nothing
    assert _mails(session, "practice_group_confirmed") == 1


def test_cancelled_below_minimum_offers_the_next_group_of_the_same_method_first(
    session, practice, therapist
):
    settings = settings_of(session)
    small = make_group(session, therapist, min_participants=3, method="dbt")
    enrolled, waiting = _patient(session, lists=[practice]), _patient(session, lists=[practice])
    _seat(session, small, enrolled)
    _seat(session, small, waiting, EnrollmentStatus.WAITLISTED, position=1)
    make_group(
        session, therapist, method="vt", title="VT", first_session_at=GROUP_START + dt.timedelta(3)
    )
    following = make_group(
        session, therapist, method="dbt", first_session_at=GROUP_START + dt.timedelta(days=7)
    )
    decided = GROUP_START - dt.timedelta(hours=47)
    assert groups.decide_group(session, decided, small, settings) == GroupStatus.CANCELLED
    offered = session.scalars(select(Offer).where(Offer.group_id == following.id)).all()
    assert sorted(o.patient_id for o in offered) == sorted([enrolled.id, waiting.id])
    assert all(o.status == OfferStatus.PENDING for o in offered)
    assert _mails(session, "group_offer") == 2
    # They keep their lists.
    assert (
        session.scalar(
            select(func.count(WaitlistEntry.id)).where(WaitlistEntry.status == EntryStatus.ACTIVE)
        )
        == 2
    )


def test_no_next_group_means_no_offer(session, practice, therapist):
    settings = settings_of(session)
    small = make_group(session, therapist, min_participants=3, method="dbt")
    _seat(session, small, _patient(session))
    make_group(session, therapist, method="vt", first_session_at=GROUP_START + dt.timedelta(3))
    groups.decide_group(session, GROUP_START - dt.timedelta(hours=47), small, settings)
    assert session.scalar(select(func.count(Offer.id))) == 0
