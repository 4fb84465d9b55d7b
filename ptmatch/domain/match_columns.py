"""The hard filters' columns on the patient row (issue 17), computed in one place.

Matching asks, for every patient in a practice's reach: active, consents, a usable account,
in the pool, free at the slot's time? Three of those answers live in other tables (the
account in ``users``, the pool entry in ``waitlist_entries``, the weekly windows in
``availability``). This module copies them onto ``patients`` so that one covering index
(``ix_patients_match``) decides every hard filter but the clinical exclusions without a join:

- ``matchable``: active, both consents, and a verified, enabled account or a phone
  registration whose consent the secretariat recorded (the dated pause stays a test on
  ``paused_until``);
- ``in_pool``: an active entry in the regional pool;
- ``avail_0`` … ``avail_6``: per weekday (0 = Monday) a mask of the half-hours the windows
  cover (bit h: minutes [30h, 30h + 30), Berlin wall clock).

**Who keeps them.** ``refresh(session, patient_ids)`` recomputes the columns from the
source rows. It runs by itself after every flush for the patients whose inputs the flush
touched (a listener on every session: new, changed or deleted patients, availability
windows, waitlist entries, and accounts whose verification or enabled flag changed), so any
writer through the ORM keeps them. A writer that changes inputs with a bulk ``UPDATE`` or
``DELETE`` calls ``refresh_match_columns(session, ids)`` afterwards (patient erasure, the
simulator). Bulk loaders (the bench generator) compute them with the pure functions below.
``tests/domain/test_match_columns.py`` walks every writer and compares with the source.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, event, inspect, select, update
from sqlalchemy.orm import Session, attributes

from ptmatch.models import (
    Availability,
    EntryStatus,
    Patient,
    PatientStatus,
    User,
    WaitlistEntry,
)
from ptmatch.models.patients import AVAIL_COLUMNS

HALF_HOUR = 30
DAY_HALF_HOURS = 24 * 60 // HALF_HOUR  # 48 bits of a weekday's mask
COLUMNS = ("matchable", "in_pool", *AVAIL_COLUMNS)
# What a flush must change for the columns to need a refresh.
PATIENT_INPUTS = (
    "status",
    "consent_health_at",
    "consent_rules_at",
    "consent_recorded_by_id",
    "user_id",
)
USER_INPUTS = ("email_verified_at", "is_enabled")
ENTRY_INPUTS = ("status", "practice_id", "patient_id")


# --- the pure computation ------------------------------------------------------------------------


def is_matchable(
    status,
    consent_health_at,
    consent_rules_at,
    has_user: bool,
    user_verified: bool,
    user_enabled: bool,
    consent_recorded_by_id,
) -> bool:
    """Active, both consents, and a verified enabled account or a recorded phone consent."""
    if status != PatientStatus.ACTIVE or consent_health_at is None or consent_rules_at is None:
        return False
    if has_user:
        return bool(user_verified and user_enabled)
    return consent_recorded_by_id is not None


def day_masks(windows: Iterable[tuple[int, int, int]]) -> tuple[int, ...]:
    """Seven half-hour masks from weekly windows (weekday, start_min, end_min): bit h of day d
    is set when the windows of day d together cover the whole half-hour h."""
    spans: dict[int, list[list[int]]] = {}
    for weekday, start, end in sorted(windows):
        merged = spans.setdefault(weekday, [])
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    masks = [0] * 7
    for weekday, merged in spans.items():
        if not 0 <= weekday <= 6:
            continue
        for start, end in merged:
            first = -(-start // HALF_HOUR)  # the first half-hour that starts inside
            last = min(end, 24 * 60) // HALF_HOUR  # the first that does not end inside
            for h in range(first, last):
                masks[weekday] |= 1 << h
    return tuple(masks)


def needed_mask(start_min: int, end_min: int) -> int | None:
    """The half-hours a session from `start_min` to `end_min` touches (None: it runs past
    midnight, which no window covers)."""
    if end_min > 24 * 60 or start_min < 0 or end_min <= start_min:
        return None
    first = start_min // HALF_HOUR
    last = -(-end_min // HALF_HOUR)
    return sum(1 << h for h in range(first, last))


# --- keeping them --------------------------------------------------------------------------------


def compute(session: Session, patient_ids: Iterable[int]) -> dict[int, dict]:
    """The columns of these patients as the source rows say (the oracle of the tests too)."""
    ids = sorted(set(patient_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(
            Patient.id,
            Patient.status,
            Patient.consent_health_at,
            Patient.consent_rules_at,
            Patient.consent_recorded_by_id,
            User.id.label("user_id"),
            User.email_verified_at,
            User.is_enabled,
        )
        .outerjoin(User, User.id == Patient.user_id)
        .where(Patient.id.in_(ids))
    ).all()
    windows: dict[int, list[tuple[int, int, int]]] = {}
    for pid, weekday, start, end in session.execute(
        select(
            Availability.patient_id,
            Availability.weekday,
            Availability.start_min,
            Availability.end_min,
        ).where(Availability.patient_id.in_(ids))
    ):
        windows.setdefault(pid, []).append((weekday, start, end))
    pooled = set(
        session.scalars(
            select(WaitlistEntry.patient_id).where(
                WaitlistEntry.patient_id.in_(ids),
                WaitlistEntry.practice_id.is_(None),
                WaitlistEntry.status == EntryStatus.ACTIVE,
            )
        )
    )
    result = {}
    for row in rows:
        values = {
            "matchable": is_matchable(
                row.status,
                row.consent_health_at,
                row.consent_rules_at,
                row.user_id is not None,
                row.email_verified_at is not None,
                bool(row.is_enabled),
                row.consent_recorded_by_id,
            ),
            "in_pool": row.id in pooled,
        }
        values.update(zip(AVAIL_COLUMNS, day_masks(windows.get(row.id, ())), strict=True))
        result[row.id] = values
    return result


def stored(session: Session, patient_ids: Iterable[int]) -> dict[int, dict]:
    """The columns as stored."""
    ids = sorted(set(patient_ids))
    cols = [getattr(Patient, name) for name in COLUMNS]
    return {
        row[0]: {
            name: (bool(v) if name in ("matchable", "in_pool") else v)
            for name, v in zip(COLUMNS, row[1:], strict=True)
        }
        for row in session.execute(select(Patient.id, *cols).where(Patient.id.in_(ids)))
    }


def _refresh(session: Session, patient_ids: Iterable[int]) -> int:
    """Write the columns that differ from the source; the loaded objects see the new values.
    Emits SQL only (safe inside a flush event). Returns the number of patients changed."""
    ids = set(patient_ids)
    if not ids:
        return 0
    wanted = compute(session, ids)
    now_stored = stored(session, wanted)
    changed = [
        {"pid": pid, **values} for pid, values in wanted.items() if now_stored.get(pid) != values
    ]
    if changed:
        table = Patient.__table__
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("pid"))
            .values({name: bindparam(name) for name in COLUMNS}),
            changed,
        )
    for pid, values in wanted.items():
        obj = _loaded(session, pid)
        if obj is not None:
            for name, value in values.items():
                attributes.set_committed_value(obj, name, value)
    return len(changed)


def _loaded(session: Session, patient_id: int) -> Patient | None:
    """The patient object of this session, when it holds one (no query)."""
    key = inspect(Patient).identity_key_from_primary_key((patient_id,))
    return session.identity_map.get(key)


def refresh_match_columns(session: Session, patient_ids: Iterable[int]) -> int:
    """For writers that change inputs with bulk statements: flush, then recompute."""
    session.flush()
    return _refresh(session, patient_ids)


# --- the listener --------------------------------------------------------------------------------


def _changed(obj, names) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _touched(session: Session) -> tuple[list, list]:
    """(patients, windows and entries; accounts) whose match inputs the pending flush changes.
    Objects, not ids: a new row has its id only after the flush."""
    objs: list = []
    users: list = []
    for obj in session.new:
        if isinstance(obj, Patient | Availability | WaitlistEntry):
            objs.append(obj)
    for obj in session.dirty:
        if isinstance(obj, Patient) and _changed(obj, PATIENT_INPUTS):
            objs.append(obj)
        elif isinstance(obj, Availability) or (
            isinstance(obj, WaitlistEntry) and _changed(obj, ENTRY_INPUTS)
        ):
            objs.append(obj)
        elif isinstance(obj, User) and _changed(obj, USER_INPUTS):
            users.append(obj)
    for obj in session.deleted:
        if isinstance(obj, Availability | WaitlistEntry):
            objs.append(obj)
        elif isinstance(obj, User):
            users.append(obj)
    return objs, users


def _patient_id_of(obj) -> int | None:
    return obj.id if isinstance(obj, Patient) else obj.patient_id


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _flush_context, _instances) -> None:
    objs, users = _touched(session)
    if not objs and not users:
        return
    pending = session.info.setdefault("match_columns", {"objs": [], "patients": set()})
    pending["objs"].extend(objs)
    for obj in objs:
        if isinstance(obj, WaitlistEntry | Availability):
            old = inspect(obj).attrs["patient_id"].history.deleted
            pending["patients"].update(pid for pid in old if pid is not None)
    user_ids = {u.id for u in users if u.id is not None}
    if user_ids:
        # Before the flush: a deleted account sets its patient's user_id to NULL.
        with session.no_autoflush:
            pending["patients"].update(
                session.scalars(select(Patient.id).where(Patient.user_id.in_(user_ids)))
            )


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush_context) -> None:
    pending = session.info.pop("match_columns", None)
    if not pending:
        return
    ids = set(pending["patients"])
    for obj in pending["objs"]:
        if isinstance(obj, Patient) and inspect(obj).deleted:
            continue
        pid = _patient_id_of(obj)
        if pid is not None:
            ids.add(pid)
    _refresh(session, ids)
