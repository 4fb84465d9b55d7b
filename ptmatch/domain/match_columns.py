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

**Who keeps them.** A listener on every session refreshes, after every flush, the patients
whose inputs the flush touched, and only the column groups a change can move (by class and
by the attributes changed): a patient's status, consents or account, or an account's
verification or enabled flag → ``matchable``; a pool entry (practice NULL, before or after)
→ ``in_pool``; a window → the ``avail_*`` masks; a new patient → all. The flags are computed
and written by one ``UPDATE … RETURNING`` (no read before); the masks by one SELECT and one
UPDATE. A flush that itself makes a patient inactive or takes a consent away writes
``matchable = false`` in the same UPDATE of the row and needs no statement of its own. So
any writer through the ORM keeps them. A writer that changes inputs with a bulk ``UPDATE``
or ``DELETE`` calls ``refresh_match_columns(session, ids[, groups])`` afterwards (patient
erasure, the simulator). Bulk loaders (the bench generator) compute them with the pure
functions below.
``tests/domain/test_match_columns.py`` walks every writer and compares with the source.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, bindparam, case, event, false, inspect, or_, select, true, update
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
WINDOW_INPUTS = ("weekday", "start_min", "end_min", "patient_id")


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

# The column groups, each refreshed only when one of its inputs changed.
MATCHABLE = "matchable"
IN_POOL = "in_pool"
AVAIL = "avail"
GROUPS = frozenset({MATCHABLE, IN_POOL, AVAIL})

# The two flags as SQL over the patient's row (correlated to ``patients``), the same rule as
# ``is_matchable``: the UPDATE computes and writes them in one statement, no read before.
_ACCOUNT_OK = (
    select(User.id)
    .where(
        User.id == Patient.user_id,
        User.email_verified_at.is_not(None),
        User.is_enabled.is_(True),
    )
    .exists()
)
FLAG_SQL = {
    MATCHABLE: and_(
        Patient.status == PatientStatus.ACTIVE,
        Patient.consent_health_at.is_not(None),
        Patient.consent_rules_at.is_not(None),
        or_(
            _ACCOUNT_OK,
            and_(Patient.user_id.is_(None), Patient.consent_recorded_by_id.is_not(None)),
        ),
    ),
    IN_POOL: select(WaitlistEntry.id)
    .where(
        WaitlistEntry.patient_id == Patient.id,
        WaitlistEntry.practice_id.is_(None),
        WaitlistEntry.status == EntryStatus.ACTIVE,
    )
    .exists(),
}


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


def _refresh_flags(
    session: Session, ids: set[int], groups: Iterable[str], known: dict[int, Patient]
) -> set[int]:
    """One UPDATE: set the flags of these groups from the source rows where they differ;
    returns the patients changed."""
    names = sorted(groups)
    values = {name: case((FLAG_SQL[name], true()), else_=false()) for name in names}
    differs = or_(*(getattr(Patient, name).is_distinct_from(values[name]) for name in names))
    table = Patient.__table__
    rows = session.connection().execute(
        update(table)
        .where(table.c.id.in_(sorted(ids)), differs)
        .values(values)
        .returning(table.c.id, *(table.c[name] for name in names))
    )
    changed = set()
    for row in rows:
        changed.add(row[0])
        _set_loaded(session, row[0], dict(zip(names, map(bool, row[1:]), strict=True)), known)
    return changed


def _refresh_avail(session: Session, ids: set[int], known: dict[int, Patient]) -> set[int]:
    """One SELECT (stored masks and windows together), one UPDATE of the masks that differ."""
    now_stored: dict[int, tuple[int, ...]] = {}
    windows: dict[int, list[tuple[int, int, int]]] = {}
    for pid, *rest in session.execute(
        select(
            Patient.id,
            *(getattr(Patient, name) for name in AVAIL_COLUMNS),
            Availability.weekday,
            Availability.start_min,
            Availability.end_min,
        )
        .outerjoin(Availability, Availability.patient_id == Patient.id)
        .where(Patient.id.in_(sorted(ids)))
    ):
        now_stored[pid] = tuple(rest[:7])
        if rest[7] is not None:
            windows.setdefault(pid, []).append(tuple(rest[7:]))
    changed = []
    for pid, masks in now_stored.items():
        wanted = dict(zip(AVAIL_COLUMNS, day_masks(windows.get(pid, ())), strict=True))
        if tuple(wanted.values()) != masks:
            changed.append({"pid": pid, **wanted})
        _set_loaded(session, pid, wanted, known)
    if changed:
        table = Patient.__table__
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("pid"))
            .values({name: bindparam(name) for name in AVAIL_COLUMNS}),
            changed,
        )
    return {row["pid"] for row in changed}


def _set_loaded(session: Session, patient_id: int, values: dict, known: dict[int, Patient]) -> None:
    """The patient object of this session, when it holds one (no query), sees the values.
    `known`: the patients of the flush, a new one is not in the identity map before its end."""
    obj = known.get(patient_id)
    if obj is None:
        key = inspect(Patient).identity_key_from_primary_key((patient_id,))
        obj = session.identity_map.get(key)
    if obj is not None:
        for name, value in values.items():
            attributes.set_committed_value(obj, name, value)


def _refresh(
    session: Session, groups_of: dict[int, set[str]], known: dict[int, Patient] | None = None
) -> int:
    """Refresh each patient's groups (emits SQL only: safe inside a flush event): the flags of
    all of them in one UPDATE, the masks in one SELECT and one UPDATE. Returns the number of
    patients changed."""
    flag_ids = {pid for pid, groups in groups_of.items() if groups & FLAG_SQL.keys()}
    flag_groups = set().union(*groups_of.values()) & FLAG_SQL.keys()
    avail_ids = {pid for pid, groups in groups_of.items() if AVAIL in groups}
    known = known or {}
    changed: set[int] = set()
    if flag_ids:
        changed |= _refresh_flags(session, flag_ids, flag_groups, known)
    if avail_ids:
        changed |= _refresh_avail(session, avail_ids, known)
    return len(changed)


def refresh_match_columns(
    session: Session, patient_ids: Iterable[int], groups: Iterable[str] = GROUPS
) -> int:
    """For writers that change inputs with bulk statements: flush, then recompute these
    groups (all by default) of these patients. Returns the number of patients changed."""
    wanted = set(groups)
    if not wanted <= GROUPS:
        raise ValueError(f"unknown groups: {sorted(wanted - GROUPS)}")
    session.flush()
    return _refresh(session, {pid: wanted for pid in set(patient_ids)})


# --- the listener --------------------------------------------------------------------------------


def _changed(obj, names) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _leaves_unmatchable(obj: Patient) -> bool:
    """Whether the flush itself writes a status other than active or takes a consent away:
    then ``matchable`` is false whatever the account says, and needs no query."""
    state = inspect(obj)
    status = state.attrs["status"].history.added
    if status and status[0] != PatientStatus.ACTIVE:
        return True
    return any(
        None in state.attrs[name].history.added
        for name in ("consent_health_at", "consent_rules_at")
    )


def _may_be_pooled(obj: WaitlistEntry) -> bool:
    """Whether the entry is, or was before this flush, a pool entry (practice_id NULL): a
    practice's list has no say in ``in_pool``. Unknown (not loaded) counts as yes."""
    history = inspect(obj).attrs["practice_id"].history
    values = (*history.added, *history.unchanged, *history.deleted)
    return not values or any(v is None for v in values)


def _touched(session: Session) -> tuple[list, list]:
    """([(object, groups)] for patients, windows and entries; accounts) whose match inputs the
    pending flush changes, with the column groups each change can move. Objects, not ids: a
    new row has its id only after the flush."""
    objs: list = []
    users: list = []
    for obj in session.new:
        if isinstance(obj, Patient):
            objs.append((obj, GROUPS))
        elif isinstance(obj, Availability):
            objs.append((obj, {AVAIL}))
        elif isinstance(obj, WaitlistEntry) and _may_be_pooled(obj):
            objs.append((obj, {IN_POOL}))
    for obj in session.dirty:
        if isinstance(obj, Patient) and _changed(obj, PATIENT_INPUTS):
            if _leaves_unmatchable(obj):
                obj.matchable = False  # written by the flush's own UPDATE of the row
            else:
                objs.append((obj, {MATCHABLE}))
        elif isinstance(obj, Availability) and _changed(obj, WINDOW_INPUTS):
            objs.append((obj, {AVAIL}))
        elif isinstance(obj, WaitlistEntry) and _changed(obj, ENTRY_INPUTS) and _may_be_pooled(obj):
            objs.append((obj, {IN_POOL}))
        elif isinstance(obj, User) and _changed(obj, USER_INPUTS):
            users.append(obj)
    for obj in session.deleted:
        if isinstance(obj, Availability):
            objs.append((obj, {AVAIL}))
        elif isinstance(obj, WaitlistEntry) and _may_be_pooled(obj):
            objs.append((obj, {IN_POOL}))
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
    pending = session.info.setdefault("match_columns", {"objs": [], "patients": {}})
    pending["objs"].extend(objs)
    for obj, groups in objs:
        if isinstance(obj, WaitlistEntry | Availability):
            old = inspect(obj).attrs["patient_id"].history.deleted
            for pid in old:
                if pid is not None:
                    pending["patients"].setdefault(pid, set()).update(groups)
    user_ids = {u.id for u in users if u.id is not None}
    if user_ids:
        # Before the flush: a deleted account sets its patient's user_id to NULL.
        with session.no_autoflush:
            for pid in session.scalars(select(Patient.id).where(Patient.user_id.in_(user_ids))):
                pending["patients"].setdefault(pid, set()).add(MATCHABLE)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush_context) -> None:
    pending = session.info.pop("match_columns", None)
    if not pending:
        return
    groups_of = {pid: set(groups) for pid, groups in pending["patients"].items()}
    known: dict[int, Patient] = {}
    for obj, groups in pending["objs"]:
        if isinstance(obj, Patient):
            if inspect(obj).deleted:
                continue
            known[obj.id] = obj
        pid = _patient_id_of(obj)
        if pid is not None:
            groups_of.setdefault(pid, set()).update(groups)
    _refresh(session, groups_of, known)
