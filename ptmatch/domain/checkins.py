""" "Still looking?" check-ins, the pause that follows silence, and the purge after a long pause.

Timeline (settings, days): an active patient whose last confirmation (or registration) is
CHECKIN_DAYS old gets a mail with a one-click confirmation link (a POST page). No answer
within CHECKIN_ANSWER_DAYS → paused (no offers) and told so. Paused and silent for
PURGE_AFTER_PAUSED_DAYS → the personal data is erased; the "purged" mail is written first,
the address itself is dropped only once that mail was delivered (or gave up, or after
PURGE_NOTICE_GRACE) by `finish_purges`. A pause the patient set until a date ends on that day.

Every step is derived from stored timestamps and writes mails with deterministic dedupe
keys, so running a step twice with the same clock changes nothing the second time.
A patient without an account (phone-only) is asked by phone: the check-in is a call task in
the secretariat's queue (``ptmatch.domain.calls``), answered there, with the same timeline.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from ptmatch import links
from ptmatch.config import Settings
from ptmatch.domain import accounts, audit, calls, offers, patients
from ptmatch.models import (
    CallKind,
    OutboxMessage,
    OutboxStatus,
    Patient,
    PatientStatus,
    TokenPurpose,
    User,
)
from ptmatch.notifications import outbox, sms

BERLIN = ZoneInfo("Europe/Berlin")
BATCH = 500
PURGE_NOTICE_GRACE = dt.timedelta(days=7)


def _basis():
    """When the patient last told us they are looking (registration counts)."""
    return func.coalesce(Patient.last_confirmed_at, Patient.created_at)


def _key_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S")


def send_due_checkins(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Mail a check-in to active patients with an account who have not confirmed for
    CHECKIN_DAYS."""
    every = dt.timedelta(days=settings.CHECKIN_DAYS)
    valid = dt.timedelta(days=settings.CHECKIN_ANSWER_DAYS + settings.PURGE_AFTER_PAUSED_DAYS)
    rows = session.execute(
        select(Patient, User)
        .join(User, User.id == Patient.user_id)
        .where(
            Patient.status == PatientStatus.ACTIVE,
            _basis() <= now - every,
            or_(Patient.checkin_sent_at.is_(None), Patient.checkin_sent_at <= _basis()),
        )
        .order_by(Patient.id)
        .limit(BATCH)
    ).all()
    for patient, user in rows:
        basis = patient.last_confirmed_at or patient.created_at
        token = accounts.issue_user_token(session, now, user, TokenPurpose.CHECKIN, valid)
        outbox.enqueue(
            session,
            now,
            kind="checkin",
            to_user=user,
            link_path=links.checkin(token),
            dedupe_key=f"checkin:{patient.id}:{_key_time(basis)}",
        )
        sms.enqueue_for_patient(
            session,
            now,
            patient,
            kind="checkin",
            dedupe_key=f"checkin:{patient.id}:{_key_time(basis)}",
            link_path=links.checkin(token),
        )
        patient.checkin_sent_at = now
        audit.record(session, now, "patient.checkin_sent", None, patient_id=patient.id)
    session.flush()
    return len(rows) + call_due_checkins(session, now, settings)


def call_due_checkins(session: Session, now: dt.datetime, settings: Settings) -> int:
    """The check-in of phone-only patients: a call task, due within CHECKIN_ANSWER_DAYS."""
    every = dt.timedelta(days=settings.CHECKIN_DAYS)
    rows = session.scalars(
        select(Patient)
        .where(
            Patient.user_id.is_(None),
            Patient.status == PatientStatus.ACTIVE,
            _basis() <= now - every,
            or_(Patient.checkin_sent_at.is_(None), Patient.checkin_sent_at <= _basis()),
        )
        .order_by(Patient.id)
        .limit(BATCH)
    ).all()
    for patient in rows:
        basis = patient.last_confirmed_at or patient.created_at
        calls.open_call(
            session,
            now,
            kind=CallKind.CHECKIN,
            patient_id=patient.id,
            due_at=now + dt.timedelta(days=settings.CHECKIN_ANSWER_DAYS),
            dedupe_key=f"checkin:{patient.id}:{_key_time(basis)}",
        )
        patient.checkin_sent_at = now
        audit.record(session, now, "patient.checkin_called", None, patient_id=patient.id)
    session.flush()
    return len(rows)


def pause_unanswered(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Pause active patients who left a check-in unanswered for CHECKIN_ANSWER_DAYS."""
    answer = dt.timedelta(days=settings.CHECKIN_ANSWER_DAYS)
    rows = session.execute(
        select(Patient, User)
        .outerjoin(User, User.id == Patient.user_id)
        .where(
            Patient.status == PatientStatus.ACTIVE,
            Patient.checkin_sent_at.is_not(None),
            Patient.checkin_sent_at > _basis(),
            Patient.checkin_sent_at <= now - answer,
        )
        .order_by(Patient.id)
        .limit(BATCH)
    ).all()
    for patient, user in rows:
        patient.status = PatientStatus.PAUSED
        patient.paused_until = None
        patient.status_changed_at = now
        withdrawn = offers.withdraw_patient_offers(
            session, now, patient, reason="checkin_silence", settings=settings
        )
        if user is not None:
            outbox.enqueue(
                session,
                now,
                kind="paused",
                to_user=user,
                link_path=links.patient_home(),
                dedupe_key=f"paused:{patient.id}:{_key_time(patient.checkin_sent_at)}",
            )
        audit.record(
            session,
            now,
            "patient.checkin_paused",
            None,
            patient_id=patient.id,
            offers_withdrawn=withdrawn,
        )
    session.flush()
    return len(rows)


def resume_due_pauses(session: Session, now: dt.datetime, settings: Settings) -> int:
    """A pause the patient set until a date ends on that (Berlin) day."""
    today = now.astimezone(BERLIN).date()
    rows = session.scalars(
        select(Patient)
        .where(
            Patient.status == PatientStatus.PAUSED,
            Patient.paused_until.is_not(None),
            Patient.paused_until <= today,
        )
        .order_by(Patient.id)
        .limit(BATCH)
    ).all()
    for patient in rows:
        patient.status = PatientStatus.ACTIVE
        patient.paused_until = None
        patient.status_changed_at = now
        audit.record(session, now, "patient.pause_ended", None, patient_id=patient.id)
    session.flush()
    return len(rows)


def purge_silent(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Erase patients paused (without an end date) and silent for PURGE_AFTER_PAUSED_DAYS."""
    cutoff = now - dt.timedelta(days=settings.PURGE_AFTER_PAUSED_DAYS)
    rows = session.execute(
        select(Patient, User)
        .outerjoin(User, User.id == Patient.user_id)
        .where(
            Patient.status == PatientStatus.PAUSED,
            Patient.paused_until.is_(None),
            func.coalesce(Patient.status_changed_at, Patient.created_at) <= cutoff,
            or_(Patient.last_confirmed_at.is_(None), Patient.last_confirmed_at <= cutoff),
            or_(User.id.is_(None), User.last_login_at.is_(None), User.last_login_at <= cutoff),
        )
        .order_by(Patient.id)
        .limit(BATCH)
    ).all()
    for patient, user in rows:
        if user is not None:
            # Written before anything is erased; the address goes once it was delivered.
            outbox.enqueue(
                session,
                now,
                kind="purged",
                to_user=user,
                link_path=links.home(),
                dedupe_key=f"purged:{patient.id}",
            )
        patients.erase_personal_data(
            session,
            now,
            patient,
            None,
            reason="silent_after_pause",
            keep_address=user is not None,
            settings=settings,
        )
    session.flush()
    return len(rows)


def finish_purges(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Drop the last address of purged patients once their notice was delivered or gave up."""
    rows = session.execute(
        select(Patient, OutboxMessage)
        .outerjoin(
            OutboxMessage,
            OutboxMessage.dedupe_key == literal("purged:", String) + cast(Patient.id, String),
        )
        .where(Patient.status == PatientStatus.DELETED, Patient.user_id.is_not(None))
        .order_by(Patient.id)
        .limit(BATCH)
    ).all()
    count = 0
    for patient, message in rows:
        if (
            message is None
            or message.status in (OutboxStatus.SENT, OutboxStatus.DEAD)
            or message.created_at <= now - PURGE_NOTICE_GRACE
        ):
            patients.finish_erasure(session, now, patient)
            count += 1
    session.flush()
    return count


def run_checkins(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Every step once, in the order of the timeline. Returns how many patients changed."""
    return (
        finish_purges(session, now, settings)
        + purge_silent(session, now, settings)
        + resume_due_pauses(session, now, settings)
        + pause_unanswered(session, now, settings)
        + send_due_checkins(session, now, settings)
    )
