"""Issue 17: the hard filters' columns on the patient row (``match_columns``) equal what the
source rows say — the old joins (account, consents, pool entry) and the availability windows
— for random patients, and after every domain function that changes one of their inputs."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import and_, case, event, false, or_, select, true, update

from ptmatch.domain import (
    admin,
    filters,
    match_columns,
    offers,
    patients,
    secretariat,
    waitlist,
    workbench,
)
from ptmatch.models import (
    Availability,
    BookingStatus,
    EntryStatus,
    Patient,
    PatientStatus,
    Role,
    User,
    WaitlistEntry,
)
from ptmatch.models.patients import AVAIL_COLUMNS
from tests.conftest import NOW
from tests.domain.test_patients import a_profile, register
from tests.factories import (
    add_to_list,
    make_offer,
    make_patient,
    make_practice,
    make_secretary,
    make_slot,
    make_therapist,
    make_user,
)

# --- the oracle: the old joins, and the windows minute by minute --------------------------------

# The "matchable" filter as it was before issue 17 (without the dated pause): joins users.
OLD_MATCHABLE = and_(
    Patient.status == PatientStatus.ACTIVE,
    Patient.consent_health_at.is_not(None),
    Patient.consent_rules_at.is_not(None),
    or_(
        and_(User.id.is_not(None), User.email_verified_at.is_not(None), User.is_enabled.is_(True)),
        and_(Patient.user_id.is_(None), Patient.consent_recorded_by_id.is_not(None)),
    ),
)
IN_POOL = (
    select(WaitlistEntry.id)
    .where(
        WaitlistEntry.patient_id == Patient.id,
        WaitlistEntry.practice_id.is_(None),
        WaitlistEntry.status == EntryStatus.ACTIVE,
    )
    .exists()
)


def _minute_masks(windows) -> list[int]:
    """Bit h of a day: every minute of the half-hour h lies in some window (by brute force)."""
    covered = [set() for _ in range(7)]
    for weekday, start, end in windows:
        covered[weekday].update(range(start, end))
    return [
        sum(1 << h for h in range(48) if all(m in day for m in range(30 * h, 30 * h + 30)))
        for day in covered
    ]


def oracle(session, ids) -> dict[int, dict]:
    rows = session.execute(
        select(
            Patient.id,
            case((OLD_MATCHABLE, true()), else_=false()),
            case((IN_POOL, true()), else_=false()),
        )
        .outerjoin(User, User.id == Patient.user_id)
        .where(Patient.id.in_(list(ids)))
    ).all()
    result = {}
    for pid, matchable, in_pool in rows:
        windows = session.execute(
            select(Availability.weekday, Availability.start_min, Availability.end_min).where(
                Availability.patient_id == pid
            )
        ).all()
        result[pid] = {
            "matchable": bool(matchable),
            "in_pool": bool(in_pool),
            **dict(zip(AVAIL_COLUMNS, _minute_masks(windows), strict=True)),
        }
    return result


def assert_fresh(session, *people, step=""):
    """The stored columns (and the loaded objects) equal the oracle."""
    session.flush()
    ids = [p.id for p in people]
    expected = oracle(session, ids)
    assert match_columns.stored(session, ids) == expected, step
    for p in people:
        loaded = {name: getattr(p, name) for name in match_columns.COLUMNS}
        assert {
            k: (bool(v) if k in ("matchable", "in_pool") else v) for k, v in loaded.items()
        } == (expected[p.id]), step


# --- random patients ------------------------------------------------------------------------------

WINDOW = st.tuples(
    st.integers(0, 6),
    st.integers(0, 1439),
    st.integers(1, 600),
).map(lambda w: (w[0], w[1], min(1440, w[1] + w[2])))
ALIGNED_WINDOW = st.tuples(st.integers(0, 6), st.integers(0, 47), st.integers(1, 8)).map(
    lambda w: (w[0], 30 * w[1], min(1440, 30 * (w[1] + w[2])))
)
PATIENT = st.fixed_dictionaries(
    {
        "status": st.sampled_from(list(PatientStatus)),
        "consent_health": st.booleans(),
        "consent_rules": st.booleans(),
        "account": st.sampled_from(["verified", "unverified", "disabled", "none"]),
        "recorded": st.booleans(),
        "windows": st.lists(st.one_of(WINDOW, ALIGNED_WINDOW), max_size=5),
        "pool": st.sampled_from(["active", "removed", "none"]),
        "on_list": st.booleans(),
    }
)


SESSION = st.tuples(st.integers(0, 6), st.integers(0, 1439), st.sampled_from([25, 30, 50, 90]))


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    specs=st.lists(PATIENT, min_size=1, max_size=6),
    sessions=st.lists(SESSION, min_size=5, max_size=15),
)
def test_the_columns_equal_the_old_joins_for_random_patients(session, specs, sessions):
    nested = session.begin_nested()
    try:
        practice = make_practice(session)
        secretary = make_secretary(session, [practice])
        people = []
        for spec in specs:
            if spec["account"] == "none":
                user = None
            else:
                user = make_user(
                    session,
                    Role.PATIENT,
                    email_verified_at=None if spec["account"] == "unverified" else NOW,
                    is_enabled=spec["account"] != "disabled",
                )
            patient = make_patient(
                session,
                status=spec["status"],
                consent_health_at=NOW if spec["consent_health"] else None,
                consent_rules_at=NOW if spec["consent_rules"] else None,
                consent_recorded_by_id=secretary.id if spec["recorded"] else None,
                windows=spec["windows"],
                lists=[practice] if spec["on_list"] else [],
            )
            if user is None:
                patient.user_id = None
            else:
                patient.user_id = user.id
            if spec["pool"] != "none":
                entry = add_to_list(session, patient, None)
                if spec["pool"] == "removed":
                    entry.status = EntryStatus.REMOVED
            people.append(patient)
        assert_fresh(session, *people)
        # The Python rule (patients.is_matchable, without a pause) says what the SQL wrote.
        for p in people:
            user = session.get(User, p.user_id) if p.user_id is not None else None
            assert match_columns.is_matchable(
                p.status,
                p.consent_health_at,
                p.consent_rules_at,
                user is not None,
                user is not None and user.email_verified_at is not None,
                user is not None and bool(user.is_enabled),
                p.consent_recorded_by_id,
            ) == bool(match_columns.stored(session, [p.id])[p.id]["matchable"])
        # The availability filter on the masks: the windows cover every minute of every
        # half-hour the session touches.
        ids = [p.id for p in people]
        for weekday, start, minutes in sessions:
            end = start + minutes
            got = set(
                session.scalars(
                    select(Patient.id).where(
                        Patient.id.in_(ids),
                        filters.availability_condition(weekday, start, end),
                    )
                )
            )
            want = {
                p.id
                for p, spec in zip(people, specs, strict=True)
                if end <= 1440 and _covers(spec["windows"], weekday, start, end)
            }
            assert got == want, (weekday, start, minutes)
    finally:
        nested.rollback()


def _covers(windows, weekday, start, end) -> bool:
    minutes = set()
    for day, w_start, w_end in windows:
        if day == weekday:
            minutes.update(range(w_start, w_end))
    first, last = start // 30 * 30, -(-end // 30) * 30
    return all(m in minutes for m in range(first, last))


def test_on_the_grid_the_mask_answers_as_the_old_one_window_rule(session):
    """Windows from the patients' grid (merged two-hour blocks) and sessions on the half-hour:
    the masks give what the old "one window covers the whole session" EXISTS gave."""
    cells = ["0-480", "0-600", "2-960", "4-1080", "5-480", "5-720"]
    windows = patients.windows_from_grid(cells)
    patient = make_patient(session, windows=windows)
    for weekday in range(7):
        for start in range(0, 1440, 30):
            for minutes in (25, 50, 100):
                end = start + minutes
                old = (
                    select(Availability.id)
                    .where(
                        Availability.patient_id == Patient.id,
                        Availability.weekday == weekday,
                        Availability.start_min <= start,
                        Availability.end_min >= end,
                    )
                    .exists()
                )
                query = select(Patient.id).where(Patient.id == patient.id)
                assert session.scalar(query.where(old)) == session.scalar(
                    query.where(filters.availability_condition(weekday, start, end))
                ), (weekday, start, minutes)


def test_day_masks_and_needed_masks():
    assert match_columns.day_masks([(0, 480, 600)])[0] == 0b1111 << 16
    # Adjacent and overlapping windows count together; a ragged edge drops its half-hour.
    assert match_columns.day_masks([(1, 480, 540), (1, 540, 615)])[1] == 0b1111 << 16
    assert match_columns.day_masks([(2, 485, 600)])[2] == 0b111 << 17
    assert match_columns.needed_mask(480, 530) == 0b11 << 16
    assert match_columns.needed_mask(1400, 1450) is None  # past midnight: nobody


# --- each kind of change refreshes its group, and no more -----------------------------------------


class Statements:
    """The SQL a block sends on the session's connection (flattened to one line each)."""

    def __init__(self, session):
        self.engine = session.get_bind()
        self.seen: list[str] = []

    def _hook(self, _conn, _cursor, statement, _params, _context, _executemany):
        self.seen.append(" ".join(statement.split()))

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._hook)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._hook)

    def mentioning(self, table: str) -> list[str]:
        return [s for s in self.seen if table in s]


def _matchable_patient(session, **overrides):
    patient = make_patient(session, windows=[(0, 480, 600)], **overrides)
    session.flush()
    assert_fresh(session, patient)
    return patient


def test_a_status_change_alone_moves_matchable(session):
    patient = _matchable_patient(session)
    assert patient.matchable
    for status in (PatientStatus.PAUSED, PatientStatus.ACTIVE, PatientStatus.BOOKED):
        patient.status = status
        with Statements(session) as sql:
            session.flush()
        assert_fresh(session, patient, step=status)
        assert patient.matchable == (status == PatientStatus.ACTIVE)
        # Neither the windows nor the lists are read for it.
        assert not sql.mentioning("availability") and not sql.mentioning("waitlist"), sql.seen
    # Leaving "active" is decided by the row itself: one UPDATE of the patient, no other.
    patient.status = PatientStatus.ACTIVE
    session.flush()
    patient.status = PatientStatus.PAUSED
    with Statements(session) as sql:
        session.flush()
    assert sql.seen == [s for s in sql.seen if s.startswith("UPDATE patients SET status")]
    assert len(sql.seen) == 1, sql.seen
    assert_fresh(session, patient, step="paused again")


def test_a_consent_or_account_change_alone_moves_matchable(session):
    patient = _matchable_patient(session)
    patient.consent_rules_at = None
    assert_fresh(session, patient, step="consent withdrawn")
    assert not patient.matchable
    patient.consent_rules_at = NOW
    assert_fresh(session, patient, step="consent given")
    assert patient.matchable
    patient.user.is_enabled = False
    assert_fresh(session, patient, step="account disabled")
    assert not patient.matchable
    patient.user.is_enabled = True
    assert_fresh(session, patient, step="account enabled")
    assert patient.matchable
    patient.user.email_verified_at = None
    assert_fresh(session, patient, step="account unverified")
    assert not patient.matchable
    # A phone registration: no account, the consent recorded by the secretariat.
    secretary = make_secretary(session)
    patient.user_id = None
    patient.consent_recorded_by_id = secretary.id
    assert_fresh(session, patient, step="no account, recorded consent")
    assert patient.matchable
    patient.consent_recorded_by_id = None
    assert_fresh(session, patient, step="no account, no recorded consent")
    assert not patient.matchable


def test_a_window_change_moves_the_masks_and_nothing_else(session):
    patient = _matchable_patient(session)
    other = _matchable_patient(session)
    window = session.scalar(select(Availability).where(Availability.patient_id == patient.id))
    steps = [
        ("longer", lambda: setattr(window, "end_min", 720)),
        ("other day", lambda: setattr(window, "weekday", 3)),
        (
            "one more",
            lambda: session.add(
                Availability(patient_id=patient.id, weekday=6, start_min=0, end_min=1440)
            ),
        ),
        ("moved to another patient", lambda: setattr(window, "patient_id", other.id)),
        ("deleted", lambda: session.delete(window)),
    ]
    for step, change in steps:
        change()
        with Statements(session) as sql:
            session.flush()
        assert_fresh(session, patient, other, step=step)
        # The flags are not recomputed for a window.
        assert not sql.mentioning("waitlist") and not sql.mentioning("users"), (step, sql.seen)
    assert patient.avail_6 == (1 << 48) - 1 and patient.avail_0 == patient.avail_3 == 0
    assert other.avail_0 and not other.avail_3


def test_an_entry_change_moves_in_pool_and_a_practice_list_nothing(session):
    practice = make_practice(session)
    patient = _matchable_patient(session)
    other = _matchable_patient(session)
    pool = add_to_list(session, patient, None)
    assert_fresh(session, patient, step="joined the pool")
    assert patient.in_pool
    for status in (EntryStatus.REMOVED, EntryStatus.ACTIVE):
        pool.status = status
        with Statements(session) as sql:
            session.flush()
        assert_fresh(session, patient, step=status)
        assert patient.in_pool == (status == EntryStatus.ACTIVE)
        assert not sql.mentioning("availability"), sql.seen
    # An entry on a practice's list has no say in in_pool: no statement about the patient.
    listed = add_to_list(session, patient, practice)
    listed.status = EntryStatus.REMOVED
    with Statements(session) as sql:
        session.flush()
    assert not sql.mentioning("patients"), sql.seen
    assert_fresh(session, patient, step="practice entry removed")
    # The pool entry moves to a practice's list, to another patient, back to the pool; gone.
    pool.practice_id = make_practice(session).id
    assert_fresh(session, patient, step="pool entry to a practice")
    assert not patient.in_pool
    listed.practice_id = None  # the other way round: now in the pool, but removed
    assert_fresh(session, patient, step="removed practice entry to the pool")
    assert not patient.in_pool
    listed.status = EntryStatus.ACTIVE
    assert_fresh(session, patient, step="removed pool entry active again")
    assert patient.in_pool
    listed.patient_id = other.id
    assert_fresh(session, patient, other, step="pool entry to another patient")
    assert other.in_pool and not patient.in_pool
    session.delete(listed)
    assert_fresh(session, patient, other, step="pool entry deleted")
    assert not other.in_pool


def test_a_bulk_writer_refreshes_the_groups_it_names(session):
    patient = _matchable_patient(session)
    add_to_list(session, patient, None)
    session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.patient_id == patient.id)
        .values(status=EntryStatus.REMOVED)
        .execution_options(synchronize_session=False)
    )
    session.execute(Availability.__table__.delete().where(Availability.patient_id == patient.id))
    assert match_columns.refresh_match_columns(session, [patient.id], [match_columns.IN_POOL])
    assert not patient.in_pool and patient.avail_0  # the masks wait for their own refresh
    assert match_columns.refresh_match_columns(session, [patient.id], [match_columns.AVAIL])
    assert_fresh(session, patient, step="bulk")
    assert match_columns.refresh_match_columns(session, [patient.id]) == 0  # all fresh
    with pytest.raises(ValueError):
        match_columns.refresh_match_columns(session, [patient.id], ["avail_0"])


# --- every writer ---------------------------------------------------------------------------------


def test_every_writer_keeps_the_columns(session, now, settings):
    practice = make_practice(session)
    other = make_practice(session)
    therapist = make_therapist(session, practice)
    make_therapist(session, other)
    boss = make_user(session, Role.ADMIN)
    secretary = make_secretary(session, [practice, other])

    # Registration (self): unverified, so not matchable yet; the pool holds the patient.
    result = register(session, now)
    patient, user = result.patient, result.user
    assert_fresh(session, patient, step="register_patient")
    assert not patient.matchable
    # Verification.
    user.email_verified_at = None
    patients.send_verification(session, now, user)
    patients.verify_email(session, now, _token(session, user))
    assert_fresh(session, patient, step="verify_email")
    assert patient.matchable
    # Profile edit with other windows.
    patients.update_profile(session, now, patient, a_profile(windows=[(3, 600, 840)]), patient.user)
    assert_fresh(session, patient, step="update_profile")
    assert patient.avail_3 == 0b11111111 << 20 and patient.avail_0 == 0
    # Lists: join a practice, leave the pool, join the pool again.
    waitlist.join_list(session, now, patient, practice, actor=user)
    assert_fresh(session, patient, step="join_list practice")
    assert not patient.in_pool
    pool_entry = waitlist.join_list(session, now, patient, None, actor=user)
    assert_fresh(session, patient, step="join_list pool")
    assert patient.in_pool
    waitlist.leave_list(session, now, patient, pool_entry, actor=user)
    assert_fresh(session, patient, step="leave_list pool")
    assert not patient.in_pool
    waitlist.join_list(session, now, patient, None, actor=user)
    assert_fresh(session, patient, step="join_list pool again")
    assert patient.in_pool
    # The practice refers the patient on, and removes them at the other practice.
    own = _entry(session, patient, practice)
    workbench.refer_entry(session, now, therapist.user, own.id, other.id)
    assert_fresh(session, patient, step="refer_entry")
    # Pause and resume.
    patients.pause(session, now, patient, dt.date(2026, 12, 20), user, settings=settings)
    assert_fresh(session, patient, step="pause")
    assert not patient.matchable
    patients.reactivate(session, now, patient, user)
    assert_fresh(session, patient, step="reactivate")
    assert patient.matchable
    # The admin disables and enables the account.
    admin.deactivate_user(session, now, boss, user)
    assert_fresh(session, patient, step="deactivate_user")
    assert not patient.matchable
    admin.reactivate_user(session, now, boss, user)
    assert_fresh(session, patient, step="reactivate_user")
    assert patient.matchable
    # Booking: booked, off every list; released: active and on the lists again.
    waitlist.join_list(session, now, patient, practice, actor=user)
    slot = make_slot(session, therapist)
    booking = offers.accept_offer(session, now, make_offer(session, slot, patient), user, settings)
    assert_fresh(session, patient, step="accept_offer")
    assert not patient.matchable and not patient.in_pool
    offers.release_booking(session, now, therapist.user, booking)
    assert_fresh(session, patient, step="release_booking")
    assert patient.matchable and patient.in_pool
    # No-shows pause the search.
    later = slot.start_at + dt.timedelta(hours=2)
    for _ in range(max(1, settings.NO_SHOW_PAUSE_AFTER)):
        slot = make_slot(session, therapist, start_at=slot.start_at + dt.timedelta(days=1))
        booking = offers.accept_offer(
            session, now, make_offer(session, slot, patient), user, settings
        )
        assert_fresh(session, patient, step="accept_offer again")
        later = slot.start_at + dt.timedelta(hours=2)
        offers.mark_booking(session, later, therapist.user, booking, BookingStatus.NO_SHOW)
        assert_fresh(session, patient, step="mark_booking no_show")
    # The secretariat registers a caller without e-mail (recorded consent) and moves lists.
    caller = secretariat.register_caller(
        session,
        now,
        secretary,
        profile=a_profile(first_name="Rita", windows=[(1, 480, 600)]),
        email=None,
        consent_health=True,
        consent_rules=True,
    )
    assert_fresh(session, caller, step="register_caller")
    assert caller.matchable
    entry = secretariat.put_on_list(session, now, secretary, caller, practice.id)
    assert_fresh(session, caller, step="put_on_list")
    pooled = _entry(session, caller, None) or secretariat.put_on_list(
        session, now, secretary, caller, None
    )
    assert_fresh(session, caller, step="put_on_list pool")
    assert caller.in_pool
    secretariat.take_off_list(session, now, secretary, caller, pooled.id)
    assert_fresh(session, caller, step="take_off_list")
    assert not caller.in_pool
    workbench.remove_entry(session, now, therapist.user, entry.id, "other")
    assert_fresh(session, caller, step="remove_entry")
    secretariat.update_caller_profile(
        session, now, secretary, caller, a_profile(first_name="Rita", windows=[(4, 0, 1440)])
    )
    assert_fresh(session, caller, step="update_caller_profile")
    assert caller.avail_4 == (1 << 48) - 1
    # Erasure: nothing left to match (a caller without an account: only the bulk statements
    # of the erasure change the windows and lists), and a patient with one.
    secretariat.put_on_list(session, now, secretary, caller, None)
    assert_fresh(session, caller, step="put_on_list pool again")
    assert caller.in_pool and caller.avail_4
    patients.erase_personal_data(session, now, caller, None, reason="request", settings=settings)
    assert_fresh(session, caller, step="erase_personal_data (caller)")
    assert not caller.matchable and not caller.in_pool and caller.avail_4 == 0
    patients.erase_personal_data(session, now, patient, None, reason="request", settings=settings)
    assert_fresh(session, patient, step="erase_personal_data")
    assert not patient.matchable and not patient.in_pool and patient.avail_3 == 0
    # A patient deletes the own account.
    third = register(session, now, email="dritte@example.org").patient
    patients.delete_account(
        session, now, third.user, third, "ein sehr gutes passwort", settings=settings
    )
    assert_fresh(session, third, step="delete_account")
    assert not third.matchable


def _entry(session, patient, practice):
    return session.scalar(
        select(WaitlistEntry).where(
            WaitlistEntry.patient_id == patient.id,
            WaitlistEntry.practice_id == practice.id
            if practice is not None
            else WaitlistEntry.practice_id.is_(None),
            WaitlistEntry.status == EntryStatus.ACTIVE,
        )
    )


def _token(session, user) -> str:
    from ptmatch.models import OutboxMessage
    from tests.domain.test_patients import _token_from

    mail = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.user_id == user.id)
        .order_by(OutboxMessage.id.desc())
    ).first()
    return _token_from(mail, "/patient/verify/")
