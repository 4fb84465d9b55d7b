"""The one confidentiality policy: who may see a patient's identity, clinical data, or only
the pseudonymous summary, and who may act for them. Every view and export asks here;
templates only display what a view computed.

- The patient: everything about themselves.
- A therapist (approved) of practice P: identity and clinical data while the patient waits
  on P's list, or has a booking (an accepted offer) or a group place at P — that for a time
  only: while the appointment is ahead and ``IDENTITY_ACCESS_DAYS`` (default 90) after it
  (a group: after its last session); then the practice sees the pseudonym only
  (``_accepted_at``). A pool patient within reach is shown only as a pseudonymous summary
  until they accept an offer from P.
- A secretariat user: identity, contact, lists, offers, bookings of callers on the lists of
  the practices they serve (bookings and group places within the same time), in the regional
  pool, or registered by the secretariat - never clinical data (the intake is write-only for
  them).
- An admin: account identity for support, never clinical data.

Where a name may not be shown, a patient is a stable pseudonym (``pseudonym``). What the
practice side shows of a slot's candidates (``show_candidates``) is decided here too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.orm import Session, aliased

from ptmatch import localtime
from ptmatch.db import settings_of
from ptmatch.domain import audit
from ptmatch.models import (
    AuditEvent,
    Booking,
    EntryStatus,
    GroupEnrollment,
    GroupProgram,
    GroupStatus,
    Offer,
    OfferStatus,
    Patient,
    PatientClinical,
    PatientStatus,
    Practice,
    RegisteredVia,
    Role,
    SecretariatAssignment,
    Slot,
    Therapist,
    User,
    WaitlistEntry,
)


@dataclass(frozen=True)
class Access:
    identity: bool = False  # name, contact, birth date
    clinical: bool = False  # problem areas, description, urgency, notes
    summary: bool = False  # pseudonymous summary (pool view)
    act: bool = False  # change lists, answer offers, book on their behalf

    @property
    def any(self) -> bool:
        return self.identity or self.summary


NONE = Access()


def therapist_of(session: Session, user: User) -> Therapist | None:
    if user.role != Role.THERAPIST:
        return None
    return session.scalar(select(Therapist).where(Therapist.user_id == user.id))


def served_practice_ids(session: Session, user: User) -> set[int]:
    if user.role != Role.SECRETARY:
        return set()
    return set(
        session.scalars(
            select(SecretariatAssignment.practice_id).where(
                SecretariatAssignment.user_id == user.id
            )
        )
    )


def _on_active_list(session: Session, patient_id: int, practice_ids: set[int] | None) -> bool:
    q = select(WaitlistEntry.id).where(
        WaitlistEntry.patient_id == patient_id, WaitlistEntry.status == EntryStatus.ACTIVE
    )
    if practice_ids is None:
        q = q.where(WaitlistEntry.practice_id.is_(None))
    else:
        if not practice_ids:
            return False
        q = q.where(WaitlistEntry.practice_id.in_(practice_ids))
    return session.scalar(select(exists(q))) or False


# A group runs for at most this many weekly sessions (groups.GROUP_MAX_SESSIONS).
_GROUP_MAX_WEEKS = 52


def identity_since(session: Session, now: dt.datetime) -> dt.datetime:
    """A booking or group place gives the practice the patient's identity while its
    appointment (a group: its last session) is at or after this moment:
    ``IDENTITY_ACCESS_DAYS`` before `now`."""
    return now - dt.timedelta(days=settings_of(session).IDENTITY_ACCESS_DAYS)


def _group_ends_at(group: GroupProgram) -> dt.datetime:
    """When a group place stops being a live relationship: its last session (a cancelled
    group: its planned first session)."""
    if group.status == GroupStatus.CANCELLED:
        return group.first_session_at
    return localtime.same_time_weeks_later(group.first_session_at, max(group.session_count, 1) - 1)


def _recent_groups(session: Session, practice_ids: set[int], since: dt.datetime) -> list[int]:
    """The groups of these practices whose places still give access (`_group_ends_at` at or
    after `since`). The last session is a wall-clock date, so this is decided here, for the
    few groups of a practice that started within a year, and handed to SQL as ids."""
    if not practice_ids:
        return []
    rows = session.scalars(
        select(GroupProgram).where(
            GroupProgram.practice_id.in_(practice_ids),
            GroupProgram.first_session_at >= since - dt.timedelta(weeks=_GROUP_MAX_WEEKS),
        )
    )
    return [group.id for group in rows if _group_ends_at(group) >= since]


def _accepted_at_clause(
    session: Session, patient_id, practice_ids: set[int], now: dt.datetime
) -> ColumnElement[bool]:
    """A booking (or an accepted offer) for an appointment at one of these practices that is
    ahead or at most IDENTITY_ACCESS_DAYS ago, or a place (or waitlist place) in one of their
    groups within the same time after its last session. `patient_id`: a value or a column."""
    if not practice_ids:
        return false()
    since = identity_since(session, now)
    # Aliases: the clause also sits in queries that select these tables themselves (a
    # group's members), where a plain subquery would correlate away its own FROM.
    booking, offer, slot, enrollment = (
        aliased(Booking),
        aliased(Offer),
        aliased(Slot),
        aliased(GroupEnrollment),
    )
    booked = (
        select(booking.id)
        .join(slot, slot.id == booking.slot_id)
        .where(
            booking.patient_id == patient_id,
            slot.practice_id.in_(practice_ids),
            slot.start_at >= since,
        )
    )
    accepted = (
        select(offer.id)
        .join(slot, slot.id == offer.slot_id)
        .where(
            offer.patient_id == patient_id,
            offer.status == OfferStatus.ACCEPTED,
            slot.practice_id.in_(practice_ids),
            slot.start_at >= since,
        )
    )
    grouped = select(enrollment.id).where(
        enrollment.patient_id == patient_id,
        enrollment.group_id.in_(_recent_groups(session, practice_ids, since) or [-1]),
    )
    return or_(exists(booked), exists(accepted), exists(grouped))


def _accepted_at(
    session: Session, patient_id: int, practice_ids: set[int], now: dt.datetime
) -> bool:
    """A booking or a group place at one of these practices that still gives access."""
    if not practice_ids:
        return False
    return bool(session.scalar(select(_accepted_at_clause(session, patient_id, practice_ids, now))))


def patient_access(
    session: Session, actor: User | None, patient: Patient, now: dt.datetime
) -> Access:
    """What `actor` may see of and do for `patient` at `now`."""
    if actor is None or not actor.is_enabled:
        return NONE
    if actor.role == Role.PATIENT:
        own = patient.user_id == actor.id
        return Access(identity=own, clinical=own, act=own)
    if patient.status == PatientStatus.DELETED:
        return NONE  # erased: only the anonymised shell is left, nobody on staff looks at it
    if actor.role == Role.THERAPIST:
        therapist = therapist_of(session, actor)
        if therapist is None or not therapist.is_approved or therapist.practice_id is None:
            return NONE
        practice = {therapist.practice_id}
        if _on_active_list(session, patient.id, practice) or _accepted_at(
            session, patient.id, practice, now
        ):
            return Access(identity=True, clinical=True, act=True)
        if therapist.practice.accepts_pool and _on_active_list(session, patient.id, None):
            return Access(summary=True)
        return NONE
    if actor.role == Role.SECRETARY:
        served = served_practice_ids(session, actor)
        if (
            _on_active_list(session, patient.id, served)
            or _accepted_at(session, patient.id, served, now)
            or _on_active_list(session, patient.id, None)
            or patient.registered_via == RegisteredVia.SECRETARIAT
        ):
            return Access(identity=True, act=True)
        return NONE
    if actor.role == Role.ADMIN:
        return Access(identity=True)
    return NONE


def can_view_clinical(
    session: Session, actor: User | None, patient: Patient, now: dt.datetime
) -> bool:
    return patient_access(session, actor, patient, now).clinical


def load_clinical(
    session: Session, actor: User, patient: Patient, now: dt.datetime, purpose: str = "view"
) -> PatientClinical | None:
    """The clinical record if the policy allows it, audited; otherwise None."""
    if not can_view_clinical(session, actor, patient, now):
        return None
    if actor.role != Role.PATIENT:
        practice_id = None
        therapist = therapist_of(session, actor)
        if therapist is not None:
            practice_id = therapist.practice_id
        audit.record(
            session,
            now,
            "clinical.viewed",
            actor,
            patient_id=patient.id,
            practice_id=practice_id,
            purpose=purpose,
        )
    return session.get(PatientClinical, patient.id)


def pseudonym(patient_id: int, secret: str) -> str:
    """A stable short pseudonym for a patient whose name may not be shown (the pool): the same
    in every list and view. An HMAC of the id under a server secret, so nobody can walk the
    sequential ids to find out who is behind a pseudonym."""
    mac = hmac.new(secret.encode(), f"ptmatch-pool:{patient_id}".encode(), hashlib.sha256)
    return "P-" + mac.hexdigest()[:8].upper()


def pseudonym_of(session: Session, patient_id: int) -> str:
    """`pseudonym` under this edge's secret (PSEUDONYM_SECRET, else SECRET_KEY)."""
    settings = settings_of(session)
    return pseudonym(patient_id, settings.PSEUDONYM_SECRET or settings.SECRET_KEY)


def patient_label(session: Session, actor: User | None, patient: Patient, now: dt.datetime) -> str:
    """The name where the policy lets `actor` see the identity, else the pseudonym."""
    if patient_access(session, actor, patient, now).identity:
        return patient.full_name
    return pseudonym_of(session, patient.id)


def _runs_practice(session: Session, actor: User | None, practice_id: int) -> bool:
    if actor is None or not actor.is_enabled:
        return False
    if actor.role == Role.THERAPIST:
        therapist = therapist_of(session, actor)
        return (
            therapist is not None and therapist.is_approved and therapist.practice_id == practice_id
        )
    return actor.role == Role.SECRETARY and practice_id in served_practice_ids(session, actor)


def sees_clinical_reasons(session: Session, actor: User | None, practice_id: int) -> bool:
    """Match reasons drawn from the intake (problem areas, urgency) are clinical data: an
    approved therapist of the practice sees them; the secretariat never (the intake is
    write-only for them), nor anyone else."""
    return (
        actor is not None
        and actor.role == Role.THERAPIST
        and _runs_practice(session, actor, practice_id)
    )


class ShownCandidate(NamedTuple):
    candidate: Any  # a matching.Candidate
    label: str  # the name (the practice's own list) or the pseudonym (the pool)
    reasons: list  # the score's reasons the actor may see


def show_candidates(
    session: Session, actor: User | None, now: dt.datetime, slot: Slot, ranked
) -> list[ShownCandidate]:
    """What the manual pick shows of `ranked` candidates for `slot` (audited as
    ``slot.candidates_viewed``): names of patients on the slot's practice list to those who
    run the practice, pseudonyms for the pool (and for anyone else); the reasons drawn from
    the intake only to those who may see them (``sees_clinical_reasons``)."""
    ranked = list(ranked or [])
    named = _runs_practice(session, actor, slot.practice_id)
    names = dict(
        session.execute(
            select(Patient.id, Patient.first_name + " " + Patient.last_name).where(
                Patient.id.in_([c.patient_id for c in ranked] or [-1])
            )
        ).all()
    )
    clinical = sees_clinical_reasons(session, actor, slot.practice_id)
    audit.record(
        session,
        now,
        "slot.candidates_viewed",
        actor,
        practice_id=slot.practice_id,
        slot_id=slot.id,
        shown=len(ranked),
    )
    return [
        ShownCandidate(
            c,
            names[c.patient_id]
            if named and c.on_practice_list
            else pseudonym_of(session, c.patient_id),
            [r for r in c.reasons if clinical or not r.clinical],
        )
        for c in ranked
    ]


def sees_deadlines(actor: User | None) -> bool:
    """The PTV 11 deadline of an urgent patient (a date, never the intake behind it): the
    practices, and the secretariat, which must phone them in time (issue 13)."""
    return actor is not None and actor.is_enabled and actor.role in (Role.SECRETARY, Role.THERAPIST)


class ShownOffer(NamedTuple):
    offer: Any  # an Offer
    status: Any  # its effective status
    label: str  # the name (the practice's own list, or booked) or the pseudonym (the pool)
    reasons: list  # (msgid, params, points) the actor may see


def show_offers(
    session: Session, actor: User | None, now: dt.datetime, slot: Slot, sent
) -> list[ShownOffer]:
    """What the slot page shows of the offers sent: each with its status, its deadline and
    the reasons it was made — names for patients on the practice's own list (or who booked,
    while the appointment is within ``identity_since``) to those who run the practice,
    pseudonyms for the pool; reasons drawn from the intake only to those who may see them."""
    sent = list(sent or [])
    named = _runs_practice(session, actor, slot.practice_id)
    ids = [o.patient_id for o in sent] or [-1]
    listed = set(
        session.scalars(
            select(WaitlistEntry.patient_id).where(
                WaitlistEntry.patient_id.in_(ids),
                WaitlistEntry.practice_id == slot.practice_id,
            )
        )
    )
    names = dict(
        session.execute(
            select(Patient.id, Patient.first_name + " " + Patient.last_name).where(
                Patient.id.in_(ids)
            )
        ).all()
    )
    clinical = sees_clinical_reasons(session, actor, slot.practice_id)
    booked_in_time = slot.start_at >= identity_since(session, now)
    shown = []
    for o in sent:
        known = o.patient_id in listed or (o.status == OfferStatus.ACCEPTED and booked_in_time)
        reasons = [
            (msgid, params or {}, points)
            for msgid, params, points, is_clinical in (o.reasons or [])
            if clinical or not is_clinical
        ]
        label = names[o.patient_id] if named and known else pseudonym_of(session, o.patient_id)
        shown.append(ShownOffer(o, o.effective_status(now), label, reasons))
    return shown


def can_write_clinical_intake(
    session: Session, actor: User | None, patient: Patient, now: dt.datetime
) -> bool:
    """The secretariat may record the intake (write-only) for callers it may act for."""
    access = patient_access(session, actor, patient, now)
    return access.clinical or (actor is not None and actor.role == Role.SECRETARY and access.act)


# --- the same policy as SQL, for lists and searches --------------------------------------


def _active_entry_at(practice_ids: set[int] | None) -> ColumnElement[bool]:
    q = select(WaitlistEntry.id).where(
        WaitlistEntry.patient_id == Patient.id, WaitlistEntry.status == EntryStatus.ACTIVE
    )
    if practice_ids is None:
        q = q.where(WaitlistEntry.practice_id.is_(None))
    else:
        if not practice_ids:
            return false()
        q = q.where(WaitlistEntry.practice_id.in_(practice_ids))
    return exists(q)


def identity_visible_clause(
    session: Session, actor: User | None, now: dt.datetime
) -> ColumnElement[bool]:
    """A WHERE clause on `Patient`: the rows whose identity `actor` may see at `now`.

    Mirrors `patient_access(...).identity` (a test holds the two together), so searches and
    lists filter in SQL instead of asking row by row.
    """
    if actor is None or not actor.is_enabled:
        return false()
    if actor.role == Role.PATIENT:
        return Patient.user_id == actor.id
    not_deleted = Patient.status != PatientStatus.DELETED
    if actor.role == Role.THERAPIST:
        therapist = therapist_of(session, actor)
        if therapist is None or not therapist.is_approved or therapist.practice_id is None:
            return false()
        practice = {therapist.practice_id}
        return and_(
            not_deleted,
            or_(
                _active_entry_at(practice),
                _accepted_at_clause(session, Patient.id, practice, now),
            ),
        )
    if actor.role == Role.SECRETARY:
        served = served_practice_ids(session, actor)
        return and_(
            not_deleted,
            or_(
                _active_entry_at(served),
                _accepted_at_clause(session, Patient.id, served, now),
                _active_entry_at(None),
                Patient.registered_via == RegisteredVia.SECRETARIAT,
            ),
        )
    if actor.role == Role.ADMIN:
        return not_deleted
    return false()


# --- transparency for the patient ---------------------------------------------------------

# Audit actions that count as "a practice looked at your record". Views of a patient's
# detail page by a practice should be audited as "patient.viewed" with practice_id.
RECORD_VIEW_ACTIONS = ("clinical.viewed", "patient.viewed")


def record_views_for_patient(
    session: Session, patient: Patient, limit: int = 100
) -> list[tuple[str, dt.datetime]]:
    """Which practices viewed this patient's record and when, newest first.

    Built from the audit trail; views by the secretariat or admins (who never see clinical
    data) are not practice views and are not listed.
    """
    rows = session.execute(
        select(Practice.name, AuditEvent.at)
        .join(Practice, Practice.id == AuditEvent.practice_id)
        .where(AuditEvent.patient_id == patient.id, AuditEvent.action.in_(RECORD_VIEW_ACTIONS))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ).all()
    return [(name, at) for name, at in rows]


# --- the practice API ------------------------------------------------------------------------


def api_admin_practice_id(session: Session, actor: User | None) -> int | None:
    """The practice whose API keys and webhooks `actor` may manage: an approved therapist of
    an active practice who logs in with a second factor. Everyone else: None."""
    if actor is None or actor.role != Role.THERAPIST or not actor.has_totp:
        return None
    therapist = therapist_of(session, actor)
    if therapist is None or not therapist.is_approved or therapist.practice_id is None:
        return None
    practice = session.get(Practice, therapist.practice_id)
    return practice.id if practice is not None and practice.is_active else None


def api_booking_view(booking: Booking, patient: Patient | None) -> dict[str, Any]:
    """What the API shows of a booking: its id, state and the patient's initials. Never a
    name, a contact or anything clinical."""
    initials = patient.initials if patient is not None else ""
    return {"id": booking.id, "status": str(booking.status), "initials": initials}


# --- statistics ---------------------------------------------------------------------------------

# Figure groups of ptmatch.domain.stats. "urgency" splits the time to care by the PTV 11 urgent
# flag, which is clinical: only the practice's own clinicians see it per practice; an admin sees
# it for the whole region only (aggregated over the network, small counts suppressed).
STATS_SLOT_FIGURES = frozenset({"slots", "offers", "attendance", "places"})
STATS_ALL_FIGURES = STATS_SLOT_FIGURES | {"time_to_care", "urgency", "lists", "checkins"}


def stats_figures(
    session: Session, actor: User | None, practice_id: int | None, therapist_id: int | None = None
) -> frozenset[str]:
    """The figure groups ``actor`` may see for a scope (region: ``practice_id`` None). A figure
    not in the set is not computed at all. ``actor`` None is the system (CLI report, simulator).

    - admin: the region with every group; one practice without the urgency split; one
      therapist only slot-side figures (offers, attendance, places).
    - an approved therapist: their own practice with every group (their own view), one
      therapist of it slot-side only; nothing of other practices or of the region.
    - everyone else (patients, the secretariat): nothing.
    """
    base = STATS_SLOT_FIGURES if therapist_id is not None else STATS_ALL_FIGURES
    if actor is None:
        return base
    if not actor.is_enabled:
        return frozenset()
    if actor.role == Role.ADMIN:
        return base if practice_id is None else base - {"urgency"}
    if actor.role == Role.THERAPIST and practice_id is not None:
        if _runs_practice(session, actor, practice_id):
            return base
    return frozenset()


def stats_suppresses_small_counts(
    session: Session, actor: User | None, practice_id: int | None
) -> bool:
    """Counts below 5 are shown as "< 5" everywhere except in a practice's own view (its
    therapists, or the system writing that practice's own report)."""
    if practice_id is None:
        return True
    if actor is None:
        return False
    return not (actor.role == Role.THERAPIST and _runs_practice(session, actor, practice_id))
