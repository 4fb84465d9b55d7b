"""After a restore: erasures made since the backup was taken must be made again, or the
patients who asked for them would be back. The old database's audit log names them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ptmatch.config import Settings
from ptmatch.domain import patients
from ptmatch.models import AuditEvent, Patient, PatientStatus

REASON = "reapplied_after_restore"


def erased_patient_ids(database_url: str) -> list[int]:
    """Patients the audit log of the database at `database_url` records as erased."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return sorted(
                conn.execute(
                    select(AuditEvent.patient_id)
                    .where(
                        AuditEvent.action == "patient.erased", AuditEvent.patient_id.is_not(None)
                    )
                    .distinct()
                ).scalars()
            )
    finally:
        engine.dispose()


def reapply(session: Session, now: dt.datetime, patient_ids, settings: Settings) -> list[int]:
    """Erase every listed patient this database still holds with personal data; returns
    their ids. Flushes, the caller commits."""
    done = []
    for patient_id in patient_ids:
        patient = session.get(Patient, patient_id)
        if patient is None or patient.status == PatientStatus.DELETED:
            continue
        patients.erase_personal_data(session, now, patient, None, reason=REASON, settings=settings)
        done.append(patient_id)
    return done
