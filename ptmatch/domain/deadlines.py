"""PTV 11 deadlines at risk: urgent patients whose 4-week target for a first appointment
(the form's date + 28 days, ``matching.DEADLINE_DAYS``) is at most ``AT_RISK_DAYS`` away or
has passed, while they still wait (active).

The secretariat sees this list too, although urgency is clinical: the policy
(``access.sees_deadlines``) lets it see the date by which someone must be offered a place
— name, phone and that date, nothing of the intake — so it can phone in time. The
practices see the same patients of their own list in the workbench (filter "deadline
within 7 days", sorted by deadline).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from ptmatch.domain import access, matching
from ptmatch.models import Patient, PatientClinical, PatientStatus, User

BERLIN = ZoneInfo("Europe/Berlin")
AT_RISK_DAYS = 7
LIMIT = 200


@dataclass(frozen=True)
class AtRisk:
    patient_id: int
    name: str
    phone: str
    deadline: dt.date
    days_left: int  # negative: passed


def at_risk_clause(today: dt.date, days: int = AT_RISK_DAYS):
    """Urgent, active, and the deadline at most `days` away (or passed)."""
    return and_(
        Patient.status == PatientStatus.ACTIVE,
        PatientClinical.urgent.is_(True),
        Patient.ptv11_date <= today + dt.timedelta(days=days - matching.DEADLINE_DAYS),
    )


def at_risk(session: Session, now: dt.datetime, actor: User | None) -> list[AtRisk]:
    """The at-risk patients `actor` may see, the nearest deadline first."""
    if not access.sees_deadlines(actor):
        return []
    today = now.astimezone(BERLIN).date()
    rows = session.execute(
        select(Patient.id, Patient.first_name, Patient.last_name, Patient.phone, Patient.ptv11_date)
        .join(PatientClinical, PatientClinical.patient_id == Patient.id)
        .where(at_risk_clause(today), access.identity_visible_clause(session, actor, now))
        .order_by(Patient.ptv11_date, Patient.id)
        .limit(LIMIT)
    ).all()
    result = []
    for r in rows:
        deadline = r.ptv11_date + dt.timedelta(days=matching.DEADLINE_DAYS)
        result.append(
            AtRisk(
                patient_id=r.id,
                name=f"{r.first_name} {r.last_name}".strip(),
                phone=r.phone,
                deadline=deadline,
                days_left=(deadline - today).days,
            )
        )
    return result
