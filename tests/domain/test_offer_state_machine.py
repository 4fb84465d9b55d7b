"""Property-based: any sequence of register / post / send / accept / decline / expire (sweep) /
cancel / release / patient cancel keeps the invariants of the offer engine:

- at most one active booking per slot, and a booked slot has exactly one;
- a booked patient holds no pending offer and no active list entry;
- every offer of a booked slot is closed;
- no offer outlives its slot (closed slots have no pending offer; no deadline after the slot's).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from ptmatch.domain import offers
from ptmatch.domain.errors import DomainError
from ptmatch.models import (
    Booking,
    BookingStatus,
    EntryStatus,
    Offer,
    OfferMode,
    OfferStatus,
    Patient,
    PatientStatus,
    Slot,
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
)

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
# Start times (UTC) to post at: weekday afternoons and mornings over the next days.
STARTS = [
    dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 24, 13, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC),
]
ACTIVE_BOOKING = (BookingStatus.CONFIRMED, BookingStatus.ATTENDED, BookingStatus.NO_SHOW)


@pytest.fixture(autouse=True)
def _clean_database(engine):
    """The quick cleanup (tests.factories.empty_tables_quickly) instead of TRUNCATE."""
    yield
    empty_tables_quickly(engine)


def _pick(items, index):
    return items[index % len(items)] if items else None


class OfferMachine(RuleBasedStateMachine):
    sessions = None  # set by the test
    app_settings = None  # set by the test

    def __init__(self):
        super().__init__()
        self.s = self.sessions()
        self.now = NOW

    def teardown(self):
        self.s.rollback()
        self.s.close()

    @initialize()
    def world(self):
        self.practice = make_practice(self.s)
        self.therapists = [make_therapist(self.s, self.practice) for _ in range(2)]
        self.secretary = make_secretary(self.s, practices=[self.practice])
        for i in range(4):
            make_patient(
                self.s, lists=[self.practice], pool=i % 2 == 0, added_at=NOW - (50 + i) * DAY
            )

    # --- rules -------------------------------------------------------------------------------

    @rule(pool=st.booleans(), urgent=st.booleans(), days=st.integers(0, 400))
    def register(self, pool, urgent, days):
        make_patient(
            self.s,
            lists=[] if pool else [self.practice],
            pool=pool,
            urgent=urgent,
            added_at=NOW - days * DAY,
        )

    @rule(start=st.integers(0, len(STARTS) - 1), who=st.integers(0, 1), manual=st.booleans())
    def post(self, start, who, manual):
        therapist = self.therapists[who]
        try:
            offers.post_slot(
                self.s,
                self.now,
                therapist.user,
                therapist,
                start_at=STARTS[start],
                minutes=50,
                mode=OfferMode.MANUAL if manual else OfferMode.AUTO,
                settings=self.app_settings,
            )
        except DomainError:
            pass

    @rule(slot=st.integers(0, 99), picks=st.lists(st.integers(0, 99), min_size=1, max_size=3))
    def send(self, slot, picks):
        slot = _pick(self._slots(), slot)
        patients = list(self.s.scalars(select(Patient.id).order_by(Patient.id)))
        if slot is None or not patients:
            return
        try:
            offers.send_offers(
                self.s,
                self.now,
                slot,
                [_pick(patients, i) for i in picks],
                self.therapists[0].user,
                self.app_settings,
            )
        except DomainError:
            pass

    @rule(index=st.integers(0, 99), by_secretary=st.booleans(), open_only=st.booleans())
    def accept(self, index, by_secretary, open_only):
        offer = _pick(self._offers(open_only), index)
        if offer is None:
            return
        actor = self.secretary if by_secretary else offer.patient.user
        try:
            offers.accept_offer(self.s, self.now, offer, actor, self.app_settings)
        except DomainError:
            pass

    @rule(index=st.integers(0, 99), open_only=st.booleans())
    def decline(self, index, open_only):
        offer = _pick(self._offers(open_only), index)
        if offer is None:
            return
        try:
            offers.decline_offer(self.s, self.now, offer, offer.patient.user, self.app_settings)
        except DomainError:
            pass

    @rule(hours=st.sampled_from([1, 3, 5, 13, 25]))
    def expire(self, hours):
        self.now += hours * HOUR
        sweep(self.s, self.now, self.app_settings)

    @rule(index=st.integers(0, 99))
    def cancel(self, index):
        slot = _pick(self._slots(), index)
        if slot is None:
            return
        try:
            offers.cancel_slot(self.s, self.now, self.therapists[0].user, slot)
        except DomainError:
            pass

    @rule(index=st.integers(0, 99))
    def release(self, index):
        booking = _pick(self._bookings(), index)
        if booking is None:
            return
        try:
            offers.release_booking(self.s, self.now, self.therapists[1].user, booking)
        except DomainError:
            pass

    @rule(index=st.integers(0, 99))
    def patient_cancels(self, index):
        booking = _pick(self._bookings(), index)
        if booking is None:
            return
        try:
            offers.cancel_booking_by_patient(
                self.s, self.now, booking.patient.user, booking, self.app_settings
            )
        except DomainError:
            pass

    # --- helpers -------------------------------------------------------------------------------

    def _slots(self):
        return list(self.s.scalars(select(Slot).order_by(Slot.id)))

    def _offers(self, open_only=False):
        query = select(Offer).order_by(Offer.id)
        if open_only:
            query = query.where(Offer.status == OfferStatus.PENDING)
        return list(self.s.scalars(query))

    def _bookings(self):
        return list(self.s.scalars(select(Booking).order_by(Booking.id)))

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def one_active_booking_per_slot(self):
        if not hasattr(self, "practice"):
            return
        rows = self.s.execute(
            select(Booking.slot_id, func.count())
            .where(Booking.status.in_(ACTIVE_BOOKING))
            .group_by(Booking.slot_id)
        ).all()
        assert all(n == 1 for _, n in rows)
        for slot in self.s.scalars(select(Slot).where(Slot.status == SlotStatus.BOOKED)):
            assert (
                self.s.scalar(select(func.count(Booking.id)).where(Booking.slot_id == slot.id)) == 1
            )
        per_patient = self.s.execute(
            select(Booking.patient_id, func.count())
            .where(Booking.status == BookingStatus.CONFIRMED)
            .group_by(Booking.patient_id)
        ).all()
        assert all(n == 1 for _, n in per_patient)

    @invariant()
    def booked_patient_holds_nothing_open(self):
        if not hasattr(self, "practice"):
            return
        booked = select(Patient.id).where(Patient.status == PatientStatus.BOOKED)
        assert (
            self.s.scalar(
                select(func.count(Offer.id)).where(
                    Offer.patient_id.in_(booked),
                    Offer.status == OfferStatus.PENDING,
                    Offer.expires_at > self.now,
                )
            )
            == 0
        )
        assert (
            self.s.scalar(
                select(func.count(WaitlistEntry.id)).where(
                    WaitlistEntry.patient_id.in_(booked), WaitlistEntry.status == EntryStatus.ACTIVE
                )
            )
            == 0
        )

    @invariant()
    def offers_of_closed_slots_are_closed(self):
        if not hasattr(self, "practice"):
            return
        closed = select(Slot.id).where(Slot.status != SlotStatus.OFFERING)
        assert (
            self.s.scalar(
                select(func.count(Offer.id)).where(
                    Offer.slot_id.in_(closed), Offer.status == OfferStatus.PENDING
                )
            )
            == 0
        )
        late = (
            select(func.count(Offer.id))
            .join(Slot, Slot.id == Offer.slot_id)
            .where(Offer.expires_at > Slot.offer_deadline_at)
        )
        assert self.s.scalar(late) == 0


def test_offer_engine_invariants(sessions, settings):
    OfferMachine.sessions = sessions
    OfferMachine.app_settings = settings
    run_state_machine_as_test(
        OfferMachine,
        settings=hypothesis_settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
