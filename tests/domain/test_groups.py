"""Group programmes: creation, candidates, seats then waitlist, decline, withdraw and the freed
seat."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ptmatch.db import settings_of
from ptmatch.domain import groups, offers
from ptmatch.domain.errors import (
    Clash,
    InvalidInput,
    NotAllowed,
    OfferClosed,
    OfferExpired,
    SlotTaken,
)
from ptmatch.models import (
    EnrollmentStatus,
    EntryStatus,
    GroupEnrollment,
    GroupProgram,
    GroupStatus,
    Modality,
    Offer,
    OfferStatus,
    OutboxMessage,
    PatientStatus,
    Preference,
    SlotStatus,
    WaitlistEntry,
)
from tests.conftest import NOW
from tests.factories import make_group, make_patient, make_practice, make_slot, make_therapist

FIRST = dt.datetime(2026, 12, 10, 16, 0, tzinfo=dt.UTC)  # Thursday 17:00 Berlin, 16 days ahead


@pytest.fixture
def practice(session):
    return make_practice(session)


@pytest.fixture
def therapist(session, practice):
    return make_therapist(session, practice, offers_group=True)


def _patients(session, practice, n, **kwargs):
    kwargs.setdefault("group_pref", Preference.WANTED)
    return [make_patient(session, lists=[practice], **kwargs) for _ in range(n)]


def _create(session, now, therapist, **kwargs):
    fields = dict(
        title="DBT-Skillsgruppe",
        first_session_at=FIRST,
        session_count=10,
        minutes=100,
        min_participants=2,
        max_participants=3,
        modality=Modality.IN_PERSON,
        method="dbt",
    )
    fields.update(kwargs)
    fields.setdefault("settings", settings_of(session))
    return groups.create_group(session, now, therapist.user, therapist, **fields)


def _offer(session, group, patient):
    return session.scalar(
        select(Offer).where(Offer.group_id == group.id, Offer.patient_id == patient.id)
    )


def _mails(session, kind):
    return session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == kind))


# --- creating and offering -----------------------------------------------------------------------


def test_create_group_sends_first_wave_with_group_offer_mails(session, now, practice, therapist):
    patients = _patients(session, practice, 3)
    group = _create(session, now, therapist)
    assert group.status == GroupStatus.OPEN and group.current_wave == 1
    sent = session.scalars(select(Offer).where(Offer.group_id == group.id)).all()
    assert {o.patient_id for o in sent} == {p.id for p in patients}
    assert all(o.slot_id is None and o.status == OfferStatus.PENDING for o in sent)
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "group_offer"))
    assert "/g/" in mail.body_text
    assert _mails(session, "group_offer") == 3


def test_wave_is_free_seats_times_lead_time_wave_size(session, now, practice, therapist):
    _patients(session, practice, 9)
    group = _create(session, now, therapist, max_participants=3)  # 16 days ahead: 2 per seat
    assert session.scalar(select(func.count(Offer.id)).where(Offer.group_id == group.id)) == 6


def test_only_patients_who_want_or_accept_groups_are_offered(session, now, practice, therapist):
    wanted = make_patient(session, lists=[practice], group_pref=Preference.WANTED)
    acceptable = make_patient(session, lists=[practice], group_pref=Preference.ACCEPTABLE)
    make_patient(session, lists=[practice], group_pref=Preference.NO)
    group = _create(session, now, therapist)
    offered = set(session.scalars(select(Offer.patient_id).where(Offer.group_id == group.id)))
    assert offered == {wanted.id, acceptable.id}


def test_availability_must_cover_the_weekly_session(session, now, practice, therapist):
    fits = make_patient(
        session, lists=[practice], group_pref=Preference.WANTED, windows=[(3, 16 * 60, 19 * 60)]
    )  # Thursday 16-19
    make_patient(
        session, lists=[practice], group_pref=Preference.WANTED, windows=[(3, 17 * 60, 18 * 60)]
    )  # ends before the 100 minutes do
    make_patient(
        session, lists=[practice], group_pref=Preference.WANTED, windows=[(2, 8 * 60, 20 * 60)]
    )
    group = _create(session, now, therapist)
    assert set(session.scalars(select(Offer.patient_id).where(Offer.group_id == group.id))) == {
        fits.id
    }


def test_problem_focus_and_exclusions_filter_candidates(session, now, practice):
    therapist = make_therapist(session, practice, offers_group=True, exclusions=("psychosis",))
    match = make_patient(
        session, lists=[practice], group_pref=Preference.WANTED, problems=("personality",)
    )
    make_patient(session, lists=[practice], group_pref=Preference.WANTED, problems=("anxiety",))
    make_patient(
        session,
        lists=[practice],
        group_pref=Preference.WANTED,
        problems=("personality", "psychosis"),
    )
    group = _create(session, now, therapist, problems=("personality", "self_harm"))
    assert set(session.scalars(select(Offer.patient_id).where(Offer.group_id == group.id))) == {
        match.id
    }


def test_inactive_and_paused_patients_are_not_offered(session, now, practice, therapist):
    active = make_patient(session, lists=[practice], group_pref=Preference.WANTED)
    make_patient(
        session, lists=[practice], group_pref=Preference.WANTED, status=PatientStatus.PAUSED
    )
    group = _create(session, now, therapist)
    assert set(session.scalars(select(Offer.patient_id).where(Offer.group_id == group.id))) == {
        active.id
    }


def test_create_refused_without_group_in_profile(session, now, practice):
    therapist = make_therapist(session, practice, offers_group=False)
    with pytest.raises(NotAllowed):
        _create(session, now, therapist)


def test_create_refused_inside_decision_time(session, now, therapist):
    with pytest.raises(InvalidInput) as exc:
        _create(session, now, therapist, first_session_at=now + dt.timedelta(hours=47))
    assert exc.value.field == "start_date" and "48" in exc.value.message


def test_create_refused_min_above_max(session, now, therapist):
    with pytest.raises(InvalidInput) as exc:
        _create(session, now, therapist, min_participants=6, max_participants=5)
    assert exc.value.field == "min_participants"


def test_create_refused_on_clash_with_slot_in_a_later_week(session, now, therapist):
    # Week 3 of the group (24 Dec, 17:00 Berlin) meets a slot ending 16:55: inside the 10-minute
    # buffer.
    make_slot(
        session, therapist, start_at=dt.datetime(2026, 12, 24, 15, 5, tzinfo=dt.UTC), minutes=50
    )
    with pytest.raises(Clash) as exc:
        _create(session, now, therapist)
    assert "24.12.2026" in exc.value.message


def test_create_refused_on_clash_with_other_group(session, now, therapist):
    make_group(session, therapist, first_session_at=FIRST - dt.timedelta(weeks=3), session_count=5)
    with pytest.raises(Clash) as exc:
        _create(session, now, therapist)
    assert "Gruppe" in exc.value.message


def test_posting_a_slot_into_a_group_session_is_refused(session, now, therapist, settings):
    make_group(session, therapist, first_session_at=FIRST)
    with pytest.raises(Clash) as exc:
        offers.post_slot(
            session,
            now,
            therapist.user,
            therapist,
            start_at=FIRST + dt.timedelta(weeks=1, minutes=30),
            minutes=50,
            mode="manual",
            settings=settings,
        )
    assert "Gruppe" in exc.value.message and "17.12.2026" in exc.value.message


def test_create_allowed_after_other_group_ended(session, now, therapist):
    make_group(session, therapist, first_session_at=FIRST - dt.timedelta(weeks=2), session_count=2)
    assert _create(session, now, therapist).id is not None


# --- seats, then the waitlist ------------------------------------------------------------------


def test_enrol_up_to_max_then_waitlist_in_order(session, now, practice, therapist):
    patients = _patients(session, practice, 5)
    group = _create(session, now, therapist, max_participants=3)
    results = [
        groups.accept_group_offer(session, now, _offer(session, group, p), p.user) for p in patients
    ]
    assert [e.status for e in results] == [EnrollmentStatus.ENROLLED] * 3 + [
        EnrollmentStatus.WAITLISTED
    ] * 2
    assert [e.position for e in results[3:]] == [1, 2]
    assert group.enrolled_count == 3
    assert _mails(session, "group_enrolled") == 3 and _mails(session, "group_waitlisted") == 2
    enrolled, waiting = groups.members(session, NOW, therapist.user, group)
    assert [m.patient.id for m in waiting] == [patients[3].id, patients[4].id]
    assert len(enrolled) == 3 and all(m.visible for m in enrolled + waiting)


def test_group_seat_keeps_lists_and_status(session, now, practice, therapist):
    other = make_practice(session)
    (patient,) = _patients(session, practice, 1)
    from tests.factories import add_to_list

    add_to_list(session, patient, other)
    group = _create(session, now, therapist)
    groups.accept_group_offer(session, now, _offer(session, group, patient), patient.user)
    assert patient.status == PatientStatus.ACTIVE
    assert (
        session.scalar(
            select(func.count(WaitlistEntry.id)).where(
                WaitlistEntry.patient_id == patient.id, WaitlistEntry.status == EntryStatus.ACTIVE
            )
        )
        == 2
    )


def test_accept_twice_is_refused(session, now, practice, therapist):
    (patient,) = _patients(session, practice, 1)
    group = _create(session, now, therapist)
    offer = _offer(session, group, patient)
    groups.accept_group_offer(session, now, offer, patient.user)
    with pytest.raises(OfferClosed):
        groups.accept_group_offer(session, now, offer, patient.user)
    assert group.enrolled_count == 1


def test_accept_by_someone_else_is_refused(session, now, practice, therapist):
    a, b = _patients(session, practice, 2)
    group = _create(session, now, therapist)
    with pytest.raises(NotAllowed):
        groups.accept_group_offer(session, now, _offer(session, group, a), b.user)


def test_accept_after_expiry_is_refused(session, now, practice, therapist):
    (patient,) = _patients(session, practice, 1)
    group = _create(session, now, therapist)
    offer = _offer(session, group, patient)
    with pytest.raises(OfferExpired):
        groups.accept_group_offer(session, offer.expires_at, offer, patient.user)
    assert group.enrolled_count == 0


def test_decline_sends_the_place_in_the_wave_on(session, now, practice, therapist, settings):
    patients = _patients(session, practice, 3)
    group = _create(session, now, therapist, max_participants=2, min_participants=2)
    wave = [p for p in patients if _offer(session, group, p) is not None]
    assert len(wave) == 3  # 2 seats x 2 = 4 places, three candidates
    groups.decline_group_offer(
        session, now, _offer(session, group, wave[0]), wave[0].user, settings=settings
    )
    assert _offer(session, group, wave[0]).status == OfferStatus.DECLINED


# --- a freed seat -------------------------------------------------------------------------------


def _full_group_with_waitlist(session, now, practice, therapist):
    patients = _patients(session, practice, 4)
    group = _create(session, now, therapist, max_participants=2, min_participants=2)
    for p in patients:
        groups.accept_group_offer(session, now, _offer(session, group, p), p.user)
    return group, patients


def test_freed_seat_is_offered_to_the_waitlist_in_order(
    session, now, practice, therapist, settings
):
    group, patients = _full_group_with_waitlist(session, now, practice, therapist)
    mails_before = _mails(session, "group_offer")
    enrollment = groups.get_enrollment(session, group.id, patients[0].id)
    groups.withdraw(session, now, patients[0].user, enrollment, settings=settings)
    assert group.enrolled_count == 1
    offered = [p for p in patients[2:] if _offer(session, group, p).status == OfferStatus.PENDING]
    assert offered == patients[2:]  # 1 seat x wave size 2: both waitlisted, in order
    assert _mails(session, "group_offer") == mails_before + 2


def test_freed_seat_first_waitlisted_to_accept_wins_once(
    session, now, practice, therapist, settings
):
    group, patients = _full_group_with_waitlist(session, now, practice, therapist)
    groups.withdraw(
        session,
        now,
        therapist.user,
        groups.get_enrollment(session, group.id, patients[0].id),
        settings=settings,
    )
    later = now + dt.timedelta(minutes=5)
    second, first = patients[3], patients[2]
    won = groups.accept_group_offer(session, later, _offer(session, group, second), second.user)
    assert won.status == EnrollmentStatus.ENROLLED and group.enrolled_count == 2
    assert _offer(session, group, first).status == OfferStatus.TAKEN
    with pytest.raises(SlotTaken):
        groups.accept_group_offer(session, later, _offer(session, group, first), first.user)
    assert groups.get_enrollment(session, group.id, first.id).status == EnrollmentStatus.WAITLISTED
    assert group.enrolled_count == 2


def test_new_accept_does_not_jump_the_waitlist(session, now, practice, therapist, settings):
    group, patients = _full_group_with_waitlist(session, now, practice, therapist)
    late = make_patient(session, lists=[practice], group_pref=Preference.WANTED)
    offer = Offer(
        group_id=group.id,
        patient_id=late.id,
        wave=9,
        token_hash="x" * 64,
        status=OfferStatus.PENDING,
        sent_at=now,
        expires_at=now + dt.timedelta(hours=4),
    )
    session.add(offer)
    session.flush()
    groups.withdraw(
        session,
        now,
        patients[0].user,
        groups.get_enrollment(session, group.id, patients[0].id),
        settings=settings,
    )
    result = groups.accept_group_offer(session, now, offer, late.user)
    assert result.status == EnrollmentStatus.WAITLISTED
    assert [m.patient.id for m in groups.members(session, NOW, therapist.user, group)[1]] == [
        *[p.id for p in patients[2:]],
        late.id,
    ]


def test_declined_seat_offer_leaves_the_waitlist(session, now, practice, therapist, settings):
    group, patients = _full_group_with_waitlist(session, now, practice, therapist)
    groups.withdraw(
        session,
        now,
        patients[0].user,
        groups.get_enrollment(session, group.id, patients[0].id),
        settings=settings,
    )
    groups.decline_group_offer(
        session, now, _offer(session, group, patients[2]), patients[2].user, settings=settings
    )
    assert (
        groups.get_enrollment(session, group.id, patients[2].id).status
        == EnrollmentStatus.WITHDRAWN
    )


def test_expired_seat_offer_moves_to_the_end_of_the_waitlist(
    session, now, practice, therapist, settings
):
    group, patients = _full_group_with_waitlist(session, now, practice, therapist)
    groups.withdraw(
        session,
        now,
        patients[0].user,
        groups.get_enrollment(session, group.id, patients[0].id),
        settings=settings,
    )
    lapsed = _offer(session, group, patients[2])
    lapsed.expires_at = now + dt.timedelta(minutes=1)
    session.flush()
    assert groups.expire_group_offers(session, now + dt.timedelta(minutes=2)) == 1
    assert lapsed.status == OfferStatus.EXPIRED
    waiting = groups.members(session, NOW, therapist.user, group)[1]
    assert [m.patient.id for m in waiting] == [patients[3].id, patients[2].id]


def test_withdraw_after_start_is_refused(session, now, practice, therapist, settings):
    group, patients = _full_group_with_waitlist(session, now, practice, therapist)
    with pytest.raises(InvalidInput):
        groups.withdraw(
            session,
            FIRST + dt.timedelta(minutes=1),
            patients[0].user,
            groups.get_enrollment(session, group.id, patients[0].id),
            settings=settings,
        )


def test_withdraw_by_stranger_is_refused(session, now, practice, therapist, settings):
    group, patients = _full_group_with_waitlist(session, now, practice, therapist)
    stranger = make_therapist(session, make_practice(session), offers_group=True)
    with pytest.raises(NotAllowed):
        groups.withdraw(
            session,
            now,
            stranger.user,
            groups.get_enrollment(session, group.id, patients[0].id),
            settings=settings,
        )


def test_group_states_count_waitlist_and_offers(session, now, practice, therapist):
    group, _patients_ = _full_group_with_waitlist(session, now, practice, therapist)
    (state,) = groups.group_states(session, now, [group])
    assert state.waitlisted == 2 and state.offered == 4 and state.pending == 0


def test_group_context_ignores_slot_offers(session, now, practice, therapist):
    (patient,) = _patients(session, practice, 1)
    slot = make_slot(
        session, therapist, start_at=FIRST - dt.timedelta(days=1), status=SlotStatus.OFFERING
    )
    from tests.factories import make_offer

    make_offer(session, slot, patient)
    group = make_group(session, therapist, first_session_at=FIRST + dt.timedelta(hours=1))
    assert [c.patient_id for c in groups.rank_group_candidates(session, group, now)] == [patient.id]
    assert session.get(GroupProgram, group.id) is group
    assert session.scalar(select(func.count(GroupEnrollment.id))) == 0


def test_booking_an_individual_slot_keeps_a_pending_group_offer(
    session, now, practice, therapist, settings
):
    """A group seat is an addition: accepting a slot must not withdraw the group offer."""
    patient = _patients(session, practice, 1)[0]
    group = _create(session, now, therapist)
    group_offer = _offer(session, group, patient)
    slot = offers.post_slot(
        session,
        now,
        therapist.user,
        therapist,
        start_at=now + dt.timedelta(days=2, hours=1),
        minutes=50,
        kind="sprechstunde",
        modality="in_person",
        mode="manual",
        settings=settings,
    )
    offers.send_offers(session, now, slot, [patient], therapist.user, settings=settings)
    slot_offer = session.scalar(
        select(Offer).where(Offer.slot_id == slot.id, Offer.patient_id == patient.id)
    )
    offers.accept_offer(session, now, slot_offer, patient.user, settings=settings)
    session.refresh(group_offer)
    assert group_offer.status == OfferStatus.PENDING
    groups.accept_group_offer(session, now, group_offer, patient.user)
    assert groups.get_enrollment(session, group.id, patient.id).status == EnrollmentStatus.ENROLLED
