"""The one confidentiality policy: who may see a patient's identity, clinical data, or only
the pseudonymous summary, and who may act for them. Every view and export asks here;
templates only display what a view computed.

- The patient: everything about themselves.
- A therapist (approved) of practice P: identity and clinical data while the patient waits
  on P's list, or has accepted an offer / holds a booking at P. A pool patient within reach
  is shown only as a pseudonymous summary until they accept an offer from P.
- A secretariat user: identity, contact, lists, offers, bookings of callers on the lists of
  the practices they serve, in the regional pool, or registered by the secretariat - never
  clinical data (the intake is write-only for them).
- An admin: account identity for support, never clinical data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from ptmatch.domain import audit
from ptmatch.models import (
    Booking,
    EntryStatus,
    Offer,
    OfferStatus,
    Patient,
    PatientClinical,
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
    return set(session.scalars(select(SecretariatAssignment.practice_id).where(SecretariatAssignment.user_id == user.id)))


def _on_active_list(session: Session, patient_id: int, practice_ids: set[int] | None) -> bool:
    q = select(WaitlistEntry.id).where(WaitlistEntry.patient_id == patient_id, WaitlistEntry.status == EntryStatus.ACTIVE)
    if practice_ids is None:
        q = q.where(WaitlistEntry.practice_id.is_(None))
    else:
        if not practice_ids:
            return False
        q = q.where(WaitlistEntry.practice_id.in_(practice_ids))
    return session.scalar(select(exists(q))) or False


def _accepted_at(session: Session, patient_id: int, practice_ids: set[int]) -> bool:
    """Accepted an offer from, or holds a booking at, one of these practices."""
    if not practice_ids:
        return False
    booked = select(Booking.id).join(Slot, Slot.id == Booking.slot_id).where(
        Booking.patient_id == patient_id, Slot.practice_id.in_(practice_ids))
    accepted = select(Offer.id).join(Slot, Slot.id == Offer.slot_id).where(
        Offer.patient_id == patient_id, Offer.status == OfferStatus.ACCEPTED, Slot.practice_id.in_(practice_ids))
    return bool(session.scalar(select(exists(booked))) or session.scalar(select(exists(accepted))))


def patient_access(session: Session, actor: User | None, patient: Patient) -> Access:
    """What `actor` may see of and do for `patient`."""
    if actor is None or not actor.is_enabled:
        return NONE
    if actor.role == Role.PATIENT:
        own = patient.user_id == actor.id
        return Access(identity=own, clinical=own, act=own)
    if actor.role == Role.THERAPIST:
        therapist = therapist_of(session, actor)
        if therapist is None or not therapist.is_approved or therapist.practice_id is None:
            return NONE
        practice = {therapist.practice_id}
        if _on_active_list(session, patient.id, practice) or _accepted_at(session, patient.id, practice):
            return Access(identity=True, clinical=True, act=True)
        if therapist.practice.accepts_pool and _on_active_list(session, patient.id, None):
            return Access(summary=True)
        return NONE
    if actor.role == Role.SECRETARY:
        served = served_practice_ids(session, actor)
        if (
            _on_active_list(session, patient.id, served)
            or _accepted_at(session, patient.id, served)
            or _on_active_list(session, patient.id, None)
            or patient.registered_via == RegisteredVia.SECRETARIAT
        ):
            return Access(identity=True, act=True)
        return NONE
    if actor.role == Role.ADMIN:
        return Access(identity=True)
    return NONE


def can_view_clinical(session: Session, actor: User | None, patient: Patient) -> bool:
    return patient_access(session, actor, patient).clinical


def load_clinical(session: Session, actor: User, patient: Patient, now: dt.datetime,
                  purpose: str = "view") -> PatientClinical | None:
    """The clinical record if the policy allows it, audited; otherwise None."""
    if not can_view_clinical(session, actor, patient):
        return None
    if actor.role != Role.PATIENT:
        practice_id = None
        therapist = therapist_of(session, actor)
        if therapist is not None:
            practice_id = therapist.practice_id
        audit.record(session, now, "clinical.viewed", actor, patient_id=patient.id, practice_id=practice_id,
                     purpose=purpose)
    return session.get(PatientClinical, patient.id)


def can_write_clinical_intake(session: Session, actor: User | None, patient: Patient) -> bool:
    """The secretariat may record the intake (write-only) for callers it may act for."""
    access = patient_access(session, actor, patient)
    return access.clinical or (actor is not None and actor.role == Role.SECRETARY and access.act)
