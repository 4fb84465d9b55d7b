"""ptmatch.domain.stats on a hand-built history with known answers (November 2026, Berlin)."""

from __future__ import annotations

import datetime as dt

import pytest

from ptmatch.domain import access, audit, stats
from ptmatch.domain.stats import SMALL, Period, Scope
from ptmatch.models import (
    Booking,
    BookingStatus,
    EntryStatus,
    OfferStatus,
    PatientStatus,
    RemovalReason,
    Role,
    SlotStatus,
)
from tests.conftest import NOW
from tests.factories import (
    add_to_list,
    make_offer,
    make_patient,
    make_practice,
    make_secretary,
    make_slot,
    make_therapist,
    make_user,
)

D = dt.timedelta(days=1)
H = dt.timedelta(hours=1)
NOVEMBER = Period.month(2026, 11)
EVERYTHING = access.STATS_ALL_FIGURES


def _book(session, slot, patient, at, status=BookingStatus.CONFIRMED):
    session.add(Booking(slot_id=slot.id, patient_id=patient.id, status=status, created_at=at))
    session.flush()


@pytest.fixture
def history(session):
    """Six slots of practice X posted in November, one in October, one at practice Y."""
    x, y = make_practice(session), make_practice(session)
    tx, ty = make_therapist(session, x), make_therapist(session, y)
    a = make_patient(session, urgent=True, lists=[x], added_at=NOW - 30 * D)
    b = make_patient(session, lists=[x], added_at=NOW - 10 * D)
    c = make_patient(session, lists=[x], added_at=NOW - 60 * D, status=PatientStatus.PAUSED)
    d = make_patient(session, added_at=NOW - 90 * D)
    add_to_list(
        session,
        d,
        x,
        status=EntryStatus.REMOVED,
        removed_at=NOW - 2 * D,
        removed_reason=RemovalReason.PURGED,
    )

    def slot(posted, start, status, therapist=tx):
        return make_slot(session, therapist, created_at=posted, start_at=start, status=status)

    s1 = slot(NOW - 5 * D, NOW - 2 * D, SlotStatus.BOOKED)
    make_offer(session, s1, a, sent_at=NOW - 5 * D, status=OfferStatus.ACCEPTED)
    make_offer(session, s1, c, sent_at=NOW - 5 * D, status=OfferStatus.DECLINED)
    _book(session, s1, a, NOW - 5 * D + 2 * H, BookingStatus.ATTENDED)
    s2 = slot(NOW - 4 * D, NOW - D, SlotStatus.BOOKED)
    make_offer(session, s2, b, sent_at=NOW - 4 * D, status=OfferStatus.ACCEPTED)
    make_offer(session, s2, a, sent_at=NOW - 4 * D, status=OfferStatus.TAKEN)
    _book(session, s2, b, NOW - 4 * D + 6 * H, BookingStatus.NO_SHOW)
    s3 = slot(NOW - 3 * D, NOW - 2 * H, SlotStatus.UNFILLED)
    # Still "pending" in the table but past its deadline: counted as expired.
    make_offer(session, s3, c, sent_at=NOW - 3 * D, expires_at=NOW - 2 * D)
    # Booked, then cancelled by the practice: a cancelled slot, not a filled one.
    s4 = slot(NOW - 3 * D, NOW + D, SlotStatus.CANCELLED)
    make_offer(session, s4, c, sent_at=NOW - 3 * D, status=OfferStatus.ACCEPTED)
    _book(session, s4, c, NOW - 3 * D + H, BookingStatus.CANCELLED)
    s5 = slot(NOW - D, NOW + 2 * D, SlotStatus.OFFERING)
    make_offer(session, s5, c, sent_at=NOW - D, expires_at=NOW + H)
    slot(NOW - 2 * D, NOW + 3 * D, SlotStatus.CANCELLED)  # cancelled before anyone booked
    old = slot(dt.datetime(2026, 10, 20, 9, tzinfo=dt.UTC), NOW - 20 * D, SlotStatus.BOOKED)
    _book(session, old, b, dt.datetime(2026, 10, 21, 9, tzinfo=dt.UTC))
    slot(NOW - 2 * D, NOW + 4 * D, SlotStatus.UNFILLED, therapist=ty)
    audit.record(session, NOW - 2 * D, "patient.checkin_sent", None, patient_id=a.id)
    audit.record(session, NOW - 2 * D, "patient.checkin_sent", None, patient_id=c.id)
    audit.record(session, NOW - D, "patient.checkin_confirmed", None, patient_id=a.id)
    session.flush()
    return {"x": x, "y": y, "tx": tx, "a": a, "b": b, "c": c}


def test_slot_figures_of_a_practice(session, history):
    got = stats.compute(session, NOW, NOVEMBER, Scope(history["x"].id), EVERYTHING)
    assert got["slots_posted"] == 6
    assert got["slots_filled"] == 2
    assert got["slots_filled_before_start"] == 2
    assert got["slots_filled_before_deadline"] == 2
    assert got["slots_unfilled"] == 1
    assert got["slots_cancelled"] == 2
    assert got["slots_cancelled_after_booking"] == 1
    assert got["slots_open"] == 1
    assert got["fill_rate_before_start"] == pytest.approx(2 / 3, abs=1e-4)
    # posted -> booked: 2 h, 6 h and 1 h (the booking later cancelled still took 1 h)
    assert got["hours_to_booking_median"] == 2.0
    assert got["hours_to_booking_p90"] == 6.0
    assert sum(w["posted"] for w in got["weekly"]) == 6


def test_region_adds_the_other_practice(session, history):
    got = stats.compute(session, NOW, NOVEMBER, Scope(), EVERYTHING)
    assert got["slots_posted"] == 7
    assert got["slots_unfilled"] == 2
    assert got["fill_rate_before_start"] == 0.5


def test_offer_figures(session, history):
    got = stats.compute(session, NOW, NOVEMBER, Scope(history["x"].id), EVERYTHING)
    assert got["offers_sent"] == 7
    assert got["offers_per_booking"] == pytest.approx(7 / 3, abs=0.01)
    assert got["share_offers_accepted"] == pytest.approx(3 / 7, abs=1e-4)
    assert got["share_offers_declined"] == pytest.approx(1 / 7, abs=1e-4)
    assert got["share_offers_expired"] == pytest.approx(1 / 7, abs=1e-4)
    assert got["share_offers_taken"] == pytest.approx(1 / 7, abs=1e-4)
    assert got["share_offers_pending"] == pytest.approx(1 / 7, abs=1e-4)


def test_attendance_and_places(session, history):
    got = stats.compute(session, NOW, NOVEMBER, Scope(history["x"].id), EVERYTHING)
    assert (got["attended"], got["no_show"]) == (1, 1)
    assert got["attendance_rate"] == 0.5
    # s1 and s2; the cancelled booking is no place; the October slot started in November
    assert got["places"] == {"sprechstunde": 3, "group_seat": 0}
    assert got["places_per_year"] == pytest.approx(3 * 365 / 30, abs=0.1)


def test_time_to_first_offer_and_appointment(session, history):
    got = stats.compute(session, NOW, NOVEMBER, Scope(history["x"].id), EVERYTHING)
    # first offers: a after 25 days, b after 6, c after 55
    assert got["patients_first_offer"] == 3
    assert got["days_to_first_offer_median"] == 25.0
    assert got["days_to_first_offer_p90"] == 55.0
    assert got["share_first_offer_within_4_weeks"] == pytest.approx(2 / 3, abs=1e-4)
    # first bookings in November: a (25.1 d), c (57.0 d); b's first was in October
    assert got["patients_first_appointment"] == 2
    assert got["days_to_first_appointment_median"] == 25.1
    assert got["share_first_appointment_within_4_weeks"] == 0.5
    assert got["first_appointment_histogram"] == [0, 0, 1, 0, 1, 0, 0]
    assert got["urgent"]["patients_first_offer"] == 1
    assert got["urgent"]["days_to_first_offer_median"] == 25.0
    assert got["not_urgent"]["patients_first_offer"] == 2


def test_lists_and_checkins(session, history):
    got = stats.compute(session, NOW, NOVEMBER, Scope(history["x"].id), EVERYTHING)
    assert got["entries_active"] == 2  # a and b; c is paused
    assert got["entries_paused"] == 1
    assert got["entries_purged"] == 1
    # waited until now: a 30 days (4-8 weeks), b 10 days (1-2 weeks)
    assert got["waiting_histogram"] == [0, 1, 0, 1, 0, 0, 0]
    assert got["checkins_sent"] == 2
    assert got["checkins_confirmed"] == 1
    assert got["checkins_paused_unanswered"] == 0


def test_an_empty_period(session, history):
    got = stats.compute(session, NOW, Period.month(2026, 1), Scope(), EVERYTHING)
    assert got["slots_posted"] == 0
    assert got["fill_rate_before_start"] is None
    assert got["hours_to_booking_median"] is None
    assert got["offers_per_booking"] is None
    assert got["attendance_rate"] is None
    assert got["patients_first_offer"] == 0
    assert got["share_first_offer_within_4_weeks"] is None
    assert got["places_total"] == 0
    assert got["weekly"] == []
    assert got["entries_active"] == 0


def test_figures_not_allowed_are_not_computed(session, history):
    got = stats.compute(session, NOW, NOVEMBER, Scope(history["x"].id), {"slots"})
    assert "offers_sent" not in got and "urgent" not in got and "entries_active" not in got
    got = stats.compute(session, NOW, NOVEMBER, Scope(), EVERYTHING - {"urgency"})
    assert "patients_first_offer" in got and "urgent" not in got


def test_small_counts_are_suppressed_with_what_rests_on_them(session, history):
    got = stats.suppress_small(
        stats.compute(session, NOW, NOVEMBER, Scope(history["x"].id), EVERYTHING)
    )
    assert got["slots_posted"] == 6
    assert got["slots_filled"] == SMALL
    assert got["fill_rate_before_start"] == SMALL  # 2 of 3 decided slots
    assert got["offers_sent"] == 7
    assert got["share_offers_accepted"] == pytest.approx(3 / 7, abs=1e-4)
    assert got["attendance_rate"] == SMALL
    assert got["urgent"]["patients_first_offer"] == SMALL
    assert got["urgent"]["days_to_first_offer_median"] == SMALL
    assert got["slots_open"] == SMALL
    assert got["slots_posted"] != SMALL and got["places"]["group_seat"] == 0


def test_who_may_see_which_figures(session, history):
    x, y, tx = history["x"], history["y"], history["tx"]
    admin = make_user(session, Role.ADMIN)
    secretary = make_secretary(session, [x])
    ther = tx.user
    assert "urgency" in access.stats_figures(session, admin, None)
    assert "urgency" not in access.stats_figures(session, admin, x.id)
    assert access.stats_figures(session, admin, x.id, tx.id) == access.STATS_SLOT_FIGURES
    assert access.stats_figures(session, ther, x.id) == access.STATS_ALL_FIGURES
    assert access.stats_figures(session, ther, y.id) == frozenset()
    assert access.stats_figures(session, ther, None) == frozenset()
    assert access.stats_figures(session, secretary, x.id) == frozenset()
    assert access.stats_figures(session, history["a"].user, x.id) == frozenset()
    assert access.stats_suppresses_small_counts(session, admin, x.id)
    assert access.stats_suppresses_small_counts(session, admin, None)
    assert not access.stats_suppresses_small_counts(session, ther, x.id)
    assert access.stats_suppresses_small_counts(session, ther, y.id)


def test_periods():
    assert Period.month(2026, 12).previous() == Period.month(2026, 11)
    assert Period.month(2026, 1).previous() == Period.month(2025, 12)
    assert Period.parse_month("2026-11") == NOVEMBER
    assert NOVEMBER.start == dt.datetime(2026, 10, 31, 23, tzinfo=dt.UTC)
    with pytest.raises(ValueError):
        Period.parse_month("2026-13")
    week = Period.days(dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    assert week.previous() == Period.days(dt.date(2026, 11, 9), dt.date(2026, 11, 15))


def test_wait_starts_at_the_ptv11_date_where_there_is_one(session, history):
    # a registered 30 days before, but the PTV 11 form dates from 10 days before the first offer
    history["a"].ptv11_date = (NOW - 15 * D).date()
    session.flush()
    got = stats.compute(session, NOW, NOVEMBER, Scope(history["x"].id), EVERYTHING)
    # from Berlin midnight of that day (23:00 UTC before) to 09:00 ten days later
    assert got["urgent"]["days_to_first_offer_median"] == 10.4


def test_a_ptv11_date_after_the_first_appointment_does_not_start_the_wait(session, history):
    # a's Sprechstunde (slot s1, two days ago) handed out the form, dated that day: the wait
    # for that first offer and booking still runs from registration (30 days before NOW)
    history["a"].ptv11_date = (NOW - 2 * D).date()
    session.flush()
    got = stats.compute(session, NOW, NOVEMBER, Scope(history["x"].id), EVERYTHING)
    assert got["urgent"]["days_to_first_offer_median"] == 25.0
    assert got["urgent"]["days_to_first_appointment_median"] == 25.1
