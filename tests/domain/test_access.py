"""The one confidentiality policy: identity, clinical, summary and act, per role; its SQL
twin for lists; clinical loads audited; the patient's view of who looked at their record."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from ptmatch.domain import access, audit
from ptmatch.models import (
    AuditEvent,
    EntryStatus,
    Patient,
    PatientStatus,
    RegisteredVia,
    Role,
    User,
    WaitlistEntry,
)
from tests.conftest import NOW
from tests.factories import (
    make_patient,
    make_practice,
    make_secretary,
    make_slot,
    make_therapist,
    make_user,
)


@pytest.fixture
def world(session):
    x = make_practice(session, name="Praxis X")
    y = make_practice(session, name="Praxis Y")
    w = {
        "x": x,
        "y": y,
        "ther_x": make_therapist(session, x).user,
        "ther_y": make_therapist(session, y).user,
        "sec_x": make_secretary(session, [x]),
        "sec_y": make_secretary(session, [y]),
        "admin": make_user(session, Role.ADMIN),
        "a": make_patient(session, lists=[x]),
        "b": make_patient(session, lists=[y]),
        "pool": make_patient(session, pool=True),
        "phoned": make_patient(session, registered_via=RegisteredVia.SECRETARIAT),
    }
    w["user_a"] = session.get(User, w["a"].user_id)
    return w


def test_patient_sees_only_themselves(session, world):
    own = access.patient_access(session, world["user_a"], world["a"], NOW)
    assert own.identity and own.clinical and own.act
    assert access.patient_access(session, world["user_a"], world["b"], NOW) == access.NONE


def test_therapist_of_the_list_sees_identity_and_clinical(session, world):
    acc = access.patient_access(session, world["ther_x"], world["a"], NOW)
    assert acc.identity and acc.clinical and acc.act


def test_therapist_of_another_practice_sees_nothing(session, world):
    assert access.patient_access(session, world["ther_y"], world["a"], NOW) == access.NONE


def test_therapist_sees_pool_patient_only_as_summary(session, world):
    acc = access.patient_access(session, world["ther_y"], world["pool"], NOW)
    assert acc == access.Access(summary=True)


def test_unapproved_therapist_sees_nothing(session, world):
    pending = make_therapist(session, world["x"], approved_at=None)
    assert access.patient_access(session, pending.user, world["a"], NOW) == access.NONE


def test_secretary_serving_the_practice_sees_identity_never_clinical(session, world):
    acc = access.patient_access(session, world["sec_x"], world["a"], NOW)
    assert acc.identity and acc.act and not acc.clinical and not acc.summary


def test_secretary_not_serving_the_practice_sees_nothing(session, world):
    assert access.patient_access(session, world["sec_y"], world["a"], NOW) == access.NONE


@pytest.mark.parametrize("key", ["pool", "phoned"])
def test_every_secretary_sees_pool_and_phoned_in_callers(session, world, key):
    acc = access.patient_access(session, world["sec_y"], world[key], NOW)
    assert acc.identity and acc.act and not acc.clinical


def test_removed_entry_no_longer_gives_access(session, world):
    entry = session.scalar(select(WaitlistEntry).where(WaitlistEntry.patient_id == world["a"].id))
    entry.status = EntryStatus.REMOVED
    session.flush()
    assert access.patient_access(session, world["sec_x"], world["a"], NOW) == access.NONE
    assert access.patient_access(session, world["ther_x"], world["a"], NOW) == access.NONE


def test_admin_sees_identity_never_clinical(session, world):
    acc = access.patient_access(session, world["admin"], world["a"], NOW)
    assert acc.identity and not acc.clinical and not acc.act


def test_disabled_actor_sees_nothing(session, world):
    world["ther_x"].is_enabled = False
    assert access.patient_access(session, world["ther_x"], world["a"], NOW) == access.NONE


def test_deleted_patient_is_invisible_to_staff(session, world):
    world["a"].status = PatientStatus.DELETED
    for key in ("ther_x", "sec_x", "admin"):
        assert access.patient_access(session, world[key], world["a"], NOW) == access.NONE


def test_load_clinical_audits_a_therapist_view_with_the_practice(session, now, world):
    clinical = access.load_clinical(session, world["ther_x"], world["a"], now)
    assert clinical is not None
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "clinical.viewed"))
    assert (event.actor_id, event.patient_id, event.practice_id) == (
        world["ther_x"].id,
        world["a"].id,
        world["x"].id,
    )


@pytest.mark.parametrize("key", ["sec_x", "admin", "ther_y"])
def test_load_clinical_refuses_non_clinicians_without_audit(session, now, world, key):
    assert access.load_clinical(session, world[key], world["a"], now) is None
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "clinical.viewed")) is None


def test_secretary_may_write_but_not_read_the_intake(session, world):
    assert access.can_write_clinical_intake(session, world["sec_x"], world["a"], NOW)
    assert not access.can_view_clinical(session, world["sec_x"], world["a"], NOW)
    assert not access.can_write_clinical_intake(session, world["sec_y"], world["a"], NOW)


def test_sql_clause_agrees_with_the_policy_for_every_pair(session, world):
    patients = list(session.scalars(select(Patient)))
    actors = [world[k] for k in ("user_a", "ther_x", "ther_y", "sec_x", "sec_y", "admin")]
    world["b"].status = PatientStatus.DELETED
    session.flush()
    for actor in actors:
        visible = set(
            session.scalars(
                select(Patient.id).where(access.identity_visible_clause(session, actor, NOW))
            )
        )
        expected = {
            p.id for p in patients if access.patient_access(session, actor, p, NOW).identity
        }
        assert visible == expected, actor.role


def test_record_views_list_practices_not_secretariat_or_admin(session, now, world):
    access.load_clinical(session, world["ther_x"], world["a"], now)
    access.load_clinical(session, world["sec_x"], world["a"], now)
    later = now + dt.timedelta(hours=2)
    audit.record(
        session,
        later,
        "patient.viewed",
        world["ther_x"],
        patient_id=world["a"].id,
        practice_id=world["x"].id,
    )
    audit.record(
        session, later, "secretariat.caller_viewed", world["sec_x"], patient_id=world["a"].id
    )
    session.flush()
    views = access.record_views_for_patient(session, world["a"])
    assert views == [("Praxis X", later), ("Praxis X", now)]


def test_record_views_are_only_the_patients_own(session, now, world):
    access.load_clinical(session, world["ther_y"], world["b"], now)
    session.flush()
    assert access.record_views_for_patient(session, world["a"]) == []


# --- what the manual pick shows of a slot's candidates ------------------------------------------


def _reason(label, clinical):
    from ptmatch.domain.matching import Reason

    return Reason(label, 1, clinical=clinical)


def _candidate(patient, on_list):
    from ptmatch.domain.matching import Candidate

    return Candidate(
        patient_id=patient.id,
        score=2,
        on_practice_list=on_list,
        waiting_since=NOW,
        distance_km=None,
        reasons=[_reason("Dringlich (PTV 11)", True), _reason("Video", False)],
    )


@pytest.mark.parametrize(
    ("who", "named", "clinical"),
    [
        ("ther_x", True, True),  # the slot's own practice: names of its list, the intake's reasons
        ("sec_x", True, False),  # the secretariat serving it: names, never clinical reasons
        ("ther_y", False, False),  # anyone else: pseudonyms only, no clinical reasons
        ("sec_y", False, False),
        ("admin", False, False),
    ],
)
def test_shown_candidates_follow_the_policy(session, world, who, named, clinical):
    slot = make_slot(
        session, make_therapist(session, world["x"]), start_at=NOW + dt.timedelta(days=2)
    )
    shown = access.show_candidates(
        session,
        world[who],
        NOW,
        slot,
        [_candidate(world["a"], True), _candidate(world["pool"], False)],
    )
    listed, pooled = shown
    assert listed.label == (
        world["a"].full_name if named else access.pseudonym_of(session, world["a"].id)
    )
    assert pooled.label == access.pseudonym_of(
        session, world["pool"].id
    )  # the pool stays pseudonymous
    assert [r.clinical for r in listed.reasons] == ([True, False] if clinical else [False])
    assert access.sees_clinical_reasons(session, world[who], slot.practice_id) is clinical
    (event,) = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "slot.candidates_viewed")
    )
    assert event.details == {"slot_id": slot.id, "shown": 2} and event.practice_id == world["x"].id
