"""Posting, waves, accepting (first answer wins), declining, expiry, outcomes."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from ptmatch.db import settings_of
from ptmatch.domain import offer_machine, offers
from ptmatch.domain.errors import (
    Clash,
    InvalidInput,
    NotAllowed,
    OfferClosed,
    OfferExpired,
    SlotTaken,
)
from ptmatch.models import (
    AuditEvent,
    Booking,
    BookingStatus,
    EntryStatus,
    Modality,
    Offer,
    OfferMode,
    OfferStatus,
    OutboxMessage,
    PatientStatus,
    RemovalReason,
    Role,
    Slot,
    SlotKind,
    SlotStatus,
    WaitlistEntry,
)
from ptmatch.scheduler.tasks.sweep import sweep
from tests.conftest import NOW
from tests.factories import (
    empty_tables_quickly,
    make_patient,
    make_practice,
    make_secretary,
    make_therapist,
    make_user,
)

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
TOMORROW_14 = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)  # Wed 14:00 Berlin: 28 h ahead


@pytest.fixture(autouse=True)
def _clean_database(engine):
    """The quick cleanup (tests.factories.empty_tables_quickly) instead of TRUNCATE."""
    yield
    empty_tables_quickly(engine)


@pytest.fixture
def practice(session):
    return make_practice(session)


@pytest.fixture
def therapist(session, practice):
    return make_therapist(session, practice)


def post(session, therapist, start=TOMORROW_14, mode=OfferMode.AUTO, now=NOW, **kwargs):
    return offers.post_slot(
        session,
        now,
        therapist.user,
        therapist,
        start_at=start,
        minutes=50,
        kind=kwargs.pop("kind", SlotKind.SPRECHSTUNDE),
        modality=kwargs.pop("modality", Modality.IN_PERSON),
        mode=mode,
        settings=kwargs.pop("settings", settings_of(session)),
        **kwargs,
    )


def people(session, practice, n, **kwargs):
    """n fitting patients on the list, the first waiting longest (so rank = creation order)."""
    return [
        make_patient(session, lists=[practice], added_at=NOW - (100 - i) * DAY, **kwargs)
        for i in range(n)
    ]


def offers_of(session, slot, status=None):
    query = select(Offer).where(Offer.slot_id == slot.id).order_by(Offer.id)
    if status is not None:
        query = query.where(Offer.status == status)
    return list(session.scalars(query))


def mails(session, kind, user=None):
    query = select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == kind)
    if user is not None:
        query = query.where(OutboxMessage.user_id == user.id)
    return session.scalar(query)


# --- wave sizing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lead", "expected"),
    [
        (3 * HOUR, (5, 60)),
        (30 * HOUR, (4, 240)),
        (4 * DAY, (3, 720)),
        (21 * DAY, (2, 1440)),
    ],
)
def test_default_wave_rules_follow_lead_time(lead, expected, settings):
    assert offer_machine.wave_params(None, NOW + lead, NOW, settings) == expected


def test_practice_wave_rules_override(practice, settings):
    practice.wave_rules = [[48, 8, 30], [None, 1, 600]]
    assert offer_machine.wave_params(practice, NOW + 3 * HOUR, NOW, settings) == (8, 30)
    assert offer_machine.wave_params(practice, NOW + 3 * DAY, NOW, settings) == (1, 600)
    practice.wave_rules = [["nonsense"]]
    assert offer_machine.wave_params(practice, NOW + 3 * HOUR, NOW, settings) == (5, 60)


def test_configured_wave_rules_apply_unless_the_practice_has_its_own(practice, settings):
    configured = replace(settings, WAVE_RULES=((None, 7, 45),))
    assert offer_machine.wave_params(practice, NOW + 3 * DAY, NOW, configured) == (7, 45)
    practice.wave_rules = [[None, 1, 600]]
    assert offer_machine.wave_params(practice, NOW + 3 * DAY, NOW, configured) == (1, 600)


def test_configured_wave_rules_apply_to_auto_and_hand_picked_offers(
    session, practice, therapist, settings
):
    """WAVE_RULES set for the network give every wave its answer time, also a manual one
    (hand-picked offers once took the built-in rules: 4 hours for this slot, not 45 minutes)."""
    configured = replace(settings, WAVE_RULES=((None, 2, 45),))
    patients = people(session, practice, 3)
    auto = post(session, therapist, settings=configured)
    assert [o.expires_at for o in offers_of(session, auto)] == [NOW + 45 * MINUTE] * 2
    manual = post(
        session, make_therapist(session, practice), mode=OfferMode.MANUAL, settings=configured
    )
    (offer,) = offers.send_offers(
        session, NOW, manual, [patients[2]], manual.therapist.user, configured
    )
    assert offer.expires_at == NOW + 45 * MINUTE
    assert manual.offer_ttl_minutes == 45


def test_deadline_never_after_start_minus_cutoff(session, practice, therapist):
    people(session, practice, 1)
    start = NOW + 3 * HOUR  # wave rule says 60 minutes; the cut-off (2 h) leaves 60 minutes
    practice.offer_cutoff_minutes = 150
    slot = post(session, therapist, start=start)
    assert slot.offer_deadline_at == start - dt.timedelta(minutes=150)
    assert offers_of(session, slot)[0].expires_at == slot.offer_deadline_at


# --- posting --------------------------------------------------------------------------------------


def test_auto_post_sends_the_first_wave_in_the_same_transaction(session, practice, therapist):
    patients = people(session, practice, 6)
    slot = post(session, therapist)
    sent = offers_of(session, slot)
    assert [o.patient_id for o in sent] == [p.id for p in patients[:4]]  # 28 h ahead: 4 people
    assert all(o.expires_at == NOW + 4 * HOUR and o.wave == 1 for o in sent)
    assert slot.current_wave == 1 and slot.wave_size == 4
    assert mails(session, "offer") == 4
    body = session.scalar(
        select(OutboxMessage.body_text).where(OutboxMessage.kind == "offer").limit(1)
    )
    assert "https://ptmatch.test/o/" in body or "/o/" in body
    assert (
        session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "offer.sent"))
        == 4
    )


def test_manual_post_sends_nothing_until_picked(session, practice, therapist, settings):
    patients = people(session, practice, 3)
    slot = post(session, therapist, mode=OfferMode.MANUAL)
    assert offers_of(session, slot) == []
    sent = offers.send_offers(
        session, NOW, slot, [patients[2], patients[0].id], therapist.user, settings=settings
    )
    assert sorted(o.patient_id for o in sent) == sorted([patients[0].id, patients[2].id])
    assert mails(session, "offer") == 2


def test_manual_pick_skips_ineligible_and_refuses_none(session, practice, therapist, settings):
    eligible = people(session, practice, 1)[0]
    stranger = make_patient(session, lists=[make_practice(session)])
    slot = post(session, therapist, mode=OfferMode.MANUAL)
    with pytest.raises(InvalidInput):
        offers.send_offers(session, NOW, slot, [stranger], therapist.user, settings=settings)
    sent = offers.send_offers(
        session, NOW, slot, [stranger, eligible], therapist.user, settings=settings
    )
    assert [o.patient_id for o in sent] == [eligible.id]


@pytest.mark.parametrize(
    ("start", "field"), [(NOW - HOUR, "start_time"), (NOW + HOUR, "start_time")]
)
def test_refuses_past_and_too_short_notice(session, therapist, start, field):
    with pytest.raises(InvalidInput) as err:
        post(session, therapist, start=start)
    assert err.value.field == field


def test_refuses_a_clash_and_names_it(session, practice, therapist):
    post(session, therapist, mode=OfferMode.MANUAL)
    with pytest.raises(Clash) as err:
        post(
            session,
            therapist,
            start=TOMORROW_14 + dt.timedelta(minutes=55),
            modality=Modality.VIDEO,
        )
    assert "14:00 bis 14:50" in err.value.message
    assert err.value.msgid == offers.MSG_CLASH and "Sprechstunde" in err.value.params["what"]


def test_refuses_unapproved_or_without_2fa(session, practice):
    unapproved = make_therapist(session, practice, approved_at=None)
    with pytest.raises(NotAllowed):
        post(session, unapproved)
    no_totp = make_therapist(session, practice, user=make_user(session, Role.THERAPIST, totp=False))
    with pytest.raises(NotAllowed):
        post(session, no_totp)


def test_secretary_posts_only_for_served_practices(session, practice, therapist, settings):
    outsider = make_secretary(session, practices=[make_practice(session)])
    with pytest.raises(NotAllowed):
        offers.post_slot(
            session, NOW, outsider, therapist, start_at=TOMORROW_14, minutes=50, settings=settings
        )
    serving = make_secretary(session, practices=[practice])
    slot = offers.post_slot(
        session, NOW, serving, therapist, start_at=TOMORROW_14, minutes=50, settings=settings
    )
    assert slot.created_by_id == serving.id


def test_refuses_a_modality_the_therapist_does_not_offer(session, practice):
    therapist = make_therapist(session, practice, offers_video=False)
    with pytest.raises(InvalidInput) as err:
        post(session, therapist, modality=Modality.VIDEO)
    assert err.value.field == "modality"


# --- the full flow --------------------------------------------------------------------------------


def test_full_flow_first_answer_wins(session, practice, therapist, settings):
    colleague = make_therapist(session, practice)
    patients = people(session, practice, 8)
    winner = patients[0]
    other_list = make_practice(session)
    from tests.factories import add_to_list

    add_to_list(session, winner, other_list)
    add_to_list(session, winner, None)
    first = post(session, therapist)  # offered to patients 0-3
    second = post(session, colleague, start=TOMORROW_14 + 3 * HOUR)  # 0-3 again (no overlap)
    assert [o.patient_id for o in offers_of(session, second)] == [p.id for p in patients[:4]]

    winner_offer = next(o for o in offers_of(session, first) if o.patient_id == winner.id)
    booking = offers.accept_offer(session, NOW + HOUR, winner_offer, winner.user, settings=settings)

    assert booking.slot_id == first.id and booking.status == BookingStatus.CONFIRMED
    assert first.status == SlotStatus.BOOKED and winner_offer.status == OfferStatus.ACCEPTED
    # Everyone else offered the first slot: taken, and told.
    taken = offers_of(session, first, OfferStatus.TAKEN)
    assert sorted(o.patient_id for o in taken) == sorted(p.id for p in patients[1:4])
    assert all(mails(session, "offer_taken", p.user) == 1 for p in patients[1:4])
    # The winner left every list, kept with the reason.
    entries = session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.patient_id == winner.id)
    ).all()
    assert len(entries) == 3
    assert all(
        e.status == EntryStatus.REMOVED and e.removed_reason == RemovalReason.BOOKED_ELSEWHERE
        for e in entries
    )
    assert winner.status == PatientStatus.BOOKED
    # The winner's offer for the second slot: withdrawn, and the second slot moved on at once.
    withdrawn = offers_of(session, second, OfferStatus.WITHDRAWN)
    assert [o.patient_id for o in withdrawn] == [winner.id]
    assert mails(session, "offer_withdrawn", winner.user) == 1
    pending = offers_of(session, second, OfferStatus.PENDING)
    assert sorted(o.patient_id for o in pending) == sorted(p.id for p in patients[1:5])
    assert second.current_wave == 2
    # Mails: confirmation to the winner, outcome to the practice.
    assert mails(session, "booking_confirmed", winner.user) == 1
    assert mails(session, "practice_outcome_booked", therapist.user) == 1
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {
        "offer.accepted",
        "booking.created",
        "offer.taken",
        "offer.withdrawn",
        "waitlist.left_for_booking",
        "patient.status_changed",
    } <= actions


def test_loser_gets_slot_taken_and_keeps_their_place(session, practice, therapist, settings):
    a, b = people(session, practice, 2)
    slot = post(session, therapist)
    offer_a, offer_b = offers_of(session, slot)
    offers.accept_offer(session, NOW, offer_a, a.user, settings=settings)
    with pytest.raises(SlotTaken):
        offers.accept_offer(session, NOW, offer_b, b.user, settings=settings)
    assert b.status == PatientStatus.ACTIVE
    assert (
        session.scalar(select(WaitlistEntry.status).where(WaitlistEntry.patient_id == b.id))
        == EntryStatus.ACTIVE
    )
    assert session.scalar(select(func.count(Booking.id))) == 1


def test_losing_race_leaves_no_trace(session, practice, therapist, settings):
    """The slot was booked by someone else a moment ago (the offer still says pending)."""
    a, b = people(session, practice, 2)
    slot = post(session, therapist)
    offer_b = offers_of(session, slot)[1]
    session.execute(
        Slot.__table__.update().where(Slot.__table__.c.id == slot.id).values(status="booked")
    )
    session.expire_all()
    before = session.scalar(select(func.count(AuditEvent.id)))
    with pytest.raises(SlotTaken):
        offers.accept_offer(session, NOW, offer_b, b.user, settings=settings)
    assert session.scalar(select(func.count(AuditEvent.id))) == before
    assert (
        offer_b.status == OfferStatus.PENDING
        and session.scalar(select(func.count(Booking.id))) == 0
    )


def test_double_accept_of_the_same_offer(session, practice, therapist, settings):
    (a,) = people(session, practice, 1)
    slot = post(session, therapist)
    offer = offers_of(session, slot)[0]
    offers.accept_offer(session, NOW, offer, a.user, settings=settings)
    with pytest.raises(OfferClosed):
        offers.accept_offer(session, NOW, offer, a.user, settings=settings)
    assert session.scalar(select(func.count(Booking.id))) == 1


def test_only_the_patient_or_a_serving_secretary_may_answer(session, practice, therapist, settings):
    a, b = people(session, practice, 2)
    slot = post(session, therapist)
    offer = offers_of(session, slot)[0]
    with pytest.raises(NotAllowed):
        offers.accept_offer(session, NOW, offer, b.user, settings=settings)
    with pytest.raises(NotAllowed):
        offers.accept_offer(session, NOW, offer, therapist.user, settings=settings)
    secretary = make_secretary(session, practices=[practice])
    booking = offers.accept_offer(session, NOW, offer, secretary, settings=settings)
    assert booking.booked_by_id == secretary.id and offer.responded_by_id == secretary.id


def test_expired_offer_cannot_be_accepted_before_the_sweep(session, practice, therapist, settings):
    (a,) = people(session, practice, 1)
    slot = post(session, therapist)
    offer = offers_of(session, slot)[0]
    with pytest.raises(OfferExpired):
        offers.accept_offer(session, offer.expires_at, offer, a.user, settings=settings)
    assert offer.status == OfferStatus.PENDING and slot.status == SlotStatus.OFFERING


def test_accept_after_the_slot_was_cancelled(session, practice, therapist, settings):
    (a,) = people(session, practice, 1)
    slot = post(session, therapist)
    offer = offers_of(session, slot)[0]
    offers.cancel_slot(session, NOW, therapist.user, slot)
    assert offer.status == OfferStatus.WITHDRAWN and mails(session, "offer_withdrawn", a.user) == 1
    with pytest.raises(OfferClosed):
        offers.accept_offer(session, NOW, offer, a.user, settings=settings)


# --- next waves -----------------------------------------------------------------------------------


def test_decline_sends_the_next_candidate_at_once(session, practice, therapist, settings):
    patients = people(session, practice, 6)
    slot = post(session, therapist)
    first = offers_of(session, slot)[0]
    offers.decline_offer(session, NOW + HOUR, first, patients[0].user, settings=settings)
    assert first.status == OfferStatus.DECLINED
    pending = offers_of(session, slot, OfferStatus.PENDING)
    assert sorted(o.patient_id for o in pending) == [p.id for p in patients[1:5]]
    assert slot.current_wave == 2
    with pytest.raises(OfferClosed):
        offers.decline_offer(session, NOW + HOUR, first, patients[0].user, settings=settings)


def test_expiry_and_sweep_send_the_next_wave(session, practice, therapist, settings):
    patients = people(session, practice, 10)
    slot = post(session, therapist)  # wave 1: patients 0-3 until NOW + 4 h
    later = NOW + 4 * HOUR  # 24 h before the start: the rule is now 4 people for 4 hours
    assert sweep(session, later, settings) > 0
    assert len(offers_of(session, slot, OfferStatus.EXPIRED)) == 4
    pending = offers_of(session, slot, OfferStatus.PENDING)
    assert sorted(o.patient_id for o in pending) == [p.id for p in patients[4:8]]
    assert all(o.wave == 2 and o.expires_at == later + 4 * HOUR for o in pending)
    assert sweep(session, later, settings) == 0  # idempotent


def test_no_candidates_left_marks_unfilled_and_tells_the_practice(
    session, practice, therapist, settings
):
    (a,) = people(session, practice, 1)
    slot = post(session, therapist)
    offers.decline_offer(session, NOW, offers_of(session, slot)[0], a.user, settings=settings)
    assert slot.status == SlotStatus.UNFILLED
    assert mails(session, "practice_outcome_unfilled", therapist.user) == 1
    sweep(session, NOW + HOUR, settings)
    assert mails(session, "practice_outcome_unfilled") == 1


def test_slot_with_nobody_at_all_is_unfilled_at_once(session, practice, therapist):
    slot = post(session, therapist)
    assert slot.status == SlotStatus.UNFILLED and mails(session, "practice_outcome_unfilled") == 1


def test_deadline_passing_marks_unfilled(session, practice, therapist, settings):
    people(session, practice, 1)
    slot = post(session, therapist, mode=OfferMode.MANUAL)
    sweep(session, slot.offer_deadline_at, settings)
    assert slot.status == SlotStatus.UNFILLED
    assert mails(session, "practice_outcome_unfilled", therapist.user) == 1


# --- the practice side ----------------------------------------------------------------------------


def _booked(session, practice, therapist, start=TOMORROW_14):
    patient = people(session, practice, 1)[0]
    slot = post(session, therapist, start=start)
    booking = offers.accept_offer(
        session, NOW, offers_of(session, slot)[0], patient.user, settings_of(session)
    )
    return patient, slot, booking


def test_practice_cancels_a_booked_slot(session, practice, therapist):
    patient, slot, booking = _booked(session, practice, therapist)
    offers.cancel_slot(session, NOW, therapist.user, slot)
    assert slot.status == SlotStatus.CANCELLED and booking.status == BookingStatus.CANCELLED
    assert booking.cancelled_by == "practice" and patient.status == PatientStatus.ACTIVE
    assert (
        session.scalar(select(WaitlistEntry.status).where(WaitlistEntry.patient_id == patient.id))
        == EntryStatus.ACTIVE
    )
    assert mails(session, "booking_cancelled", patient.user) == 1


def test_mark_attended_only_after_the_start(session, practice, therapist):
    _, slot, booking = _booked(session, practice, therapist)
    with pytest.raises(InvalidInput):
        offers.mark_booking(session, NOW, therapist.user, booking, BookingStatus.ATTENDED)
    offers.mark_booking(session, slot.start_at, therapist.user, booking, BookingStatus.NO_SHOW)
    assert booking.status == BookingStatus.NO_SHOW
    offers.mark_booking(session, slot.start_at, therapist.user, booking, "attended")
    assert booking.status == BookingStatus.ATTENDED


def test_other_practice_may_not_touch_the_slot(session, practice, therapist):
    _, slot, booking = _booked(session, practice, therapist)
    stranger = make_therapist(session, make_practice(session))
    with pytest.raises(NotAllowed):
        offers.cancel_slot(session, NOW, stranger.user, slot)
    with pytest.raises(NotAllowed):
        offers.release_booking(session, NOW, stranger.user, booking)


def test_release_as_no_fit_restores_the_lists(session, practice, therapist):
    patient, slot, booking = _booked(session, practice, therapist)
    offers.release_booking(session, slot.end_at, therapist.user, booking)
    assert booking.status == BookingStatus.RELEASED and patient.status == PatientStatus.ACTIVE
    entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.patient_id == patient.id))
    assert entry.status == EntryStatus.ACTIVE and entry.removed_reason is None
    assert mails(session, "booking_released", patient.user) == 1
    with pytest.raises(InvalidInput):
        offers.release_booking(session, slot.end_at, therapist.user, booking)


# --- the patient cancels --------------------------------------------------------------------------


def test_patient_cancels_and_the_slot_is_offered_again(session, practice, therapist, settings):
    start = NOW + 3 * DAY
    patient, slot, booking = _booked(session, practice, therapist, start=start)
    others = people(session, practice, 2)
    new = offers.cancel_booking_by_patient(
        session, NOW + HOUR, patient.user, booking, settings=settings
    )
    assert booking.status == BookingStatus.CANCELLED and booking.cancelled_by == "patient"
    assert slot.status == SlotStatus.CANCELLED and patient.status == PatientStatus.ACTIVE
    assert (
        new.reposted_from_id == slot.id
        and new.start_at == start
        and new.status == SlotStatus.OFFERING
    )
    assert sorted(o.patient_id for o in offers_of(session, new)) == sorted(p.id for p in others)
    assert mails(session, "booking_cancelled_practice", therapist.user) == 1
    assert mails(session, "booking_cancelled", patient.user) == 1


def test_patient_cannot_cancel_inside_the_notice(session, practice, therapist, settings):
    patient, slot, booking = _booked(session, practice, therapist)  # 28 h ahead, notice 24 h
    with pytest.raises(InvalidInput):
        offers.cancel_booking_by_patient(
            session, slot.start_at - 23 * HOUR, patient.user, booking, settings=settings
        )
    assert booking.status == BookingStatus.CONFIRMED


def test_no_repost_when_time_ran_out(session, practice, therapist, settings):
    practice.cancel_notice_hours = 0
    patient, slot, booking = _booked(session, practice, therapist)
    assert (
        offers.cancel_booking_by_patient(
            session, slot.start_at - HOUR, patient.user, booking, settings=settings
        )
        is None
    )
    assert session.scalar(select(func.count(Slot.id)).where(Slot.reposted_from_id == slot.id)) == 0


def test_effective_status_and_token_lookup(session, practice, therapist):
    people(session, practice, 1)
    slot = post(session, therapist, mode=OfferMode.MANUAL)
    from tests.factories import make_offer

    offer = make_offer(session, slot, people(session, practice, 1)[0], token="a" * 32)
    assert offers.get_offer_by_token(session, "a" * 32) == offer
    assert offers.get_offer_by_token(session, "b" * 32) is None
    assert offers.get_offer_by_token(session, "../etc") is None
    assert offers.is_answerable(offer, NOW)
    assert not offers.is_answerable(offer, offer.expires_at)


def test_a_cancelled_manual_slot_is_reposted_in_auto_mode(session, practice, therapist, settings):
    start = NOW + 3 * DAY
    (patient,) = people(session, practice, 1)
    slot = post(session, therapist, start=start, mode=OfferMode.MANUAL)
    (offer,) = offers.send_offers(session, NOW, slot, [patient], therapist.user, settings=settings)
    booking = offers.accept_offer(session, NOW, offer, patient.user, settings=settings)
    waiting = people(session, practice, 1)[0]
    new = offers.cancel_booking_by_patient(
        session, NOW + HOUR, patient.user, booking, settings=settings
    )
    assert new.offer_mode == OfferMode.AUTO
    assert [o.patient_id for o in offers_of(session, new)] == [waiting.id]
