"""Issue 17: an accept burst. The winner closes the other offers in batched statements (the
same mails and audit events as one `close_offer` per offer); a loser writes nothing but the
one conditional UPDATE of the race; a winner whose offer closed meanwhile undoes its flip."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, func, select

from ptmatch import links
from ptmatch.domain import offer_machine, offers
from ptmatch.domain.errors import OfferClosed, SlotTaken
from ptmatch.models import (
    AuditEvent,
    Booking,
    Offer,
    OfferStatus,
    OutboxMessage,
    Patient,
    Role,
    Slot,
    SlotStatus,
)
from tests.conftest import NOW
from tests.factories import (
    add_to_list,
    empty_tables_quickly,
    make_offer,
    make_patient,
    make_practice,
    make_therapist,
    make_user,
)

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _clean_database(engine):
    yield
    empty_tables_quickly(engine)


class Statements:
    """The SQL statements a block sends (on the session's own connection)."""

    def __init__(self, session):
        self.engine = session.get_bind()
        self.seen: list[str] = []

    def _hook(self, _conn, _cursor, statement, _params, _context, _executemany):
        self.seen.append(statement.strip().split(None, 1)[0].upper())

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._hook)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._hook)

    @property
    def writes(self) -> list[str]:
        return [s for s in self.seen if s not in ("SELECT", "WITH")]


def _cast(session, n_live: int):
    """A practice, a therapist, n_live patients with an account (every third English), one
    caller without an e-mail address, one whose offer lapsed unswept, one who declined."""
    practice = make_practice(session)
    therapist = make_therapist(session, practice)
    patients = []
    for i in range(n_live):
        user = make_user(session, Role.PATIENT, locale="en" if i % 3 == 2 else "de")
        patients.append(make_patient(session, user=user))
    phone = make_patient(session, user_id=None)  # a caller on the phone: no account
    lapsed = make_patient(session)
    declined = make_patient(session)
    return practice, therapist, patients, phone, lapsed, declined


def _slot_with_offers(session, therapist, hours, patients, phone, lapsed, declined):
    from tests.factories import make_slot

    slot = make_slot(session, therapist, start_at=NOW + dt.timedelta(hours=hours))
    winner = make_patient(session)
    own = make_offer(session, slot, winner)
    for p in [*patients, phone]:
        make_offer(session, slot, p)
    make_offer(session, slot, lapsed, expires_at=NOW - MINUTE)
    make_offer(session, slot, declined, status=OfferStatus.DECLINED)
    others = list(
        session.scalars(select(Offer.id).where(Offer.slot_id == slot.id, Offer.id != own.id))
    )
    return slot, others


def _rows(session, slot):
    """The mails and audit events about the slot's offers, keyed by patient, ids left out."""
    patient_of = dict(
        session.execute(select(Offer.id, Offer.patient_id).where(Offer.slot_id == slot.id)).all()
    )
    mails = set()
    for m in session.scalars(select(OutboxMessage)):
        kind, _, offer_id = m.dedupe_key.partition(":")
        if offer_id.isdigit() and int(offer_id) in patient_of:
            mails.add(
                (
                    kind,
                    patient_of[int(offer_id)],
                    m.user_id,
                    m.to_addr,
                    m.locale,
                    m.subject,
                    m.body_text,
                    m.body_html,
                    m.status,
                    m.attempts,
                    m.next_attempt_at,
                    m.created_at,
                    m.claimed_at,
                    m.sent_at,
                    m.last_error,
                )
            )
    events = set()
    for e in session.scalars(select(AuditEvent).where(AuditEvent.action.like("offer.%"))):
        details = dict(e.details or {})
        if details.get("offer_id") not in patient_of:
            continue
        assert details.pop("offer_id") is not None and details.pop("slot_id") == slot.id
        events.add(
            (
                e.action,
                e.at,
                e.actor_id,
                e.actor_role,
                e.patient_id,
                e.practice_id,
                e.subject_user_id,
                tuple(sorted(details.items())),
            )
        )
    return mails, events


def test_batched_close_writes_the_same_mails_and_audit_events_as_one_by_one(session):
    practice, therapist, patients, phone, lapsed, declined = _cast(session, 7)
    cast = (patients, phone, lapsed, declined)
    one_by_one, ids_a = _slot_with_offers(session, therapist, 30, *cast)
    batched, ids_b = _slot_with_offers(session, therapist, 50, *cast)
    for offer in session.scalars(select(Offer).where(Offer.id.in_(ids_a))):
        offer_machine.close_offer(
            session,
            NOW,
            offer.id,
            offer.patient_id,
            OfferStatus.TAKEN,
            mail=("offer_taken", f"offer_taken:{offer.id}", links.patient_home()),
            practice_id=practice.id,
            slot_id=one_by_one.id,
            offer_id=offer.id,
        )
    outcome = offer_machine.close_offers(
        session,
        NOW,
        ids_b,
        OfferStatus.TAKEN,
        mail=("offer_taken", lambda i: f"offer_taken:{i}", links.patient_home()),
        practice_id=practice.id,
        slot_id=batched.id,
    )
    session.flush()
    expected_mails, expected_events = _rows(session, one_by_one)
    got_mails, got_events = _rows(session, batched)
    assert len(expected_mails) == 7  # the caller without an address gets none
    assert {m[4] for m in expected_mails} == {"de", "en"}
    assert len(expected_events) == 9  # 8 taken (caller included), 1 expired
    assert got_mails == expected_mails
    assert got_events == expected_events
    assert sorted(outcome.values()) == sorted([OfferStatus.TAKEN] * 8 + [OfferStatus.EXPIRED])
    statuses = dict(
        session.execute(select(Offer.patient_id, Offer.status).where(Offer.id.in_(ids_b))).all()
    )
    assert statuses == dict(
        session.execute(select(Offer.patient_id, Offer.status).where(Offer.id.in_(ids_a))).all()
    )


@pytest.mark.parametrize("n_live", [3, 30])
def test_the_winner_closes_any_number_of_others_in_the_same_statements(
    session, settings, n_live, request
):
    _practice, therapist, patients, phone, lapsed, declined = _cast(session, n_live)
    slot, _ids = _slot_with_offers(session, therapist, 30, patients, phone, lapsed, declined)
    own = session.scalar(select(Offer).where(Offer.slot_id == slot.id).order_by(Offer.id))
    session.flush()
    with Statements(session) as sql:
        offers.accept_offer(session, NOW, own, own.patient.user, settings=settings)
        session.flush()
    counts = request.config.cache_counts = getattr(request.config, "cache_counts", {})
    counts[n_live] = len(sql.seen)
    assert (
        session.scalar(
            select(func.count(Offer.id)).where(
                Offer.slot_id == slot.id, Offer.status == OfferStatus.TAKEN
            )
        )
        == n_live + 1
    )
    assert (
        session.scalar(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "offer_taken")
        )
        == n_live
    )
    if len(counts) == 2:
        assert counts[3] == counts[30], counts  # not one statement per loser
    # The matching columns cost the winner no statement of their own: leaving "active" writes
    # matchable=false in the UPDATE of the patient (34 before the columns, 39 with a full
    # refresh after every flush).
    assert len(sql.seen) <= 35, sql.seen


def test_a_winner_on_the_lists_leaves_the_pool_for_one_statement(session, settings):
    practice, therapist, patients, phone, lapsed, declined = _cast(session, 3)
    slot, _ids = _slot_with_offers(session, therapist, 30, patients, phone, lapsed, declined)
    own = session.scalar(select(Offer).where(Offer.slot_id == slot.id).order_by(Offer.id))
    winner = own.patient
    add_to_list(session, winner, None)
    add_to_list(session, winner, practice)
    session.flush()
    assert winner.matchable and winner.in_pool
    with Statements(session) as sql:
        offers.accept_offer(session, NOW, own, winner.user, settings=settings)
        session.flush()
    assert session.execute(
        select(Patient.matchable, Patient.in_pool).where(Patient.id == winner.id)
    ).one() == (False, False)
    assert not winner.matchable and not winner.in_pool
    # 45 with a full refresh after every flush; the pool's one UPDATE … RETURNING now.
    assert len(sql.seen) <= 36, sql.seen


def test_a_loser_writes_nothing_but_the_one_conditional_update(session, settings):
    _practice, therapist, patients, phone, lapsed, declined = _cast(session, 2)
    slot, _ids = _slot_with_offers(session, therapist, 30, patients, phone, lapsed, declined)
    mine = session.scalar(
        select(Offer).where(Offer.slot_id == slot.id, Offer.patient_id == patients[0].id)
    )
    user = mine.patient.user
    _ = (mine.slot.status, user.role, user.is_enabled)
    # Someone else won a moment ago; this session still believes the slot is offered.
    session.execute(
        Slot.__table__.update().where(Slot.__table__.c.id == slot.id).values(status="booked")
    )
    before = session.scalar(select(func.count(AuditEvent.id)))
    with Statements(session) as sql, pytest.raises(SlotTaken):
        offers.accept_offer(session, NOW, mine, user, settings=settings)
    assert sql.writes == ["UPDATE"], sql.seen
    assert session.scalar(select(func.count(AuditEvent.id))) == before


def test_a_winner_whose_offer_closed_meanwhile_undoes_its_flip(session, settings):
    _practice, therapist, patients, phone, lapsed, declined = _cast(session, 2)
    slot, _ids = _slot_with_offers(session, therapist, 30, patients, phone, lapsed, declined)
    mine = session.scalar(
        select(Offer).where(Offer.slot_id == slot.id, Offer.patient_id == patients[0].id)
    )
    user = mine.patient.user
    _ = mine.slot.status
    # Withdrawn a moment ago by another transaction; this session still says pending.
    session.execute(
        Offer.__table__.update().where(Offer.__table__.c.id == mine.id).values(status="withdrawn")
    )
    with pytest.raises(OfferClosed):
        offers.accept_offer(session, NOW, mine, user, settings=settings)
    session.expire_all()
    slot = session.get(Slot, slot.id)
    assert slot.status == SlotStatus.OFFERING and slot.closed_at is None
    assert session.scalar(select(func.count(Booking.id))) == 0
    assert (
        session.scalar(
            select(func.count(Offer.id)).where(
                Offer.slot_id == slot.id, Offer.status == OfferStatus.PENDING
            )
        )
        == len(patients) + 2
    )  # the winner's own, the others and the caller's; lapsed unswept
