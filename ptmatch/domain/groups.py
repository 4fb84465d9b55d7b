"""Group programmes: offers in waves, seats first come first served, then an ordered waitlist.

Life of a group: a therapist creates it (the weekly sessions must fit the calendar, buffers
included: ``clashes.find_clash``); offers go out in waves to patients who want or accept
group therapy and pass the matching engine's hard filters for the weekly session time
(``matching.rank_context`` with the group's own context and extra filters); the waves, the
offers' states, their mails and who may answer are the offer machine that slots share
(``offer_machine``): wave size and answer time follow the lead time as for slots, scaled by
the free seats. ``GROUP_DECISION_HOURS`` before the first session the decision job cancels a group
below its minimum (everyone is told; nobody loses a place on another list) or confirms it.

Seats: accepting is decided by the database, never by Python:
``UPDATE group_programs SET enrolled_count = enrolled_count + 1 WHERE id = :id AND
enrolled_count < max_participants AND status IN ('open', 'confirmed')`` and its row count.
The group row is locked first (PostgreSQL; SQLite serialises writers), then the offer rows,
so two accepts cannot deadlock. Whoever finds no seat joins the group's waitlist at the
next position. A first-time accept only takes a free seat while no one is waiting for it
(the waitlist goes first); a seat freed before the start (a participant withdraws) is
offered to the waitlist in order — the first to accept wins, the others' offers are
``taken`` and they keep their waitlist place. A waitlisted patient who lets a seat offer
expire moves to the end of the waitlist; one who declines it leaves the waitlist.

A group is an addition: a group seat never takes a patient off their individual-therapy
lists and never sets their status to BOOKED.

Offer rows: one per (group, patient) (a unique constraint). A waitlisted patient's seat
offer re-uses that row with a fresh token, so mail dedupe keys carry the wave number.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, exists, func, select, update
from sqlalchemy.orm import Session, selectinload

from ptmatch import links, localtime
from ptmatch.catalog import METHODS, N_, PROBLEM_AREAS
from ptmatch.config import Settings
from ptmatch.domain import access, audit, filters, matching, offer_machine, offers, rooms
from ptmatch.domain.clashes import GROUP_MAX_SESSIONS, find_clash
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
from ptmatch.domain.practices import can_manage_practice
from ptmatch.models import (
    EnrollmentStatus,
    GroupEnrollment,
    GroupProgram,
    GroupStatus,
    Modality,
    Offer,
    OfferStatus,
    Patient,
    PatientClinical,
    PatientStatus,
    Preference,
    Role,
    Slot,
    Therapist,
    User,
)
from ptmatch.notifications import outbox

BERLIN = ZoneInfo("Europe/Berlin")
LIVE_GROUP = (GroupStatus.OPEN, GroupStatus.CONFIRMED)
ACTIVE_ENROLMENT = (EnrollmentStatus.ENROLLED, EnrollmentStatus.WAITLISTED)
SESSION_MINUTES = (30, 240)
PARTICIPANTS = (2, 30)
MAX_WAVE = 40  # offers at once for one group, whatever the free seats
TITLE_MAX = 200
# Waitlisted patients who may still claim a freed seat (paused or gone ones do not block it).
CLAIMING = (PatientStatus.ACTIVE, PatientStatus.BOOKED)

MSG_SEAT_TAKEN = N_(
    "Der freie Platz ist leider schon vergeben. Sie bleiben auf der Warteliste der Gruppe."
)
MSG_CANCELLED = N_("Diese Gruppe findet nicht statt.")
MSG_TOO_SOON = N_("Der erste Termin muss mehr als %(hours)s Stunden in der Zukunft liegen.")


def decision_hours(settings: Settings) -> int:
    """How long before the first session a group is confirmed or cancelled."""
    return settings.GROUP_DECISION_HOURS


def decision_at(group: GroupProgram, settings: Settings) -> dt.datetime:
    """When the decision job confirms or cancels the group."""
    return group.first_session_at - dt.timedelta(hours=decision_hours(settings))


def offer_deadline(group: GroupProgram) -> dt.datetime:
    """No group offer may be answered after this (first session minus the practice's cut-off)."""
    practice = group.practice
    return group.first_session_at - dt.timedelta(
        minutes=(practice.offer_cutoff_minutes or 0) if practice else 0
    )


def last_session_at(group: GroupProgram) -> dt.datetime:
    return localtime.same_time_weeks_later(group.first_session_at, max(group.session_count, 1) - 1)


# --- access ------------------------------------------------------------------------------------


def can_manage_group(session: Session, actor: User | None, group: GroupProgram) -> bool:
    """Therapists of the group's practice, and secretaries serving it (as for slots)."""
    return can_manage_practice(session, actor, group.practice_id)


def _require_manager(session: Session, actor: User | None, group: GroupProgram) -> None:
    if not can_manage_group(session, actor, group):
        raise NotAllowed(N_("Sie dürfen diese Gruppe nicht bearbeiten."))


def get_group(session: Session, actor: User | None, group_id: int) -> GroupProgram:
    """A group the actor may manage; anything else is NotFound (no existence leak)."""
    group = session.get(GroupProgram, group_id)
    if group is None or not can_manage_group(session, actor, group):
        raise NotFound(N_("Nicht gefunden."))
    return group


def list_groups(session: Session, practice_id: int, *, limit: int = 100) -> list[GroupProgram]:
    return list(
        session.scalars(
            select(GroupProgram)
            .where(GroupProgram.practice_id == practice_id)
            .options(selectinload(GroupProgram.therapist).selectinload(Therapist.user))
            .order_by(GroupProgram.first_session_at.desc(), GroupProgram.id.desc())
            .limit(limit)
        )
    )


# --- creating ----------------------------------------------------------------------------------


def _int_in(value, bounds: tuple[int, int], message: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise InvalidInput(message, field)
    return value


def create_group(
    session: Session,
    now: dt.datetime,
    actor: User | None,
    therapist: Therapist,
    *,
    title: str,
    first_session_at: dt.datetime,
    session_count: int,
    minutes: int,
    min_participants: int,
    max_participants: int,
    modality=Modality.IN_PERSON,
    method: str = "",
    problems=(),
    settings: Settings,
    room_id: int | None = None,
    self_enrol: bool = True,
) -> GroupProgram:
    """Create a group programme and send its first wave of offers in the same transaction.

    Refused: an unapproved therapist or one without two-factor login, a profile without
    group therapy or the chosen modality, a first session sooner than the decision lead
    time (48 h) or more than a year ahead, bad numbers, and any clash of one of the weekly
    sessions with the therapist's slots, bookings or other groups (buffers included), and an
    in-person group without a free room of the practice that holds its maximum
    (``rooms.pick_room``). `self_enrol`: patients who fit may enrol themselves.
    """
    offers.check_therapist_may_post(session, actor, therapist)
    if not therapist.offers_group:
        raise NotAllowed(
            N_(
                "Gruppentherapie ist in Ihrem Profil nicht angegeben. Bitte ergänzen Sie zuerst "
                "Ihr Profil."
            )
        )
    title = (title or "").strip()
    if not title:
        raise InvalidInput(N_("Bitte ausfüllen."), "title")
    if len(title) > TITLE_MAX:
        raise InvalidInput(N_("Höchstens 200 Zeichen."), "title")
    method = (method or "").strip()
    if method and method not in METHODS.by_code:
        raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), "method")
    try:
        problems_mask = PROBLEM_AREAS.to_mask(problems or ())
    except KeyError as exc:
        raise InvalidInput(N_("Bitte eine Angabe aus der Liste wählen."), "problems") from exc
    modality = enum_value(Modality, modality, "modality")
    if (modality == Modality.VIDEO and not therapist.offers_video) or (
        modality == Modality.IN_PERSON and not therapist.offers_in_person
    ):
        raise InvalidInput(N_("Diese Form bieten Sie laut Profil nicht an."), "modality")
    session_count = _int_in(
        session_count,
        (1, GROUP_MAX_SESSIONS),
        N_("Erlaubt sind 1 bis 52 Termine."),
        "session_count",
    )
    minutes = _int_in(minutes, SESSION_MINUTES, N_("Erlaubt sind 30 bis 240 Minuten."), "minutes")
    min_participants = _int_in(
        min_participants, PARTICIPANTS, N_("Erlaubt sind 2 bis 30 Personen."), "min_participants"
    )
    max_participants = _int_in(
        max_participants, PARTICIPANTS, N_("Erlaubt sind 2 bis 30 Personen."), "max_participants"
    )
    if min_participants > max_participants:
        raise InvalidInput(
            N_("Die Mindestzahl darf nicht über der Höchstzahl liegen."), "min_participants"
        )
    if first_session_at is None or first_session_at.tzinfo is None:
        raise InvalidInput(N_("Bitte Datum und Uhrzeit angeben."), "start_time")
    hours = decision_hours(settings)
    if first_session_at <= now + dt.timedelta(hours=hours):
        raise InvalidInput(MSG_TOO_SOON, "start_date", hours=hours)
    if first_session_at > now + offers.MAX_LEAD:
        raise InvalidInput(
            N_("Gruppen können höchstens ein Jahr im Voraus angelegt werden."), "start_date"
        )
    what = find_clash(session, therapist, first_session_at, minutes, modality, count=session_count)
    if what is not None:
        raise Clash(offers.MSG_CLASH, "start_time", what=what)
    room = rooms.pick_room(
        session,
        therapist,
        first_session_at,
        minutes,
        modality,
        room_id=room_id,
        count=session_count,
        need=max_participants,
    )
    practice = therapist.practice
    size, ttl = offer_machine.wave_params(practice, first_session_at, now, settings)
    group = GroupProgram(
        practice_id=practice.id,
        therapist_id=therapist.id,
        title=title,
        method=method,
        problems_mask=problems_mask,
        modality=modality,
        first_session_at=first_session_at,
        session_count=session_count,
        minutes=minutes,
        min_participants=min_participants,
        max_participants=max_participants,
        enrolled_count=0,
        status=GroupStatus.OPEN,
        wave_size=size,
        offer_ttl_minutes=ttl,
        current_wave=0,
        created_at=now,
        room_id=room.id if room is not None else None,
        self_enrol=bool(self_enrol),
    )
    session.add(group)
    session.flush()
    audit.record(
        session,
        now,
        "group.created",
        actor,
        practice_id=practice.id,
        group_id=group.id,
        modality=str(modality),
        sessions=session_count,
        min=min_participants,
        max=max_participants,
        room_id=group.room_id,
    )
    send_group_wave(session, now, group, settings, actor=actor)
    return group


# --- candidates --------------------------------------------------------------------------------


def group_context(
    session: Session, group: GroupProgram, now: dt.datetime, *, ranking: bool = True
) -> matching.Context:
    """The matching context of the group's weekly session: the engine's own, built from a
    probe slot (never added to the session) at the first session's time, with the group's
    focus and method in place of the therapist's specialties and methods for the score."""
    probe = Slot(
        practice_id=group.practice_id,
        therapist_id=group.therapist_id,
        start_at=group.first_session_at,
        minutes=group.minutes,
        modality=group.modality,
        reposted_from_id=None,
        room_id=group.room_id,
    )
    ctx = matching.build_context(session, probe, now, ranking=ranking)
    return dataclasses.replace(
        ctx,
        slot_id=None,
        kind=filters.GROUP_KIND,
        overlapping_slot_ids=(),
        reposted_chain_ids=(),
        specialties_mask=group.problems_mask or ctx.specialties_mask,
        methods_mask=METHODS.to_mask([group.method])
        if group.method in METHODS.by_code
        else ctx.methods_mask,
    )


def fit_filters(group: GroupProgram) -> list:
    """The group's own hard filters: wants or accepts group therapy, a problem area within the
    group's focus (if it has one)."""
    conds = [Patient.group_pref.in_([Preference.WANTED, Preference.ACCEPTABLE])]
    if group.problems_mask:
        conds.append(
            func.coalesce(PatientClinical.problems_mask, 0).bitwise_and(group.problems_mask) != 0
        )
    return conds


def group_filters(group: GroupProgram) -> list:
    """The group's hard filters on top of the engine's for an offer: ``fit_filters`` and not
    offered this group before."""
    return [
        *fit_filters(group),
        ~exists().where(Offer.patient_id == Patient.id, Offer.group_id == group.id),
    ]


def rank_group_candidates(
    session: Session, group: GroupProgram, now: dt.datetime, limit: int | None = None
) -> list[matching.Candidate]:
    """New candidates for the group, best first (score and reasons from the matching engine)."""
    return matching.rank_context(
        session, group_context(session, group, now), limit, extra=group_filters(group)
    )


def _claiming_waitlist(group_id: int):
    """Waitlisted patients of the group who may claim a freed seat (SELECT of enrolments)."""
    return (
        select(GroupEnrollment.id)
        .join(Patient, Patient.id == GroupEnrollment.patient_id)
        .where(
            GroupEnrollment.group_id == group_id,
            GroupEnrollment.status == EnrollmentStatus.WAITLISTED,
            Patient.status.in_(CLAIMING),
        )
    )


# --- sending offers ----------------------------------------------------------------------------


def _live_pending(
    session: Session, group_id: int, now: dt.datetime, *, waitlisted: bool | None = None
) -> int:
    where = [Offer.group_id == group_id]
    if waitlisted is not None:
        on_waitlist = exists().where(
            GroupEnrollment.group_id == group_id,
            GroupEnrollment.patient_id == Offer.patient_id,
            GroupEnrollment.status == EnrollmentStatus.WAITLISTED,
        )
        where.append(on_waitlist if waitlisted else ~on_waitlist)
    return offer_machine.live_pending(session, now, *where)


def _offer_mail(group: GroupProgram) -> offer_machine.OfferMail:
    # A waitlisted patient's seat offer re-uses its row: the key carries the wave.
    return offer_machine.OfferMail(
        "group_offer",
        links.group_offer,
        lambda offer: f"group_offer:{offer.id}:{offer.wave}",
        group.first_session_at,
    )


def _offer_to_waitlist(
    session: Session,
    now: dt.datetime,
    group: GroupProgram,
    need: int,
    wave: tuple[int, int],
    expires: tuple[dt.datetime, dt.datetime],
) -> int:
    """Seat offers to the first `need` waitlisted patients (by position) without an open offer
    (a lapsed one that the sweep has not closed yet counts as open: the sweep moves its
    holder to the end of the waitlist first)."""
    rows = session.execute(
        select(GroupEnrollment, Offer)
        .join(
            Offer,
            and_(
                Offer.group_id == GroupEnrollment.group_id,
                Offer.patient_id == GroupEnrollment.patient_id,
            ),
        )
        .where(
            GroupEnrollment.id.in_(_claiming_waitlist(group.id)),
            Offer.status != OfferStatus.PENDING,
        )
        .order_by(GroupEnrollment.position, GroupEnrollment.id)
        .limit(need)
    ).all()
    if not rows or not offer_machine.claim_wave(session, group, *wave, live=LIVE_GROUP):
        return 0
    return len(
        offer_machine.write_offers(
            session,
            now,
            group,
            [offer for _enrollment, offer in rows],
            expires=expires[0],
            phone_expires=expires[1],
            mail=_offer_mail(group),
            seat=True,
        )
    )


def _offer_to_candidates(
    session: Session,
    now: dt.datetime,
    group: GroupProgram,
    need: int,
    wave: tuple[int, int],
    expires: tuple[dt.datetime, dt.datetime],
    actor: User | None,
) -> int:
    candidates = rank_group_candidates(session, group, now, limit=need)
    if not candidates or not offer_machine.claim_wave(session, group, *wave, live=LIVE_GROUP):
        return 0
    return len(
        offer_machine.write_offers(
            session,
            now,
            group,
            candidates,
            expires=expires[0],
            phone_expires=expires[1],
            mail=_offer_mail(group),
            actor=actor,
        )
    )


def send_group_wave(
    session: Session,
    now: dt.datetime,
    group: GroupProgram,
    settings: Settings,
    actor: User | None = None,
) -> int:
    """Top the group's open offers up to (free seats x wave size) and return how many went out.

    While anyone waits on the group's waitlist, free seats are offered to the waitlist in
    order; otherwise to new candidates. Skips (returns 0) when another transaction is
    working on the group, when it is full, cancelled, or past its offer deadline.
    """
    if group.status not in LIVE_GROUP or now >= offer_deadline(group):
        return 0
    if not offer_machine.lock_target(session, group) or group.status not in LIVE_GROUP:
        return 0
    free = group.max_participants - group.enrolled_count
    if free <= 0:
        return 0
    size, ttl = offer_machine.wave_params(group.practice, group.first_session_at, now, settings)
    target = min(free * size, MAX_WAVE)
    # (everyone, phone-only callers: a longer window to reach them in)
    expires = (
        offer_machine.offer_expiry(now, ttl, offer_deadline(group)),
        offer_machine.offer_expiry(now, ttl * settings.PHONE_ANSWER_FACTOR, offer_deadline(group)),
    )
    if session.scalar(select(exists(_claiming_waitlist(group.id)))):
        need = target - _live_pending(session, group.id, now, waitlisted=True)
        sent = (
            _offer_to_waitlist(session, now, group, need, (size, ttl), expires) if need > 0 else 0
        )
    else:
        need = target - _live_pending(session, group.id, now)
        sent = (
            _offer_to_candidates(session, now, group, need, (size, ttl), expires, actor)
            if need > 0
            else 0
        )
    if sent:
        audit.record(
            session,
            now,
            "group.wave_sent",
            actor,
            practice_id=group.practice_id,
            group_id=group.id,
            wave=group.current_wave,
            offers=sent,
        )
    return sent


def move_on(session: Session, now: dt.datetime, group: GroupProgram, settings: Settings) -> int:
    """Send the group's next wave in a savepoint (``offer_machine.in_savepoint``)."""
    return offer_machine.in_savepoint(
        session, group, lambda: send_group_wave(session, now, group, settings)
    )


# --- answering ---------------------------------------------------------------------------------


def _group_of(session: Session, offer: Offer) -> GroupProgram:
    if offer.group_id is None:
        raise OfferClosed(offer_machine.MSG_CLOSED)
    return offer.group or session.get(GroupProgram, offer.group_id)


def get_enrollment(session: Session, group_id: int, patient_id: int) -> GroupEnrollment | None:
    return session.scalar(
        select(GroupEnrollment).where(
            GroupEnrollment.group_id == group_id, GroupEnrollment.patient_id == patient_id
        )
    )


def check_group_answerable(offer: Offer, group: GroupProgram, now: dt.datetime) -> None:
    """Raise the typed error that says why this group offer cannot be answered now (if so)."""
    status = offer.effective_status(now)
    if group.status == GroupStatus.CANCELLED:
        raise OfferClosed(MSG_CANCELLED)
    if status == OfferStatus.TAKEN:
        raise SlotTaken(MSG_SEAT_TAKEN)
    if status == OfferStatus.EXPIRED or now >= offer_deadline(group):
        raise OfferExpired(offer_machine.MSG_EXPIRED)
    if status != OfferStatus.PENDING:
        raise OfferClosed(offer_machine.MSG_CLOSED)


def is_group_offer_answerable(session: Session, offer: Offer | None, now: dt.datetime) -> bool:
    if offer is None or offer.group_id is None:
        return False
    try:
        check_group_answerable(offer, _group_of(session, offer), now)
    except (SlotTaken, OfferExpired, OfferClosed):
        return False
    return True


def _next_position(session: Session, group_id: int) -> int:
    return (
        session.scalar(
            select(func.max(GroupEnrollment.position)).where(GroupEnrollment.group_id == group_id)
        )
        or 0
    ) + 1


def _take_seat(session: Session, group: GroupProgram, *, waitlist_first: bool) -> bool:
    """The race: one conditional UPDATE and its row count decide who gets a seat."""
    stmt = update(GroupProgram).where(
        GroupProgram.id == group.id,
        GroupProgram.enrolled_count < GroupProgram.max_participants,
        GroupProgram.status.in_(LIVE_GROUP),
    )
    if waitlist_first:
        stmt = stmt.where(~exists(_claiming_waitlist(group.id)))
    won = (
        session.execute(
            stmt.values(enrolled_count=GroupProgram.enrolled_count + 1).execution_options(
                synchronize_session=False
            )
        ).rowcount
        == 1
    )
    session.refresh(group)
    return won


def _seat_offers_taken(session: Session, now: dt.datetime, group: GroupProgram) -> None:
    """The group is full: the open seat offers to waitlisted patients are taken (they are
    told and keep their waitlist place). First-time offers stay open: they lead to the waitlist."""
    rows = session.execute(
        select(Offer.id, Offer.patient_id, Offer.wave)
        .join(
            GroupEnrollment,
            and_(
                GroupEnrollment.group_id == Offer.group_id,
                GroupEnrollment.patient_id == Offer.patient_id,
            ),
        )
        .where(
            Offer.group_id == group.id,
            Offer.status == OfferStatus.PENDING,
            GroupEnrollment.status == EnrollmentStatus.WAITLISTED,
        )
        .order_by(Offer.id)
    ).all()
    for offer_id, patient_id, wave in rows:
        offer_machine.close_offer(
            session,
            now,
            offer_id,
            patient_id,
            OfferStatus.TAKEN,
            mail=("offer_taken", f"offer_taken:{offer_id}:{wave}", links.patient_groups()),
            practice_id=group.practice_id,
            group_id=group.id,
            offer_id=offer_id,
        )


def accept_group_offer(
    session: Session, now: dt.datetime, offer: Offer, actor: User | None
) -> GroupEnrollment:
    """Accept a group offer: a seat while one is free, else a place on the group's waitlist.

    A waitlisted patient's seat offer either wins the seat or raises SlotTaken (they stay
    waitlisted). OfferExpired / OfferClosed leave the transaction exactly as it was.
    """
    patient = session.get(Patient, offer.patient_id)
    offer_machine.require_answerer(session, actor, patient)
    group = _group_of(session, offer)
    check_group_answerable(offer, group, now)
    try:
        with session.begin_nested():
            enrollment = _enrol(session, now, offer, group, patient, actor)
    except (SlotTaken, OfferExpired, OfferClosed):
        session.expire(offer)
        session.expire(group)
        raise
    return enrollment


def _enrol(
    session: Session,
    now: dt.datetime,
    offer: Offer,
    group: GroupProgram,
    patient: Patient,
    actor: User,
) -> GroupEnrollment:
    # Lock order everywhere: the group row first, then offer rows.
    offer_machine.lock_target(session, group, wait=True)
    if group.status not in LIVE_GROUP:
        raise OfferClosed(MSG_CANCELLED)
    if not offer_machine.set_offer_status(
        session, offer.id, OfferStatus.ACCEPTED, now, live=True, actor=actor
    ):
        session.refresh(offer)
        check_group_answerable(offer, group, now)
        raise OfferClosed(offer_machine.MSG_CLOSED)
    enrollment = get_enrollment(session, group.id, patient.id)
    waitlisted = enrollment is not None and enrollment.status == EnrollmentStatus.WAITLISTED
    if enrollment is not None and not waitlisted:
        raise OfferClosed(offer_machine.MSG_CLOSED)
    if _take_seat(session, group, waitlist_first=not waitlisted):
        if enrollment is None:
            enrollment = GroupEnrollment(group_id=group.id, patient_id=patient.id, created_at=now)
            session.add(enrollment)
        enrollment.status, enrollment.position, enrollment.changed_at = (
            EnrollmentStatus.ENROLLED,
            None,
            now,
        )
        session.flush()
        audit.record(
            session,
            now,
            "offer.accepted",
            actor,
            patient_id=patient.id,
            practice_id=group.practice_id,
            group_id=group.id,
            offer_id=offer.id,
        )
        audit.record(
            session,
            now,
            "group.enrolled",
            actor,
            patient_id=patient.id,
            practice_id=group.practice_id,
            group_id=group.id,
            enrollment_id=enrollment.id,
            from_waitlist=waitlisted,
        )
        offer_machine.mail_patient(
            session,
            now,
            patient,
            "group_enrolled",
            f"group_enrolled:{enrollment.id}",
            links.patient_groups(),
            when=group.first_session_at,
        )
        if group.enrolled_count >= group.max_participants:
            _seat_offers_taken(session, now, group)
    elif waitlisted:
        raise SlotTaken(MSG_SEAT_TAKEN)
    else:
        enrollment = GroupEnrollment(
            group_id=group.id,
            patient_id=patient.id,
            status=EnrollmentStatus.WAITLISTED,
            position=_next_position(session, group.id),
            created_at=now,
            changed_at=now,
        )
        session.add(enrollment)
        session.flush()
        audit.record(
            session,
            now,
            "offer.accepted",
            actor,
            patient_id=patient.id,
            practice_id=group.practice_id,
            group_id=group.id,
            offer_id=offer.id,
        )
        audit.record(
            session,
            now,
            "group.waitlisted",
            actor,
            patient_id=patient.id,
            practice_id=group.practice_id,
            group_id=group.id,
            enrollment_id=enrollment.id,
            position=enrollment.position,
        )
        offer_machine.mail_patient(
            session,
            now,
            patient,
            "group_waitlisted",
            f"group_waitlisted:{enrollment.id}",
            links.patient_groups(),
            when=group.first_session_at,
        )
    session.refresh(offer)
    return enrollment


def decline_group_offer(
    session: Session, now: dt.datetime, offer: Offer, actor: User | None, settings: Settings
) -> Offer:
    """Say no. A waitlisted patient who declines a freed seat leaves the waitlist. The place in
    the wave goes to the next person at once."""
    patient = session.get(Patient, offer.patient_id)
    offer_machine.require_answerer(session, actor, patient)
    group = _group_of(session, offer)
    check_group_answerable(offer, group, now)
    offer_machine.lock_target(session, group, wait=True)
    if not offer_machine.set_offer_status(
        session, offer.id, OfferStatus.DECLINED, now, live=True, actor=actor
    ):
        session.refresh(offer)
        check_group_answerable(offer, group, now)
        raise OfferClosed(offer_machine.MSG_CLOSED)
    session.refresh(offer)
    audit.record(
        session,
        now,
        "offer.declined",
        actor,
        patient_id=patient.id,
        practice_id=group.practice_id,
        group_id=group.id,
        offer_id=offer.id,
    )
    enrollment = get_enrollment(session, group.id, patient.id)
    if enrollment is not None and enrollment.status == EnrollmentStatus.WAITLISTED:
        _leave(session, now, actor, group, enrollment, reason="declined_seat")
    move_on(session, now, group, settings)
    return offer


def pass_on_unreached(
    session: Session, now: dt.datetime, offer: Offer, actor: User | None, settings: Settings
) -> bool:
    """The secretariat could not reach a phone-only patient about a seat: the offer is
    withdrawn (a waitlisted patient moves to the end of the waitlist, as when a seat offer
    lapses) and the seat goes to the next person at once. True if it was open."""
    group = _group_of(session, offer)
    offer_machine.lock_target(session, group, wait=True)
    withdrawn = offer_machine.withdraw_unreached(session, now, offer, group, actor)
    enrollment = get_enrollment(session, group.id, offer.patient_id)
    if withdrawn and enrollment is not None and enrollment.status == EnrollmentStatus.WAITLISTED:
        enrollment.position = _next_position(session, group.id)
        enrollment.changed_at = now
        session.flush()
    move_on(session, now, group, settings)
    return withdrawn


# --- self-enrolment ------------------------------------------------------------------------------

MSG_ALREADY = N_("Sie sind für diese Gruppe bereits angemeldet.")
MSG_NO_FIT = N_("Diese Gruppe passt nicht zu Ihren Angaben (Zeiten, Entfernung oder Wünsche).")
MSG_NO_SELF = N_("Für diese Gruppe nimmt die Praxis Anmeldungen nur über Angebote an.")
MSG_CLOSED_GROUP = N_("Für diese Gruppe sind keine Anmeldungen mehr möglich.")
OPEN_LIST_LIMIT = 50  # groups looked at for one patient's dashboard


def takes_enrolments(group: GroupProgram, now: dt.datetime) -> bool:
    """Open or confirmed, and there is still time before the first session to answer."""
    return group.status in LIVE_GROUP and now < offer_deadline(group)


def can_self_enrol(group: GroupProgram, now: dt.datetime) -> bool:
    """The practice lets patients enrol themselves, and the group still takes enrolments."""
    return bool(group.self_enrol) and takes_enrolments(group, now)


def fits(session: Session, group: GroupProgram, patient: Patient, now: dt.datetime) -> bool:
    """The same hard filters as for an offer (``matching.patient_fits`` with the group's own
    context), within the patient's travel radius or by video; no list needed."""
    return matching.patient_fits(
        session, group_context(session, group, now, ranking=False), patient.id, fit_filters(group)
    )


def seats_left(group: GroupProgram) -> int:
    return max(group.max_participants - group.enrolled_count, 0)


def open_groups_for(
    session: Session,
    patient: Patient,
    now: dt.datetime,
    *,
    limit: int = 10,
    practice_ids=None,
) -> list[GroupProgram]:
    """Open groups the patient could enrol in themselves: self-enrolment on, still taking
    answers, not one they are in or waiting for, and passing the hard filters. Soonest first.

    `practice_ids`: the secretariat's view for a caller — only these practices' groups, and
    also those taking offers only (the secretariat may enrol a caller into them)."""
    if patient.group_pref not in (Preference.WANTED, Preference.ACCEPTABLE):
        return []
    where = (
        [GroupProgram.self_enrol.is_(True)]
        if practice_ids is None
        else [GroupProgram.practice_id.in_(list(practice_ids) or [-1])]
    )
    mine = select(GroupEnrollment.group_id).where(
        GroupEnrollment.patient_id == patient.id,
        GroupEnrollment.status.in_([EnrollmentStatus.ENROLLED, EnrollmentStatus.WAITLISTED]),
    )
    result = []
    for group in session.scalars(
        select(GroupProgram)
        .options(selectinload(GroupProgram.practice))
        .where(
            GroupProgram.status.in_(LIVE_GROUP),
            GroupProgram.first_session_at > now,
            GroupProgram.id.not_in(mine),
            *where,
        )
        .order_by(GroupProgram.first_session_at, GroupProgram.id)
        .limit(OPEN_LIST_LIMIT)
    ):
        if takes_enrolments(group, now) and fits(session, group, patient, now):
            result.append(group)
            if len(result) >= limit:
                break
    return result


def public_groups(session: Session, practice_id: int, now: dt.datetime) -> list[GroupProgram]:
    """A practice's groups that still take enrolments (the public, pseudonymous listing)."""
    return [
        g
        for g in session.scalars(
            select(GroupProgram)
            .options(selectinload(GroupProgram.practice))
            .where(
                GroupProgram.practice_id == practice_id,
                GroupProgram.status.in_(LIVE_GROUP),
                GroupProgram.first_session_at > now,
            )
            .order_by(GroupProgram.first_session_at, GroupProgram.id)
            .limit(OPEN_LIST_LIMIT)
        )
        if takes_enrolments(g, now)
    ]


def get_open_group(session: Session, group_id: int, now: dt.datetime) -> GroupProgram:
    """A group that still takes enrolments (anyone may see it without names); else NotFound."""
    group = session.get(GroupProgram, group_id)
    if group is None or not takes_enrolments(group, now):
        raise NotFound(N_("Nicht gefunden."))
    return group


def self_enrol(
    session: Session,
    now: dt.datetime,
    actor: User | None,
    group: GroupProgram,
    patient: Patient,
    settings: Settings,
) -> GroupEnrollment:
    """Enrol directly: a seat with the same conditional UPDATE as an accepted group offer
    (``_take_seat``, waitlist first), or beyond the maximum the group's waitlist at the next
    position. The patient themselves (when the practice allows self-enrolment) or the
    secretariat for a caller (also when it does not: the phone is an offer too). Refused: a
    patient who does not pass the hard filters, one already enrolled or waiting, a group that
    no longer takes enrolments. A pending offer of this group is accepted instead."""
    offer_machine.require_answerer(session, actor, patient)
    if actor.role == Role.PATIENT and not group.self_enrol:
        raise NotAllowed(MSG_NO_SELF)
    pending = session.scalar(
        select(Offer).where(
            Offer.group_id == group.id,
            Offer.patient_id == patient.id,
            Offer.status == OfferStatus.PENDING,
            Offer.expires_at > now,
        )
    )
    if pending is not None and get_enrollment(session, group.id, patient.id) is None:
        return accept_group_offer(session, now, pending, actor)
    if not takes_enrolments(group, now):
        raise InvalidInput(MSG_CLOSED_GROUP)
    if not fits(session, group, patient, now):
        raise InvalidInput(MSG_NO_FIT)
    try:
        with session.begin_nested():
            enrollment = _self_enrol(session, now, actor, group, patient)
    except InvalidInput:
        session.expire(group)
        raise
    return enrollment


def _self_enrol(
    session: Session, now: dt.datetime, actor: User, group: GroupProgram, patient: Patient
) -> GroupEnrollment:
    # Lock order as everywhere: the group row first.
    offer_machine.lock_target(session, group, wait=True)
    if not takes_enrolments(group, now):
        raise InvalidInput(MSG_CLOSED_GROUP)
    enrollment = get_enrollment(session, group.id, patient.id)
    if enrollment is not None and enrollment.status in (
        EnrollmentStatus.ENROLLED,
        EnrollmentStatus.WAITLISTED,
    ):
        raise InvalidInput(MSG_ALREADY)
    if _take_seat(session, group, waitlist_first=True):
        status, position, kind = EnrollmentStatus.ENROLLED, None, "group_enrolled"
    else:
        status, kind = EnrollmentStatus.WAITLISTED, "group_waitlisted"
        position = _next_position(session, group.id)
    if enrollment is None:  # a withdrawn patient's row is re-used (one row per group and patient)
        enrollment = GroupEnrollment(group_id=group.id, patient_id=patient.id, created_at=now)
        session.add(enrollment)
    enrollment.status, enrollment.position, enrollment.changed_at = status, position, now
    session.flush()
    audit.record(
        session,
        now,
        "group.self_enrolled",
        actor,
        patient_id=patient.id,
        practice_id=group.practice_id,
        group_id=group.id,
        enrollment_id=enrollment.id,
        status=str(enrollment.status),
        position=enrollment.position,
    )
    offer_machine.mail_patient(
        session,
        now,
        patient,
        kind,
        f"{kind}:{enrollment.id}:{now.isoformat()}",
        links.patient_groups(),
        when=group.first_session_at,
    )
    if enrollment.status == EnrollmentStatus.ENROLLED and group.enrolled_count >= (
        group.max_participants
    ):
        _seat_offers_taken(session, now, group)
    return enrollment


def set_self_enrol(
    session: Session, now: dt.datetime, actor: User | None, group: GroupProgram, on: bool
) -> GroupProgram:
    """The practice switches self-enrolment on or off for a group (off: offers only)."""
    _require_manager(session, actor, group)
    group.self_enrol = bool(on)
    session.flush()
    audit.record(
        session,
        now,
        "group.self_enrol_set",
        actor,
        practice_id=group.practice_id,
        group_id=group.id,
        on=group.self_enrol,
    )
    return group


# --- leaving -----------------------------------------------------------------------------------


def _leave(
    session: Session,
    now: dt.datetime,
    actor: User | None,
    group: GroupProgram,
    enrollment: GroupEnrollment,
    *,
    reason: str,
) -> bool:
    """ENROLLED / WAITLISTED → WITHDRAWN (conditional); a freed seat lowers the count."""
    previous = enrollment.status
    changed = session.execute(
        update(GroupEnrollment)
        .where(GroupEnrollment.id == enrollment.id, GroupEnrollment.status == previous)
        .values(status=EnrollmentStatus.WITHDRAWN, position=None, changed_at=now)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if changed != 1:
        return False
    if previous == EnrollmentStatus.ENROLLED:
        session.execute(
            update(GroupProgram)
            .where(GroupProgram.id == group.id, GroupProgram.enrolled_count > 0)
            .values(enrolled_count=GroupProgram.enrolled_count - 1)
            .execution_options(synchronize_session="fetch")
        )
    else:
        for offer_id in session.scalars(
            select(Offer.id).where(
                Offer.group_id == group.id,
                Offer.patient_id == enrollment.patient_id,
                Offer.status == OfferStatus.PENDING,
            )
        ):
            offer_machine.set_offer_status(session, offer_id, OfferStatus.WITHDRAWN, now)
    session.refresh(enrollment)
    audit.record(
        session,
        now,
        "group.withdrawn",
        actor,
        patient_id=enrollment.patient_id,
        practice_id=group.practice_id,
        group_id=group.id,
        enrollment_id=enrollment.id,
        previous=str(previous),
        reason=reason,
    )
    return True


def can_withdraw(group: GroupProgram, enrollment: GroupEnrollment, now: dt.datetime) -> bool:
    return (
        enrollment.status in (EnrollmentStatus.ENROLLED, EnrollmentStatus.WAITLISTED)
        and group.status in LIVE_GROUP
        and now < group.first_session_at
    )


def withdraw(
    session: Session,
    now: dt.datetime,
    actor: User | None,
    enrollment: GroupEnrollment,
    settings: Settings,
) -> GroupEnrollment:
    """A participant (or waitlisted patient) leaves before the start — the patient themselves,
    the secretariat for a caller, or the group's practice. A freed seat is offered to the
    waitlist at once (the first to accept wins)."""
    group = enrollment.group or session.get(GroupProgram, enrollment.group_id)
    patient = session.get(Patient, enrollment.patient_id)
    if not can_manage_group(session, actor, group):
        offer_machine.require_answerer(session, actor, patient)
    offer_machine.lock_target(session, group, wait=True)
    session.refresh(enrollment)
    if not can_withdraw(group, enrollment, now):
        raise InvalidInput(N_("Diese Anmeldung kann nicht mehr zurückgezogen werden."))
    if not _leave(session, now, actor, group, enrollment, reason="withdrawn"):
        raise InvalidInput(N_("Diese Anmeldung kann nicht mehr zurückgezogen werden."))
    session.refresh(group)
    move_on(session, now, group, settings)
    return enrollment


# --- the decision ------------------------------------------------------------------------------


def decide_group(
    session: Session, now: dt.datetime, group: GroupProgram, settings: Settings
) -> GroupStatus | None:
    """At the decision time: below the minimum → CANCELLED, else CONFIRMED. Returns the new
    status, or None when there was nothing to decide (too early, or already decided —
    running twice changes nothing and sends nothing twice)."""
    if group.status != GroupStatus.OPEN or now < decision_at(group, settings):
        return None
    base = update(GroupProgram).where(
        GroupProgram.id == group.id, GroupProgram.status == GroupStatus.OPEN
    )
    if (
        session.execute(
            base.where(GroupProgram.enrolled_count < GroupProgram.min_participants)
            .values(status=GroupStatus.CANCELLED, decided_at=now)
            .execution_options(synchronize_session="fetch")
        ).rowcount
        == 1
    ):
        session.refresh(group)
        people = _participants(session, group.id)
        _cancel_side_effects(session, now, group)
        _mail_therapist(session, now, group, "practice_group_cancelled")
        reschedule(session, now, group, people, settings)
        return GroupStatus.CANCELLED
    if (
        session.execute(
            base.where(GroupProgram.enrolled_count >= GroupProgram.min_participants)
            .values(status=GroupStatus.CONFIRMED, decided_at=now)
            .execution_options(synchronize_session="fetch")
        ).rowcount
        == 1
    ):
        session.refresh(group)
        patients = _patients_by_enrollment(session, group.id, (EnrollmentStatus.ENROLLED,))
        for enrollment, patient in patients:
            offer_machine.mail_patient(
                session,
                now,
                patient,
                "group_confirmed",
                f"group_confirmed:{enrollment.id}",
                links.patient_groups(),
                when=group.first_session_at,
            )
        audit.record(
            session,
            now,
            "group.confirmed",
            None,
            practice_id=group.practice_id,
            group_id=group.id,
            enrolled=group.enrolled_count,
        )
        _mail_therapist(session, now, group, "practice_group_confirmed")
        return GroupStatus.CONFIRMED
    session.refresh(group)
    return None


def _patients_by_enrollment(
    session: Session, group_id: int, statuses
) -> list[tuple[GroupEnrollment, Patient]]:
    return [
        (e, p)
        for e, p in session.execute(
            select(GroupEnrollment, Patient)
            .join(Patient, Patient.id == GroupEnrollment.patient_id)
            .options(selectinload(Patient.user))
            .where(GroupEnrollment.group_id == group_id, GroupEnrollment.status.in_(list(statuses)))
            .order_by(GroupEnrollment.id)
        ).all()
    ]


def _mail_therapist(session: Session, now: dt.datetime, group: GroupProgram, kind: str) -> None:
    """The group's therapist hears of the decision: the outcome and a link, never a name."""
    therapist = group.therapist or session.get(Therapist, group.therapist_id)
    user = therapist.user if therapist is not None else None
    if user is not None and user.is_enabled:
        outbox.enqueue(
            session,
            now,
            kind=kind,
            dedupe_key=f"{kind}:{group.id}",
            link_path=links.practice_group(group.id),
            to_user=user,
            when=group.first_session_at,
        )


def _participants(session: Session, group_id: int) -> list[int]:
    """Patient ids enrolled or waiting, participants first (then waitlist order)."""
    return [
        e.patient_id
        for e, _p in sorted(
            _patients_by_enrollment(
                session, group_id, (EnrollmentStatus.ENROLLED, EnrollmentStatus.WAITLISTED)
            ),
            key=lambda pair: (
                pair[0].status != EnrollmentStatus.ENROLLED,
                pair[0].position or 0,
                pair[0].id,
            ),
        )
    ]


def next_group(session: Session, now: dt.datetime, group: GroupProgram) -> GroupProgram | None:
    """The practice's next open group of the same method (the soonest that still takes answers)."""
    for candidate in session.scalars(
        select(GroupProgram)
        .where(
            GroupProgram.practice_id == group.practice_id,
            GroupProgram.id != group.id,
            GroupProgram.method == group.method,
            GroupProgram.status == GroupStatus.OPEN,
            GroupProgram.first_session_at > now,
        )
        .order_by(GroupProgram.first_session_at, GroupProgram.id)
        .limit(20)
    ):
        if now < offer_deadline(candidate):
            return candidate
    return None


def reschedule(
    session: Session,
    now: dt.datetime,
    cancelled: GroupProgram,
    patient_ids: list[int],
    settings: Settings,
) -> int:
    """Offer the participants of a group cancelled below its minimum the practice's next open
    group of the same method first — before its next wave goes to anyone else, whatever the
    wave size (accepting a full group leads to its waitlist). Their lists stay as they were (a
    group never took anyone off a list). Returns how many offers went out."""
    target = next_group(session, now, cancelled)
    if target is None or not patient_ids:
        return 0
    offer_machine.lock_target(session, target, wait=True)
    if target.status not in LIVE_GROUP:
        return 0
    known = set(session.scalars(select(Offer.patient_id).where(Offer.group_id == target.id))) | set(
        session.scalars(
            select(GroupEnrollment.patient_id).where(GroupEnrollment.group_id == target.id)
        )
    )
    claiming = set(
        session.scalars(
            select(Patient.id).where(Patient.id.in_(patient_ids), Patient.status.in_(CLAIMING))
        )
    )
    picks = [_Pick(pid) for pid in patient_ids if pid not in known and pid in claiming]
    if not picks:
        return 0
    _size, ttl = offer_machine.wave_params(target.practice, target.first_session_at, now, settings)
    expires = offer_machine.offer_expiry(now, ttl, offer_deadline(target))
    written = offer_machine.write_offers(
        session,
        now,
        target,
        picks,
        expires=expires,
        mail=_offer_mail(target),
        rescheduled_from=cancelled.id,
    )
    audit.record(
        session,
        now,
        "group.rescheduled",
        None,
        practice_id=target.practice_id,
        group_id=target.id,
        cancelled_group_id=cancelled.id,
        offers=len(written),
    )
    return len(written)


@dataclass(frozen=True)
class _Pick:
    patient_id: int
    score: int = 0


MSG_REASON = N_("Bitte einen Grund angeben (höchstens 500 Zeichen).")


def can_cancel_group(group: GroupProgram, now: dt.datetime) -> bool:
    return group.status in LIVE_GROUP and now < last_session_at(group)


def cancel_group(
    session: Session,
    now: dt.datetime,
    actor: User | None,
    group: GroupProgram,
    *,
    reason: str,
    confirmed: bool,
    settings: Settings,
) -> GroupProgram:
    """The practice cancels a group by hand: confirmed, with a reason (kept on the group and in
    the audit log, never mailed). Everyone enrolled or waiting is told, open offers are
    withdrawn, the room is free again. Below its minimum the participants are offered the
    practice's next open group of the same method first (``reschedule``)."""
    _require_manager(session, actor, group)
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise InvalidInput(MSG_REASON, "reason")
    if not confirmed:
        raise InvalidInput(N_("Bitte bestätigen Sie die Absage."), "confirm")
    offer_machine.lock_target(session, group, wait=True)
    if not can_cancel_group(group, now):
        raise InvalidInput(N_("Diese Gruppe kann nicht mehr abgesagt werden."))
    below_minimum = group.enrolled_count < group.min_participants
    people = _participants(session, group.id)
    changed = session.execute(
        update(GroupProgram)
        .where(GroupProgram.id == group.id, GroupProgram.status.in_(LIVE_GROUP))
        .values(
            status=GroupStatus.CANCELLED,
            decided_at=func.coalesce(GroupProgram.decided_at, now),
            cancel_reason=reason,
        )
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if changed != 1:
        raise InvalidInput(N_("Diese Gruppe kann nicht mehr abgesagt werden."))
    session.refresh(group)
    audit.record(
        session,
        now,
        "group.cancelled_by_practice",
        actor,
        practice_id=group.practice_id,
        group_id=group.id,
        enrolled=group.enrolled_count,
        minimum=group.min_participants,
    )
    _cancel_side_effects(session, now, group, actor=actor)
    if below_minimum:
        reschedule(session, now, group, people, settings)
    return group


def _cancel_side_effects(
    session: Session, now: dt.datetime, group: GroupProgram, actor: User | None = None
) -> None:
    """Everyone enrolled or waiting is told; open offers are withdrawn. Nothing else changes:
    a group never took anyone off another list."""
    told = set()
    for enrollment, patient in _patients_by_enrollment(
        session, group.id, (EnrollmentStatus.ENROLLED, EnrollmentStatus.WAITLISTED)
    ):
        enrollment.status, enrollment.changed_at = EnrollmentStatus.CANCELLED, now
        told.add(patient.id)
        offer_machine.mail_patient(
            session,
            now,
            patient,
            "group_cancelled",
            f"group_cancelled:{enrollment.id}",
            links.patient_groups(),
            when=group.first_session_at,
        )
    session.flush()
    for offer_id, patient_id, wave in session.execute(
        select(Offer.id, Offer.patient_id, Offer.wave)
        .where(Offer.group_id == group.id, Offer.status == OfferStatus.PENDING)
        .order_by(Offer.id)
    ).all():
        mail = (
            None
            if patient_id in told
            else ("offer_withdrawn", f"offer_withdrawn:{offer_id}:{wave}", links.patient_groups())
        )
        offer_machine.close_offer(
            session,
            now,
            offer_id,
            patient_id,
            OfferStatus.WITHDRAWN,
            mail=mail,
            reason="group_cancelled",
            practice_id=group.practice_id,
            group_id=group.id,
            offer_id=offer_id,
        )
    audit.record(
        session,
        now,
        "group.cancelled",
        actor,
        practice_id=group.practice_id,
        group_id=group.id,
        enrolled=group.enrolled_count,
        minimum=group.min_participants,
        told=len(told),
    )


def expire_group_offers(session: Session, now: dt.datetime, limit: int = 500) -> int:
    """PENDING group offers past their deadline → EXPIRED (they already were, on read). A
    waitlisted patient who let a seat offer lapse moves to the end of the waitlist."""
    rows = session.execute(
        select(Offer.id, Offer.patient_id, Offer.group_id)
        .where(
            Offer.status == OfferStatus.PENDING,
            Offer.expires_at <= now,
            Offer.group_id.is_not(None),
        )
        .order_by(Offer.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    count = 0
    for offer_id, patient_id, group_id in rows:
        if not offer_machine.set_offer_status(
            session, offer_id, OfferStatus.EXPIRED, now, live=False
        ):
            continue
        count += 1
        audit.record(
            session,
            now,
            "offer.expired",
            None,
            patient_id=patient_id,
            group_id=group_id,
            offer_id=offer_id,
        )
        enrollment = get_enrollment(session, group_id, patient_id)
        if enrollment is not None and enrollment.status == EnrollmentStatus.WAITLISTED:
            enrollment.position = _next_position(session, group_id)
            enrollment.changed_at = now
            session.flush()
    return count


# --- what the pages show -------------------------------------------------------------------------


@dataclass
class GroupState:
    group: GroupProgram
    waitlisted: int = 0
    pending: int = 0
    declined: int = 0
    expired: int = 0
    offered: int = 0


def group_states(
    session: Session, now: dt.datetime, groups: list[GroupProgram]
) -> list[GroupState]:
    """Counts per group for the overview (two grouped queries whatever the number of groups)."""
    states = {g.id: GroupState(g) for g in groups}
    if not states:
        return []
    live = func.sum(case((Offer.expires_at > now, 1), else_=0))
    for group_id, status, count, live_count in session.execute(
        select(Offer.group_id, Offer.status, func.count(Offer.id), live)
        .where(Offer.group_id.in_(list(states)))
        .group_by(Offer.group_id, Offer.status)
    ):
        state = states[group_id]
        state.offered += count
        if status == OfferStatus.PENDING:
            state.pending += live_count or 0
            state.expired += count - (live_count or 0)
        elif status == OfferStatus.EXPIRED:
            state.expired += count
        elif status == OfferStatus.DECLINED:
            state.declined += count
    for group_id, count in session.execute(
        select(GroupEnrollment.group_id, func.count(GroupEnrollment.id))
        .where(
            GroupEnrollment.group_id.in_(list(states)),
            GroupEnrollment.status == EnrollmentStatus.WAITLISTED,
        )
        .group_by(GroupEnrollment.group_id)
    ):
        states[group_id].waitlisted = count
    return [states[g.id] for g in groups]


@dataclass
class Member:
    enrollment: GroupEnrollment
    patient: Patient
    visible: bool  # the actor may see the identity (access policy)


def members(
    session: Session, actor: User | None, group: GroupProgram
) -> tuple[list[Member], list[Member]]:
    """(participants, waitlist in order) for the practice's page; identity per the access policy."""
    rows = session.execute(
        select(GroupEnrollment, Patient, access.identity_visible_clause(session, actor))
        .join(Patient, Patient.id == GroupEnrollment.patient_id)
        .where(
            GroupEnrollment.group_id == group.id,
            GroupEnrollment.status.in_([EnrollmentStatus.ENROLLED, EnrollmentStatus.WAITLISTED]),
        )
        .order_by(GroupEnrollment.position, GroupEnrollment.created_at, GroupEnrollment.id)
    ).all()
    enrolled = [Member(e, p, bool(v)) for e, p, v in rows if e.status == EnrollmentStatus.ENROLLED]
    waiting = [Member(e, p, bool(v)) for e, p, v in rows if e.status == EnrollmentStatus.WAITLISTED]
    return enrolled, waiting


def get_patient_enrollment(
    session: Session, user: User | None, enrollment_id: int
) -> GroupEnrollment:
    enrollment = session.get(GroupEnrollment, enrollment_id)
    if (
        user is None
        or user.role != Role.PATIENT
        or enrollment is None
        or enrollment.patient is None
        or enrollment.patient.user_id != user.id
    ):
        raise NotFound(N_("Nicht gefunden."))
    return enrollment


def get_patient_group_offer(session: Session, user: User | None, offer_id: int) -> Offer:
    """One of the logged-in patient's own group offers; anything else is NotFound."""
    offer = session.get(Offer, offer_id)
    if (
        user is None
        or user.role != Role.PATIENT
        or offer is None
        or offer.group_id is None
        or offer.patient is None
        or offer.patient.user_id != user.id
    ):
        raise NotFound(N_("Nicht gefunden."))
    return offer


def patient_groups(
    session: Session, patient: Patient, now: dt.datetime
) -> tuple[list[Offer], list[GroupEnrollment]]:
    """The patient's answerable group offers and their enrolments (newest first)."""
    open_offers = [
        o
        for o in session.scalars(
            select(Offer)
            .join(GroupProgram, GroupProgram.id == Offer.group_id)
            .where(
                Offer.patient_id == patient.id,
                Offer.status == OfferStatus.PENDING,
                Offer.expires_at > now,
                GroupProgram.status.in_(LIVE_GROUP),
            )
            .options(selectinload(Offer.group).selectinload(GroupProgram.practice))
            .order_by(Offer.expires_at, Offer.id)
        )
        if now < offer_deadline(o.group)
    ]
    enrollments = list(
        session.scalars(
            select(GroupEnrollment)
            .join(GroupProgram, GroupProgram.id == GroupEnrollment.group_id)
            .where(GroupEnrollment.patient_id == patient.id)
            .options(selectinload(GroupEnrollment.group).selectinload(GroupProgram.practice))
            .order_by(GroupProgram.first_session_at.desc(), GroupEnrollment.id.desc())
            .limit(50)
        )
    )
    return open_offers, enrollments
