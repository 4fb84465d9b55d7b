"""Free slots, offers in waves, first answer wins — exactly once.

Life of a slot: a therapist (or the secretariat for a partner practice) posts it; in auto
mode the first wave of offers goes out in the same transaction, mails included (outbox
rows). The waves, the offers' states, their mails and who may answer are the offer machine
that group seats share (``offer_machine``). Wave size and answer time follow the lead time
(``offer_machine.wave_params``); no offer is
answerable after ``offer_deadline_at`` (start minus the practice's cut-off). Whenever fewer
offers are open than the current wave size — a decline, an expiry, a withdrawal — the slot
is topped up with the next-best candidates ("the next wave"); with nobody left and nothing
open, the slot is UNFILLED and the practice is told.

Accepting is decided by the database, never by Python: one conditional
``UPDATE slots SET status='booked' WHERE id=:id AND status='offering'`` and its row count,
backed by the unique constraint on ``bookings.slot_id`` (an IntegrityError is SlotTaken).
It all happens inside a SAVEPOINT, so a loser leaves no trace and the caller may commit.
Then, in the same transaction: the other open offers of the slot become TAKEN (their
patients are told and keep their places), the winner leaves every waitlist (kept with a
reason, so a release can restore them), the winner's other open slot offers are WITHDRAWN and
those slots move on at once (pending group offers stay: a group seat is an addition).

Expiry is derived on read (``Offer.effective_status``) and re-checked in every conditional
UPDATE (``expires_at > now``): a late sweep never lets a dead offer be accepted.

Locking (PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE): an accept locks its
own slot first (the race), then the offer rows it changes in id order; every other slot it
touches — and everything the sweep touches — is taken with ``FOR UPDATE SKIP LOCKED`` and
skipped when busy (the sweep comes back in 30 s). No lock cycle, no deadlock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from ptmatch import links
from ptmatch.catalog import N_
from ptmatch.config import Settings
from ptmatch.db import settings_of
from ptmatch.domain import access, audit, matching, offer_machine, rooms, waitlist
from ptmatch.domain.clashes import find_clash
from ptmatch.domain.errors import (
    Clash,
    InvalidInput,
    NotAllowed,
    NotFound,
    OfferClosed,
    OfferExpired,
    SlotTaken,
    enum_value,
)
from ptmatch.domain.offer_machine import MSG_CLOSED, MSG_EXPIRED
from ptmatch.domain.practices import can_manage_practice
from ptmatch.domain.tokens import hash_token
from ptmatch.models import (
    Booking,
    BookingStatus,
    CareStage,
    Modality,
    Offer,
    OfferMode,
    OfferStatus,
    Patient,
    PatientStatus,
    Practice,
    Role,
    Slot,
    SlotKind,
    SlotStatus,
    Therapist,
    User,
)
from ptmatch.models.offers import status_at
from ptmatch.notifications import outbox

BERLIN = ZoneInfo("Europe/Berlin")

LIVE_SLOT = (SlotStatus.OFFERING,)  # a slot takes offers (and waves) only while offering
SLOT_MINUTES = (25, 180)
MAX_LEAD = dt.timedelta(days=365)
MANUAL_PICK_LIMIT = 20
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")

MSG_TAKEN = N_(
    "Dieser Termin ist leider schon vergeben. Sie behalten Ihren Platz auf der Warteliste."
)
MSG_CLASH = N_("Überschneidung (inklusive Pufferzeit) mit: %(what)s")

# --- small helpers -----------------------------------------------------------------------------


def _therapist_user(session: Session, slot: Slot) -> User | None:
    therapist = slot.therapist or session.get(Therapist, slot.therapist_id)
    return therapist.user if therapist else None


def can_manage_slot(session: Session, actor: User | None, slot: Slot) -> bool:
    """Therapists of the slot's practice, and secretaries serving it."""
    return can_manage_practice(session, actor, slot.practice_id)


def _require_manager(session: Session, actor: User | None, slot: Slot) -> None:
    if not can_manage_slot(session, actor, slot):
        raise NotAllowed(N_("Sie dürfen diesen Termin nicht bearbeiten."))


# --- posting -------------------------------------------------------------------------------------


def check_therapist_may_post(session: Session, actor: User | None, therapist: Therapist) -> None:
    """Approved, assigned to an active practice, with two-factor login; the actor is that
    therapist or a secretary serving the practice."""
    if actor is None or not actor.is_enabled:
        raise NotAllowed(N_("Sie dürfen für diese Praxis keine Termine anbieten."))
    if actor.role == Role.THERAPIST:
        if actor.id != therapist.user_id:
            raise NotAllowed(N_("Sie dürfen nur eigene Termine anbieten."))
    elif actor.role == Role.SECRETARY:
        if therapist.practice_id not in access.served_practice_ids(session, actor):
            raise NotAllowed(N_("Diese Praxis betreut Ihr Sekretariat nicht."))
    else:
        raise NotAllowed(N_("Sie dürfen für diese Praxis keine Termine anbieten."))
    practice = therapist.practice
    if not therapist.is_approved or practice is None or not practice.is_active:
        raise NotAllowed(N_("Dieser Zugang ist noch nicht freigeschaltet."))
    user = therapist.user
    if user is None or not user.is_enabled or not user.has_totp:
        raise NotAllowed(N_("Ohne Zwei-Faktor-Anmeldung können keine Termine angeboten werden."))


def post_slot(
    session: Session,
    now: dt.datetime,
    actor: User | None,
    therapist: Therapist,
    *,
    start_at: dt.datetime,
    minutes: int,
    kind=SlotKind.SPRECHSTUNDE,
    modality=Modality.IN_PERSON,
    mode=OfferMode.AUTO,
    settings: Settings,
    reposted_from: Slot | None = None,
    room_id: int | None = None,
) -> Slot:
    """Post a free slot. Auto mode sends the first wave in this same transaction.

    Refused: a time in the past or too close to offer it (start minus the practice's
    cut-off), a clash with the therapist's calendar including buffers (Clash names the
    appointment), no free room of the practice for an in-person slot (Clash names the room
    and who holds it, ``rooms.pick_room``), a modality the therapist does not offer, an
    unapproved therapist or one without two-factor login. `room_id` names the room; without
    it the therapist's room or the first free one is taken (``slot.room`` says which).
    """
    check_therapist_may_post(session, actor, therapist)
    kind = enum_value(SlotKind, kind, "kind")
    modality = enum_value(Modality, modality, "modality")
    mode = enum_value(OfferMode, mode, "mode")
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int)
        or not SLOT_MINUTES[0] <= minutes <= SLOT_MINUTES[1]
    ):
        raise InvalidInput(N_("Erlaubt sind 25 bis 180 Minuten."), "minutes")
    if start_at is None or start_at.tzinfo is None:
        raise InvalidInput(N_("Bitte Datum und Uhrzeit angeben."), "start_time")
    if start_at <= now:
        raise InvalidInput(N_("Der Termin liegt in der Vergangenheit."), "start_time")
    if start_at > now + MAX_LEAD:
        raise InvalidInput(
            N_("Termine können höchstens ein Jahr im Voraus angeboten werden."), "start_time"
        )
    practice = therapist.practice
    deadline = start_at - dt.timedelta(minutes=practice.offer_cutoff_minutes or 0)
    if deadline <= now:
        raise InvalidInput(
            N_("Zu kurzfristig: bis zum Beginn bleibt keine Zeit mehr für Angebote."), "start_time"
        )
    if (modality == Modality.VIDEO and not therapist.offers_video) or (
        modality == Modality.IN_PERSON and not therapist.offers_in_person
    ):
        raise InvalidInput(N_("Diese Form bieten Sie laut Profil nicht an."), "modality")
    what = find_clash(
        session, therapist, start_at, minutes, modality, weekly=kind == SlotKind.THERAPY_PLACE
    )
    if what is not None:
        raise Clash(MSG_CLASH, "start_time", what=what)
    room = rooms.pick_room(
        session,
        therapist,
        start_at,
        minutes,
        modality,
        room_id=room_id,
        weekly=kind == SlotKind.THERAPY_PLACE,
    )
    size, ttl = offer_machine.wave_params(practice, start_at, now, settings)
    slot = Slot(
        practice_id=practice.id,
        therapist_id=therapist.id,
        start_at=start_at,
        minutes=minutes,
        kind=kind,
        modality=modality,
        status=SlotStatus.OFFERING,
        offer_mode=mode,
        wave_size=size,
        offer_ttl_minutes=ttl,
        offer_deadline_at=deadline,
        current_wave=0,
        created_by_id=actor.id,
        created_at=now,
        reposted_from_id=reposted_from.id if reposted_from is not None else None,
        room_id=room.id if room is not None else None,
    )
    session.add(slot)
    session.flush()
    audit.record(
        session,
        now,
        "slot.posted",
        actor,
        practice_id=practice.id,
        slot_id=slot.id,
        kind=str(kind),
        modality=str(modality),
        mode=str(mode),
        reposted_from=slot.reposted_from_id,
        room_id=slot.room_id,
    )
    if mode == OfferMode.AUTO:
        send_next_wave(session, now, slot, settings)
    return slot


# --- sending offers ----------------------------------------------------------------------------


def _offer_mail(slot: Slot) -> offer_machine.OfferMail:
    return offer_machine.OfferMail(
        "offer", links.offer, lambda offer: f"offer:{offer.id}", slot.start_at
    )


def _write_offers(
    session: Session,
    now: dt.datetime,
    slot: Slot,
    candidates,
    ttl: int,
    actor: User | None,
    settings: Settings,
) -> list[Offer]:
    expires = offer_machine.offer_expiry(now, ttl, slot.offer_deadline_at)
    phone_expires = offer_machine.offer_expiry(
        now, ttl * settings.PHONE_ANSWER_FACTOR, slot.offer_deadline_at
    )
    return offer_machine.write_offers(
        session,
        now,
        slot,
        candidates,
        expires=expires,
        phone_expires=phone_expires,
        mail=_offer_mail(slot),
        actor=actor,
    )


def send_next_wave(session: Session, now: dt.datetime, slot: Slot, settings: Settings) -> int:
    """Auto mode: top the slot up to the current wave size with the best candidates left.

    Returns the number of offers sent. No candidate left and no offer open → UNFILLED.
    Skips (returns 0) when another transaction is working on the slot right now.
    """
    if slot.offer_mode != OfferMode.AUTO or slot.status != SlotStatus.OFFERING:
        return 0
    if not offer_machine.lock_target(session, slot) or slot.status != SlotStatus.OFFERING:
        return 0
    if now >= slot.offer_deadline_at:
        close_unfilled(session, now, slot)
        return 0
    size, ttl = offer_machine.wave_params(slot.practice, slot.start_at, now, settings)
    pending = offer_machine.live_pending(session, now, Offer.slot_id == slot.id)
    need = size - pending
    if need <= 0:
        return 0
    candidates = matching.rank_candidates(session, slot, now, limit=need)
    if not candidates:
        if pending == 0:
            close_unfilled(session, now, slot)
        return 0
    if not offer_machine.claim_wave(session, slot, size, ttl, live=LIVE_SLOT):
        return 0
    offers = _write_offers(session, now, slot, candidates, ttl, None, settings)
    audit.record(
        session,
        now,
        "slot.wave_sent",
        None,
        practice_id=slot.practice_id,
        slot_id=slot.id,
        wave=slot.current_wave,
        offers=len(offers),
    )
    return len(offers)


def move_on(session: Session, now: dt.datetime, slot_ids, settings: Settings) -> int:
    """Send the next waves of these slots, each in its own savepoint (``in_savepoint``)."""
    sent = 0
    for slot_id in sorted(set(slot_ids)):
        slot = session.get(Slot, slot_id)
        if slot is not None:
            sent += offer_machine.in_savepoint(
                session, slot, lambda slot=slot: send_next_wave(session, now, slot, settings)
            )
    return sent


def withdraw_patient_offers(
    session: Session,
    now: dt.datetime,
    patient: Patient,
    *,
    reason: str,
    actor: User | None = None,
    settings: Settings,
) -> int:
    """Withdraw every pending offer of a patient who stops looking (pause, check-in silence,
    erasure): one audit event per offer, and those slots move on to their next wave at once.
    The caller sets the patient's new status first, so the next waves pass them by."""
    pending = session.scalars(
        select(Offer).where(Offer.patient_id == patient.id, Offer.status == OfferStatus.PENDING)
    ).all()
    moved: set[int] = set()
    for offer in pending:
        if offer_machine.set_offer_status(session, offer.id, OfferStatus.WITHDRAWN, now):
            audit.record(
                session,
                now,
                "offer.withdrawn",
                actor,
                patient_id=patient.id,
                offer_id=offer.id,
                slot_id=offer.slot_id,
                group_id=offer.group_id,
                reason=reason,
            )
            if offer.slot_id is not None:
                moved.add(offer.slot_id)
    move_on(session, now, moved, settings)
    return len(pending)


def send_offers(
    session: Session, now: dt.datetime, slot: Slot, patients, actor: User | None, settings: Settings
) -> list[Offer]:
    """Manual mode: offer the slot to hand-picked patients (re-checked against every hard filter).

    `patients`: Patient objects or ids. Those no longer eligible are skipped; none eligible
    is an error.
    """
    _require_manager(session, actor, slot)
    ids = {p if isinstance(p, int) else p.id for p in patients}
    if not ids:
        raise InvalidInput(N_("Bitte mindestens eine Person auswählen."), "patients")
    if len(ids) > MANUAL_PICK_LIMIT:
        raise InvalidInput(N_("Bitte höchstens 20 Personen auf einmal auswählen."), "patients")
    if slot.status != SlotStatus.OFFERING:
        raise OfferClosed(N_("Dieser Termin wird nicht mehr angeboten."))
    if now >= slot.offer_deadline_at:
        raise OfferExpired(N_("Für diesen Termin können keine Angebote mehr verschickt werden."))
    if not offer_machine.lock_target(session, slot) or slot.status != SlotStatus.OFFERING:
        raise OfferClosed(
            N_("Dieser Termin wird gerade bearbeitet. Bitte versuchen Sie es gleich noch einmal.")
        )
    candidates = matching.rank_candidates(session, slot, now, only_ids=ids)
    if not candidates:
        raise InvalidInput(
            N_("Keine der ausgewählten Personen kommt für diesen Termin (noch) in Frage."),
            "patients",
        )
    _size, ttl = offer_machine.wave_params(slot.practice, slot.start_at, now, settings)
    if not offer_machine.claim_wave(session, slot, max(slot.wave_size, 1), ttl, live=LIVE_SLOT):
        raise OfferClosed(
            N_("Dieser Termin wird gerade bearbeitet. Bitte versuchen Sie es gleich noch einmal.")
        )
    offers = _write_offers(session, now, slot, candidates, ttl, actor, settings)
    audit.record(
        session,
        now,
        "slot.wave_sent",
        actor,
        practice_id=slot.practice_id,
        slot_id=slot.id,
        wave=slot.current_wave,
        offers=len(offers),
        manual=True,
    )
    return offers


# --- answering ------------------------------------------------------------------------------------


def _slot_of(session: Session, offer: Offer) -> Slot:
    if offer.slot_id is None:
        raise OfferClosed(N_("Gruppenangebote werden auf der Seite der Gruppe beantwortet."))
    return offer.slot or session.get(Slot, offer.slot_id)


def check_answerable(offer: Offer, slot: Slot, now: dt.datetime) -> None:
    """Raise the typed error that says why this offer cannot be answered now (if it cannot)."""
    problem = answer_problem(offer.effective_status(now), slot.status, slot.offer_deadline_at, now)
    if problem is not None:
        raise problem


def answer_problem(
    status: OfferStatus, slot_status: SlotStatus, offer_deadline_at: dt.datetime, now: dt.datetime
) -> SlotTaken | OfferExpired | OfferClosed | None:
    """Why an offer in `status` (effective at `now`) of a slot in `slot_status` cannot be
    answered now, as the error to raise; None when it can."""
    if status == OfferStatus.TAKEN or (
        status == OfferStatus.PENDING and slot_status == SlotStatus.BOOKED
    ):
        return SlotTaken(MSG_TAKEN)
    if status == OfferStatus.EXPIRED:
        return OfferExpired(MSG_EXPIRED)
    if status != OfferStatus.PENDING or slot_status == SlotStatus.CANCELLED:
        return OfferClosed(MSG_CLOSED)
    if slot_status != SlotStatus.OFFERING or now >= offer_deadline_at:
        return OfferExpired(MSG_EXPIRED)
    return None


def is_answerable(offer: Offer, now: dt.datetime) -> bool:
    if offer.slot_id is None:
        return False
    try:
        check_answerable(offer, offer.slot, now)
    except (SlotTaken, OfferExpired, OfferClosed):
        return False
    return True


def accept_offer(
    session: Session, now: dt.datetime, offer: Offer, actor: User | None, settings: Settings
) -> Booking:
    """First answer wins: book the slot for this offer's patient, or raise SlotTaken /
    OfferExpired / OfferClosed leaving the transaction exactly as it was.

    A loser's whole write is the one conditional UPDATE of the race, which touches no row
    (on PostgreSQL it waits for the winner's commit, then finds the slot booked). Only the
    winner opens a savepoint for the rest, and undoes its flip should the rest fail."""
    patient = session.get(Patient, offer.patient_id)
    offer_machine.require_answerer(session, now, actor, patient)
    slot = _slot_of(session, offer)
    check_answerable(offer, slot, now)
    # 1. The race: exactly one transaction flips the slot.
    closed_before = slot.closed_at
    won = session.execute(
        update(Slot)
        .where(Slot.id == slot.id, Slot.status == SlotStatus.OFFERING, Slot.offer_deadline_at > now)
        .values(status=SlotStatus.BOOKED, closed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        session.expire(offer)
        session.expire(slot)
        raise SlotTaken(MSG_TAKEN)
    try:
        with session.begin_nested():
            booking, moved = _book(session, now, offer, slot, patient, actor)
    except (IntegrityError, SlotTaken, OfferExpired, OfferClosed) as exc:
        # Undo the flip (this transaction still holds the slot's row lock).
        session.execute(
            update(Slot)
            .where(Slot.id == slot.id)
            .values(status=SlotStatus.OFFERING, closed_at=closed_before)
            .execution_options(synchronize_session=False)
        )
        session.expire(offer)
        session.expire(slot)
        if isinstance(exc, IntegrityError):
            raise SlotTaken(MSG_TAKEN) from exc
        raise
    move_on(session, now, moved, settings)
    return booking


def _book(
    session: Session, now: dt.datetime, offer: Offer, slot: Slot, patient: Patient, actor: User
) -> tuple[Booking, set[int]]:
    """Everything after the won race (the slot is flipped to BOOKED by the caller)."""
    others = list(
        session.scalars(
            select(Offer.id).where(
                Offer.slot_id == slot.id, Offer.id != offer.id, Offer.status == OfferStatus.PENDING
            )
        )
    )
    # Only other *slot* offers: a group seat is an addition to individual therapy, so a
    # pending group offer stays open when the patient books an individual slot.
    elsewhere = list(
        session.scalars(
            select(Offer).where(
                Offer.patient_id == patient.id,
                Offer.id != offer.id,
                Offer.slot_id.is_not(None),
                Offer.status == OfferStatus.PENDING,
            )
        )
    )
    offer_machine.lock_offers(session, {offer.id} | set(others) | {o.id for o in elsewhere})
    # 2. The offer itself must still be open (a withdrawal may have beaten us to it).
    if not offer_machine.set_offer_status(
        session, offer.id, OfferStatus.ACCEPTED, now, live=True, actor=actor
    ):
        session.refresh(offer)
        raise (
            OfferExpired(MSG_EXPIRED)
            if offer.effective_status(now) == OfferStatus.EXPIRED
            else OfferClosed(MSG_CLOSED)
        )
    # 3. The booking; the unique constraint on slot_id backs the UPDATE above.
    booking = Booking(
        slot_id=slot.id,
        patient_id=patient.id,
        offer_id=offer.id,
        status=BookingStatus.CONFIRMED,
        created_at=now,
        booked_by_id=actor.id,
        cancelled_by="",
    )
    session.add(booking)
    session.flush()
    session.refresh(slot)
    audit.record(
        session,
        now,
        "offer.accepted",
        actor,
        patient_id=patient.id,
        practice_id=slot.practice_id,
        slot_id=slot.id,
        offer_id=offer.id,
    )
    audit.record(
        session,
        now,
        "booking.created",
        actor,
        patient_id=patient.id,
        practice_id=slot.practice_id,
        slot_id=slot.id,
        booking_id=booking.id,
    )
    # 4. Everyone else who was offered this slot: taken (told, keeps their place), in
    #    batched statements however many they are.
    offer_machine.close_offers(
        session,
        now,
        others,
        OfferStatus.TAKEN,
        mail=("offer_taken", lambda offer_id: f"offer_taken:{offer_id}", links.patient_home()),
        practice_id=slot.practice_id,
        slot_id=slot.id,
    )
    # 5. The winner's other open offers: withdrawn, so those slots move on.
    moved: set[int] = set()
    for other in elsewhere:
        closed = offer_machine.close_offer(
            session,
            now,
            other.id,
            patient.id,
            OfferStatus.WITHDRAWN,
            mail=("offer_withdrawn", f"offer_withdrawn:{other.id}", links.patient_home()),
            reason="booked_elsewhere",
            offer_id=other.id,
            slot_id=other.slot_id,
            group_id=other.group_id,
        )
        if closed is not None and other.slot_id is not None:
            moved.add(other.slot_id)
    # 6. The patient is booked and leaves every list (kept with a reason, for a release).
    previous = patient.status
    patient.status = PatientStatus.BOOKED
    patient.status_changed_at = now
    session.flush()
    audit.record(
        session,
        now,
        "patient.status_changed",
        actor,
        patient_id=patient.id,
        previous=str(previous),
        status=str(PatientStatus.BOOKED),
    )
    waitlist.leave_all_for_booking(session, now, patient)
    offer_machine.mail_patient(
        session,
        now,
        patient,
        "booking_confirmed",
        f"booking_confirmed:{booking.id}",
        links.booking(booking.id),
        when=slot.start_at,
    )
    notify_outcome(session, now, slot)
    session.refresh(offer)
    return booking, moved


def pass_on_unreached(
    session: Session, now: dt.datetime, offer: Offer, actor: User | None, settings: Settings
) -> bool:
    """The secretariat could not reach a phone-only patient: the offer is withdrawn (they keep
    their place) and the slot moves on to its next candidate at once. True if it was open."""
    slot = _slot_of(session, offer)
    withdrawn = offer_machine.withdraw_unreached(session, now, offer, slot, actor)
    move_on(session, now, {slot.id}, settings)
    return withdrawn


def decline_offer(
    session: Session, now: dt.datetime, offer: Offer, actor: User | None, settings: Settings
) -> Offer:
    """Say no: the place in the wave goes to the next candidate at once (auto mode)."""
    patient = session.get(Patient, offer.patient_id)
    offer_machine.require_answerer(session, now, actor, patient)
    slot = _slot_of(session, offer)
    check_answerable(offer, slot, now)
    if not offer_machine.set_offer_status(
        session, offer.id, OfferStatus.DECLINED, now, live=True, actor=actor
    ):
        session.refresh(offer)
        check_answerable(offer, slot, now)
        raise OfferClosed(MSG_CLOSED)
    session.refresh(offer)
    audit.record(
        session,
        now,
        "offer.declined",
        actor,
        patient_id=patient.id,
        practice_id=slot.practice_id,
        slot_id=slot.id,
        offer_id=offer.id,
    )
    move_on(session, now, [slot.id], settings)
    return offer


# --- outcomes -------------------------------------------------------------------------------------


def notify_outcome(session: Session, now: dt.datetime, slot: Slot) -> bool:
    """Tell the practice (the slot's therapist) once that the slot was booked or stayed empty."""
    if slot.status not in (SlotStatus.BOOKED, SlotStatus.UNFILLED):
        return False
    claimed = session.execute(
        update(Slot)
        .where(Slot.id == slot.id, Slot.outcome_notified_at.is_(None))
        .values(outcome_notified_at=now)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if claimed != 1:
        return False
    user = _therapist_user(session, slot)
    if user is not None:
        kind = (
            "practice_outcome_booked"
            if slot.status == SlotStatus.BOOKED
            else "practice_outcome_unfilled"
        )
        outbox.enqueue(
            session,
            now,
            kind=kind,
            dedupe_key=f"slot_outcome:{slot.id}",
            link_path=links.slot(slot.id),
            to_user=user,
            when=slot.start_at,
        )
    return True


def close_unfilled(session: Session, now: dt.datetime, slot: Slot) -> bool:
    """OFFERING → UNFILLED (time ran out or nobody is left); open offers die; the practice is
    told."""
    changed = session.execute(
        update(Slot)
        .where(Slot.id == slot.id, Slot.status == SlotStatus.OFFERING)
        .values(status=SlotStatus.UNFILLED, closed_at=now)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if changed != 1:
        return False
    for offer_id, patient_id in session.execute(
        select(Offer.id, Offer.patient_id).where(
            Offer.slot_id == slot.id, Offer.status == OfferStatus.PENDING
        )
    ).all():
        if offer_machine.set_offer_status(session, offer_id, OfferStatus.EXPIRED, now):
            audit.record(
                session,
                now,
                "offer.expired",
                None,
                patient_id=patient_id,
                practice_id=slot.practice_id,
                slot_id=slot.id,
                offer_id=offer_id,
            )
    audit.record(session, now, "slot.unfilled", None, practice_id=slot.practice_id, slot_id=slot.id)
    notify_outcome(session, now, slot)
    return True


# --- the practice side ---------------------------------------------------------------------------


def _restore_patient(
    session: Session, now: dt.datetime, patient: Patient, actor: User | None
) -> None:
    """After a booking ends without treatment: the patient waits again, on the lists they had."""
    if patient.status == PatientStatus.BOOKED:
        patient.status = PatientStatus.ACTIVE
        patient.status_changed_at = now
        session.flush()
        audit.record(
            session,
            now,
            "patient.status_changed",
            actor,
            patient_id=patient.id,
            previous=str(PatientStatus.BOOKED),
            status=str(PatientStatus.ACTIVE),
        )
    waitlist.restore_after_release(session, now, patient)


def get_booking(session: Session, slot: Slot) -> Booking | None:
    return session.scalar(select(Booking).where(Booking.slot_id == slot.id))


def cancel_slot(session: Session, now: dt.datetime, actor: User | None, slot: Slot) -> Slot:
    """The practice takes a slot back: open offers are withdrawn (patients told); a booked
    future slot is cancelled for its patient, who gets their lists back."""
    _require_manager(session, actor, slot)
    if slot.status == SlotStatus.OFFERING:
        changed = session.execute(
            update(Slot)
            .where(Slot.id == slot.id, Slot.status == SlotStatus.OFFERING)
            .values(status=SlotStatus.CANCELLED, closed_at=now)
            .execution_options(synchronize_session="fetch")
        ).rowcount
        if changed != 1:
            session.refresh(slot)
            raise OfferClosed(
                N_("Der Termin hat sich gerade geändert. Bitte laden Sie die Seite neu.")
            )
        for offer in list(
            session.scalars(
                select(Offer)
                .where(Offer.slot_id == slot.id, Offer.status == OfferStatus.PENDING)
                .order_by(Offer.id)
            )
        ):
            offer_machine.close_offer(
                session,
                now,
                offer.id,
                offer.patient_id,
                OfferStatus.WITHDRAWN,
                actor=actor,
                mail=("offer_withdrawn", f"offer_withdrawn:{offer.id}", links.patient_home()),
                reason="slot_cancelled",
                practice_id=slot.practice_id,
                slot_id=slot.id,
                offer_id=offer.id,
            )
        audit.record(
            session, now, "slot.cancelled", actor, practice_id=slot.practice_id, slot_id=slot.id
        )
        return slot
    booking = get_booking(session, slot)
    if (
        slot.status == SlotStatus.BOOKED
        and booking is not None
        and booking.status == BookingStatus.CONFIRMED
        and slot.start_at > now
    ):
        booking.status = BookingStatus.CANCELLED
        booking.cancelled_by = "practice"
        booking.changed_at = now
        slot.status = SlotStatus.CANCELLED
        slot.closed_at = now
        session.flush()
        patient = session.get(Patient, booking.patient_id)
        audit.record(
            session,
            now,
            "booking.cancelled",
            actor,
            patient_id=patient.id,
            practice_id=slot.practice_id,
            slot_id=slot.id,
            booking_id=booking.id,
            by="practice",
        )
        audit.record(
            session, now, "slot.cancelled", actor, practice_id=slot.practice_id, slot_id=slot.id
        )
        _restore_patient(session, now, patient, actor)
        offer_machine.mail_patient(
            session,
            now,
            patient,
            "booking_cancelled",
            f"booking_cancelled:{booking.id}",
            links.booking(booking.id),
            when=slot.start_at,
        )
        return slot
    raise InvalidInput(N_("Dieser Termin kann nicht mehr abgesagt werden."))


def mark_booking(
    session: Session, now: dt.datetime, actor: User | None, booking: Booking, status
) -> Booking:
    """After the appointment: attended or no-show (a mistake can be corrected)."""
    status = enum_value(BookingStatus, status, "status")
    slot = booking.slot or session.get(Slot, booking.slot_id)
    _require_manager(session, actor, slot)
    if status not in (BookingStatus.ATTENDED, BookingStatus.NO_SHOW):
        raise InvalidInput(N_("Bitte „erschienen“ oder „nicht erschienen“ wählen."), "status")
    if booking.status not in (
        BookingStatus.CONFIRMED,
        BookingStatus.ATTENDED,
        BookingStatus.NO_SHOW,
    ):
        raise InvalidInput(N_("Diese Buchung ist abgeschlossen."))
    if now < slot.start_at:
        raise InvalidInput(N_("Das geht erst nach Beginn des Termins."))
    previous = booking.status
    booking.status = status
    booking.changed_at = now
    session.flush()
    audit.record(
        session,
        now,
        "booking.marked",
        actor,
        patient_id=booking.patient_id,
        practice_id=slot.practice_id,
        slot_id=slot.id,
        booking_id=booking.id,
        previous=str(previous),
        status=str(status),
    )
    if status == BookingStatus.NO_SHOW and previous != BookingStatus.NO_SHOW:
        apply_no_show_policy(session, now, session.get(Patient, booking.patient_id))
    if status == BookingStatus.ATTENDED and slot.kind == SlotKind.SPRECHSTUNDE:
        move_on_after_sprechstunde(
            session, now, actor, session.get(Patient, booking.patient_id), slot
        )
    return booking


def no_show_count(session: Session, patient: Patient) -> int:
    return (
        session.scalar(
            select(func.count(Booking.id)).where(
                Booking.patient_id == patient.id, Booking.status == BookingStatus.NO_SHOW
            )
        )
        or 0
    )


def apply_no_show_policy(session: Session, now: dt.datetime, patient: Patient) -> bool:
    """The configured no-show policy (``NO_SHOW_PAUSE_AFTER``): after that many appointments
    not attended, the search pauses (until the patient reactivates it), their open offers are
    withdrawn, a mail says why, and it is audited. True if it paused them."""
    settings = settings_of(session)
    limit = settings.NO_SHOW_PAUSE_AFTER
    count = no_show_count(session, patient)
    if not limit or count < limit or patient.status == PatientStatus.DELETED:
        return False
    if patient.status == PatientStatus.PAUSED:
        return False
    previous = patient.status
    patient.status = PatientStatus.PAUSED
    patient.paused_until = None
    patient.status_changed_at = now
    session.flush()
    withdrawn = withdraw_patient_offers(
        session, now, patient, reason="no_show_policy", settings=settings
    )
    audit.record(
        session,
        now,
        "patient.paused_no_show",
        None,
        patient_id=patient.id,
        previous=str(previous),
        no_shows=count,
        limit=limit,
        offers_withdrawn=withdrawn,
    )
    offer_machine.mail_patient(
        session,
        now,
        patient,
        "paused_no_show",
        f"paused_no_show:{patient.id}:{count}",
        links.patient_home(),
    )
    return True


def move_on_after_sprechstunde(
    session: Session, now: dt.datetime, actor: User | None, patient: Patient, slot: Slot
) -> bool:
    """After an attended Sprechstunde the patient looks for a therapy place: their stage moves
    on (the PTV 11 is handed out there, so its date is the Sprechstunde's day unless one was
    entered), they wait again on the lists they had, and a mail says so. True if it moved."""
    if patient.care_stage not in (CareStage.SPRECHSTUNDE, CareStage.ANY):
        return False
    previous = patient.care_stage
    patient.care_stage = CareStage.THERAPY
    if patient.ptv11_date is None:
        patient.ptv11_date = slot.start_at.astimezone(BERLIN).date()
    session.flush()
    audit.record(
        session,
        now,
        "patient.stage_changed",
        actor,
        patient_id=patient.id,
        previous=str(previous),
        stage=str(CareStage.THERAPY),
        slot_id=slot.id,
    )
    _restore_patient(session, now, patient, actor)
    offer_machine.mail_patient(
        session,
        now,
        patient,
        "stage_therapy",
        f"stage_therapy:{patient.id}:{slot.id}",
        links.patient_home(),
    )
    return True


def release_booking(
    session: Session, now: dt.datetime, actor: User | None, booking: Booking
) -> Booking:
    """ "No fit": the practice lets the patient go. They wait again and get their lists back."""
    slot = booking.slot or session.get(Slot, booking.slot_id)
    _require_manager(session, actor, slot)
    if booking.status not in (BookingStatus.CONFIRMED, BookingStatus.ATTENDED):
        raise InvalidInput(N_("Diese Buchung kann nicht mehr freigegeben werden."))
    previous = booking.status
    booking.status = BookingStatus.RELEASED
    booking.changed_at = now
    session.flush()
    patient = session.get(Patient, booking.patient_id)
    audit.record(
        session,
        now,
        "booking.released",
        actor,
        patient_id=patient.id,
        practice_id=slot.practice_id,
        slot_id=slot.id,
        booking_id=booking.id,
        previous=str(previous),
    )
    _restore_patient(session, now, patient, actor)
    offer_machine.mail_patient(
        session,
        now,
        patient,
        "booking_released",
        f"booking_released:{booking.id}",
        links.patient_home(),
    )
    if slot.kind == SlotKind.THERAPY_PLACE:
        repost_weekly(session, now, slot, settings_of(session))
    return booking


def next_weekly_start(slot: Slot, now: dt.datetime) -> dt.datetime:
    """The first occurrence of a weekly slot (same Berlin wall-clock time, so across DST too)
    that can still be offered: its offer deadline (start minus the practice's cut-off) lies
    ahead."""
    cutoff = dt.timedelta(minutes=slot.practice.offer_cutoff_minutes or 0)
    local = slot.start_at.astimezone(BERLIN)
    week = 0
    while True:
        day = local.date() + dt.timedelta(weeks=week)
        start = dt.datetime.combine(day, local.time(), tzinfo=BERLIN).astimezone(dt.UTC)
        if start - cutoff > now:
            return start
        week += 1


def repost_weekly(session: Session, now: dt.datetime, slot: Slot, settings: Settings) -> Slot:
    """A therapy place released as "no fit" is offered again for the same weekly time, from
    its next occurrence on (a new slot pointing back: who had it is not offered it again)."""
    start = next_weekly_start(slot, now)
    cutoff = dt.timedelta(minutes=slot.practice.offer_cutoff_minutes or 0)
    return repost(session, now, slot, settings, start_at=start, deadline=start - cutoff)


# --- the patient side -----------------------------------------------------------------------------


def can_cancel_booking(booking: Booking, now: dt.datetime) -> bool:
    """Within the practice's notice period (cancel_notice_hours before the start)."""
    slot = booking.slot
    if booking.status != BookingStatus.CONFIRMED or slot is None:
        return False
    notice = dt.timedelta(hours=slot.practice.cancel_notice_hours or 0)
    return now <= slot.start_at - notice


def cancel_booking_by_patient(
    session: Session, now: dt.datetime, actor: User | None, booking: Booking, settings: Settings
) -> Slot | None:
    """The patient (or the secretariat for a caller) cancels within the practice's notice.

    The patient waits again with their lists back; the slot is re-posted as a NEW slot
    (``reposted_from_id``) and offered again while time remains. Returns that slot, or None.
    """
    patient = session.get(Patient, booking.patient_id)
    offer_machine.require_answerer(session, now, actor, patient)
    slot = booking.slot or session.get(Slot, booking.slot_id)
    if booking.status != BookingStatus.CONFIRMED:
        raise InvalidInput(N_("Dieser Termin ist nicht mehr gebucht."))
    if not can_cancel_booking(booking, now):
        raise InvalidInput(
            N_("Die Absagefrist der Praxis ist vorbei. Bitte rufen Sie die Praxis an.")
        )
    changed = session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.status == BookingStatus.CONFIRMED)
        .values(status=BookingStatus.CANCELLED, cancelled_by="patient", changed_at=now)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if changed != 1:
        raise InvalidInput(N_("Dieser Termin ist nicht mehr gebucht."))
    slot.status = SlotStatus.CANCELLED
    slot.closed_at = now
    session.flush()
    audit.record(
        session,
        now,
        "booking.cancelled",
        actor,
        patient_id=patient.id,
        practice_id=slot.practice_id,
        slot_id=slot.id,
        booking_id=booking.id,
        by="patient",
    )
    _restore_patient(session, now, patient, actor)
    offer_machine.mail_patient(
        session,
        now,
        patient,
        "booking_cancelled",
        f"booking_cancelled:{booking.id}",
        links.booking(booking.id),
        when=slot.start_at,
    )
    therapist_user = _therapist_user(session, slot)
    if therapist_user is not None:
        outbox.enqueue(
            session,
            now,
            kind="booking_cancelled_practice",
            to_user=therapist_user,
            dedupe_key=f"booking_cancelled_practice:{booking.id}",
            link_path=links.slot(slot.id),
            when=slot.start_at,
        )
    return repost(session, now, slot, settings)


def repost(
    session: Session,
    now: dt.datetime,
    slot: Slot,
    settings: Settings,
    *,
    start_at: dt.datetime | None = None,
    deadline: dt.datetime | None = None,
) -> Slot | None:
    """Offer a cancelled booking's time again as a new slot, if there is still time — always
    in auto mode (the issue: "offered again automatically"), so nobody has to pick again.
    `start_at` / `deadline`: another occurrence of a weekly place (``repost_weekly``)."""
    practice = slot.practice
    start_at = start_at or slot.start_at
    deadline = deadline or slot.offer_deadline_at
    if now >= start_at - dt.timedelta(minutes=practice.offer_cutoff_minutes or 0):
        return None
    size, ttl = offer_machine.wave_params(practice, start_at, now, settings)
    new = Slot(
        practice_id=slot.practice_id,
        therapist_id=slot.therapist_id,
        start_at=start_at,
        minutes=slot.minutes,
        kind=slot.kind,
        modality=slot.modality,
        status=SlotStatus.OFFERING,
        offer_mode=OfferMode.AUTO,
        wave_size=size,
        offer_ttl_minutes=ttl,
        offer_deadline_at=deadline,
        current_wave=0,
        created_by_id=slot.created_by_id,
        created_at=now,
        reposted_from_id=slot.id,
        room_id=slot.room_id,  # the cancelled booking held it: the same room stays free
    )
    session.add(new)
    session.flush()
    audit.record(
        session,
        now,
        "slot.reposted",
        None,
        practice_id=new.practice_id,
        slot_id=new.id,
        reposted_from=slot.id,
    )
    send_next_wave(session, now, new, settings)
    return new


# --- lookups for the pages ------------------------------------------------------------------------


def get_offer_by_token(session: Session, token: str | None) -> Offer | None:
    """The offer a mailed token opens, or None (malformed or unknown). Lookup by hash only."""
    if not token or not TOKEN_RE.match(token):
        return None
    # One query for what the offer page shows (slot, practice, patient and account).
    return session.scalar(
        select(Offer)
        .where(Offer.token_hash == hash_token(token))
        .options(
            joinedload(Offer.slot).joinedload(Slot.practice),
            joinedload(Offer.patient).joinedload(Patient.user),
        )
    )


class SlotFacts(NamedTuple):
    """What the offer page shows of a slot (the names of `Slot`'s attributes)."""

    start_at: dt.datetime
    minutes: int
    kind: SlotKind
    modality: Modality


class PracticeFacts(NamedTuple):
    """What the offer page shows of a practice (the names of `Practice`'s attributes)."""

    name: str
    phone: str | None
    street: str | None
    postcode: str | None
    city: str | None
    cancellation_policy: str | None


class OfferPage(NamedTuple):
    """One read of what a mailed offer link's page needs: whose it is, its state and its facts."""

    offer_id: int
    status: OfferStatus
    expires_at: dt.datetime
    patient_user_id: int | None
    slot_status: SlotStatus
    offer_deadline_at: dt.datetime
    slot: SlotFacts
    practice: PracticeFacts

    def problem(self, now: dt.datetime) -> SlotTaken | OfferExpired | OfferClosed | None:
        status = status_at(self.status, self.expires_at, now)
        return answer_problem(status, self.slot_status, self.offer_deadline_at, now)

    def answerable(self, now: dt.datetime) -> bool:
        return self.problem(now) is None

    def taken(self, now: dt.datetime) -> bool:
        """Someone else has the slot: this offer can never be accepted."""
        return isinstance(self.problem(now), SlotTaken)


def _offer_page_query():
    offer, slot, practice, patient = (m.__table__ for m in (Offer, Slot, Practice, Patient))
    columns = (
        offer.c.id,
        offer.c.status,
        offer.c.expires_at,
        patient.c.user_id,
        slot.c.status,
        slot.c.offer_deadline_at,
        *(slot.c[name] for name in SlotFacts._fields),
        *(practice.c[name] for name in PracticeFacts._fields),
    )
    joined = (
        offer.join(slot, slot.c.id == offer.c.slot_id)
        .join(practice, practice.c.id == slot.c.practice_id)
        .join(patient, patient.c.id == offer.c.patient_id)
    )
    return select(*columns).select_from(joined), offer.c.token_hash


_OFFER_PAGE, _TOKEN_HASH = _offer_page_query()
_SLOT_AT = 6  # where the slot's facts start in a row of _OFFER_PAGE


def get_offer_page(session: Session, token: str | None) -> OfferPage | None:
    """The mailed offer page's one read, without the ORM (the page takes the bursts): None for
    a malformed or unknown token, or a group offer (answered on the group's page)."""
    if not token or not TOKEN_RE.match(token):
        return None
    row = session.execute(_OFFER_PAGE.where(_TOKEN_HASH == hash_token(token))).first()
    if row is None:
        return None
    practice_at = _SLOT_AT + len(SlotFacts._fields)
    return OfferPage(
        *row[:_SLOT_AT],
        SlotFacts(*row[_SLOT_AT:practice_at]),
        PracticeFacts(*row[practice_at:]),
    )


def get_patient_offer(session: Session, user: User | None, offer_id: int) -> Offer:
    """One of the logged-in patient's own slot offers; anything else is NotFound."""
    offer = session.get(Offer, offer_id)
    if (
        user is None
        or user.role != Role.PATIENT
        or offer is None
        or offer.slot_id is None
        or offer.patient is None
        or offer.patient.user_id != user.id
    ):
        raise NotFound(N_("Nicht gefunden."))
    return offer


def get_patient_booking(session: Session, user: User | None, booking_id: int) -> Booking:
    booking = session.get(Booking, booking_id)
    if (
        user is None
        or user.role != Role.PATIENT
        or booking is None
        or booking.patient.user_id != user.id
    ):
        raise NotFound(N_("Nicht gefunden."))
    return booking


def open_offers(session: Session, patient: Patient, now: dt.datetime) -> list[Offer]:
    """The patient's slot offers that can be answered right now (for the dashboard)."""
    return list(
        session.scalars(
            select(Offer)
            .join(Slot, Slot.id == Offer.slot_id)
            .where(
                Offer.patient_id == patient.id,
                Offer.status == OfferStatus.PENDING,
                Offer.expires_at > now,
                Slot.status == SlotStatus.OFFERING,
            )
            .options(selectinload(Offer.slot).selectinload(Slot.practice))
            .order_by(Offer.expires_at, Offer.id)
        )
    )


def patient_bookings(
    session: Session, patient: Patient, now: dt.datetime, *, upcoming_only: bool = True
) -> list[Booking]:
    query = (
        select(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(Booking.patient_id == patient.id)
        .options(selectinload(Booking.slot).selectinload(Slot.practice))
        .order_by(Slot.start_at.desc())
    )
    if upcoming_only:
        query = query.where(
            Slot.start_at >= now - dt.timedelta(hours=12), Booking.status == BookingStatus.CONFIRMED
        )
    return list(session.scalars(query.limit(50)))


def video_link(booking: Booking) -> str | None:
    """The practice's video room for a video booking ({slot_id} and {token} filled in)."""
    slot = booking.slot
    template = slot.practice.video_link_template if slot and slot.practice else ""
    if slot is None or slot.modality != Modality.VIDEO or not template:
        return None
    room = hashlib.sha256(
        f"ptmatch-video:{booking.id}:{booking.created_at.isoformat()}:{booking.offer_id}".encode()
    ).hexdigest()[:20]
    try:
        return template.format(slot_id=slot.id, token=room)
    except (KeyError, IndexError, ValueError):
        return None


# --- the slot list --------------------------------------------------------------------------------


@dataclass
class SlotState:
    slot: Slot
    offered: int = 0
    pending: int = 0
    declined: int = 0
    expired: int = 0
    taken: int = 0
    withdrawn: int = 0
    booking: Booking | None = None
    patient: Patient | None = None  # only once booked


def slot_states(session: Session, now: dt.datetime, slots: list[Slot]) -> list[SlotState]:
    """Live counts per slot (two grouped queries whatever the number of slots)."""
    states = {s.id: SlotState(s) for s in slots}
    if not states:
        return []
    rows = session.execute(
        select(
            Offer.slot_id,
            Offer.status,
            func.count(Offer.id),
            func.coalesce(func.sum(case((Offer.expires_at > now, 1), else_=0)), 0),
        )
        .where(Offer.slot_id.in_(list(states)))
        .group_by(Offer.slot_id, Offer.status)
    ).all()
    for slot_id, status, count, live in rows:
        state = states[slot_id]
        state.offered += count
        if status == OfferStatus.PENDING:
            state.pending += live
            state.expired += count - live  # expired on read, not swept yet
        elif status == OfferStatus.EXPIRED:
            state.expired += count
        elif status == OfferStatus.DECLINED:
            state.declined += count
        elif status == OfferStatus.TAKEN:
            state.taken += count
        elif status == OfferStatus.WITHDRAWN:
            state.withdrawn += count
    for booking, patient in session.execute(
        select(Booking, Patient)
        .join(Patient, Patient.id == Booking.patient_id)
        .where(Booking.slot_id.in_(list(states)))
    ).all():
        states[booking.slot_id].booking = booking
        states[booking.slot_id].patient = patient
    return [states[s.id] for s in slots]


def list_slots(
    session: Session,
    now: dt.datetime,
    practice_ids,
    *,
    therapist_id: int | None = None,
    days_back: int = 14,
    limit: int = 100,
) -> list[Slot]:
    if not practice_ids:
        return []
    query = (
        select(Slot)
        .where(
            Slot.practice_id.in_(list(practice_ids)),
            Slot.start_at >= now - dt.timedelta(days=days_back),
        )
        .options(
            selectinload(Slot.therapist).selectinload(Therapist.user), selectinload(Slot.practice)
        )
        .order_by(Slot.start_at, Slot.id)
        .limit(limit)
    )
    if therapist_id is not None:
        query = query.where(Slot.therapist_id == therapist_id)
    return list(session.scalars(query))


def last_slot(session: Session, therapist: Therapist) -> Slot | None:
    """The therapist's most recently posted slot (for "repeat last slot")."""
    return session.scalar(
        select(Slot)
        .where(Slot.therapist_id == therapist.id)
        .order_by(Slot.created_at.desc(), Slot.id.desc())
        .limit(1)
    )
