"""Administration: deactivation ends sessions, 2FA reset, staff invitations, secretariat
assignments, practice switch, and the audit log's filters and pages."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from ptmatch.domain import admin, audit
from ptmatch.domain.errors import InvalidInput, NotAllowed
from ptmatch.models import AuditEvent, OutboxMessage, Role, SecretariatAssignment
from tests.factories import make_patient, make_practice, make_secretary, make_therapist, make_user


@pytest.fixture
def boss(session):
    return make_user(session, Role.ADMIN, email="boss@example.org")


def _actions(session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_deactivate_disables_and_ends_every_session(session, now, boss):
    user = make_user(session, Role.THERAPIST)
    version = user.session_version
    admin.deactivate_user(session, now, boss, user)
    assert user.is_enabled is False
    assert user.session_version == version + 1
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "account.deactivated"))
    assert (event.actor_id, event.subject_user_id) == (boss.id, user.id)


def test_admin_cannot_deactivate_themselves(session, now, boss):
    with pytest.raises(InvalidInput):
        admin.deactivate_user(session, now, boss, boss)
    assert boss.is_enabled


def test_only_admins_may_deactivate(session, now):
    secretary = make_secretary(session)
    victim = make_user(session)
    with pytest.raises(NotAllowed):
        admin.deactivate_user(session, now, secretary, victim)
    assert victim.is_enabled


def test_reactivate_clears_the_lockout(session, now, boss):
    user = make_user(session, is_enabled=False, locked_until=now + dt.timedelta(minutes=5))
    admin.reactivate_user(session, now, boss, user)
    assert user.is_enabled and user.locked_until is None
    assert _actions(session) == ["account.reactivated"]


def test_reset_two_factor_removes_totp_and_ends_sessions(session, now, boss):
    user = make_user(session, Role.SECRETARY)
    version = user.session_version
    admin.reset_two_factor(session, now, boss, user)
    assert not user.has_totp and user.totp_secret is None
    assert user.session_version == version + 1
    assert _actions(session) == ["account.2fa_reset"]


def test_invite_staff_sends_a_set_password_link(session, now, boss):
    user = admin.invite_staff(
        session, now, boss, email="New.Sec@Example.org", role=Role.SECRETARY, display_name="Neu"
    )
    assert (
        user.role == Role.SECRETARY
        and user.password_hash is None
        and user.email == "new.sec@example.org"
    )
    mail = session.scalar(select(OutboxMessage).where(OutboxMessage.user_id == user.id))
    assert mail.kind == "set_password"
    assert "/auth/set-password/" in mail.body_text
    assert "account.created" in _actions(session)


def test_invite_refuses_patient_or_therapist_roles(session, now, boss):
    with pytest.raises(InvalidInput) as err:
        admin.invite_staff(session, now, boss, email="t@example.org", role=Role.THERAPIST)
    assert err.value.field == "role"


def test_set_served_practices_adds_and_removes_with_audit(session, now, boss):
    x, y, z = make_practice(session), make_practice(session), make_practice(session)
    secretary = make_secretary(session, [x, y])
    admin.set_served_practices(session, now, boss, secretary, {y.id, z.id})
    served = set(
        session.scalars(
            select(SecretariatAssignment.practice_id).where(
                SecretariatAssignment.user_id == secretary.id
            )
        )
    )
    assert served == {y.id, z.id}
    events = session.execute(
        select(AuditEvent.action, AuditEvent.practice_id).order_by(AuditEvent.id)
    ).all()
    assert events == [("role.secretariat_assigned", z.id), ("role.secretariat_unassigned", x.id)]


def test_set_served_practices_refuses_unknown_practice(session, now, boss):
    secretary = make_secretary(session)
    with pytest.raises(InvalidInput):
        admin.set_served_practices(session, now, boss, secretary, {999999})


def test_set_served_practices_only_for_secretariat_accounts(session, now, boss):
    therapist = make_therapist(session)
    with pytest.raises(InvalidInput):
        admin.set_served_practices(session, now, boss, therapist.user, set())


def test_pending_therapists_lists_only_unapproved(session):
    waiting = make_therapist(session, approved_at=None)
    make_therapist(session)
    assert admin.pending_therapists(session) == [waiting]


def test_set_practice_active_is_audited(session, now, boss):
    practice = make_practice(session)
    admin.set_practice_active(session, now, boss, practice, False)
    admin.set_practice_active(session, now, boss, practice, False)
    assert practice.is_active is False
    assert _actions(session) == ["practice.deactivated"]


def test_list_practices_counts_therapists(session):
    practice = make_practice(session, name="AAA Praxis")
    make_therapist(session, practice)
    make_therapist(session, practice)
    rows = admin.list_practices(session)
    assert (practice, 2) in rows


def test_list_users_filters_by_role_and_text(session):
    make_user(session, Role.SECRETARY, email="anna@sek.example")
    make_user(session, Role.SECRETARY, email="bert@sek.example")
    make_user(session, Role.PATIENT, email="anna@patient.example")
    page = admin.list_users(session, role=Role.SECRETARY, q="ANNA")
    assert [u.email for u in page.items] == ["anna@sek.example"]
    assert page.total == 1


def test_list_users_treats_like_wildcards_literally(session):
    make_user(session, email="a_b@example.org")
    make_user(session, email="axb@example.org")
    assert [u.email for u in admin.list_users(session, q="a_b").items] == ["a_b@example.org"]


# --- audit log ----------------------------------------------------------------------------------


@pytest.fixture
def log(session, now, boss):
    other = make_user(session, Role.SECRETARY, email="sec@example.org")
    patient = make_patient(session)
    audit.record(
        session, now - dt.timedelta(days=2), "offer.accepted", other, patient_id=patient.id
    )
    audit.record(
        session, now - dt.timedelta(days=1), "offer.declined", other, patient_id=patient.id
    )
    audit.record(session, now, "account.deactivated", boss, subject_user_id=other.id)
    audit.record(session, now, "scheduler.swept", None)
    session.flush()
    return {"other": other, "patient": patient}


def test_audit_log_newest_first_with_emails(session, log, boss):
    page = admin.audit_log(session)
    assert page.total == 4
    first = page.items[0]
    assert first.event.action in ("scheduler.swept", "account.deactivated")
    deact = next(r for r in page.items if r.event.action == "account.deactivated")
    assert (deact.actor_email, deact.subject_email) == ("boss@example.org", "sec@example.org")


def test_audit_log_filters_by_actor_email_or_id(session, log):
    assert admin.audit_log(session, actor="SEC@").total == 2
    assert admin.audit_log(session, actor=str(log["other"].id)).total == 2
    assert [r.event.action for r in admin.audit_log(session, actor="system").items] == [
        "scheduler.swept"
    ]


def test_audit_log_filters_by_action_prefix(session, log):
    assert {r.event.action for r in admin.audit_log(session, action="offer.").items} == {
        "offer.accepted",
        "offer.declined",
    }


def test_audit_log_filters_by_patient(session, log):
    assert admin.audit_log(session, patient_id=log["patient"].id).total == 2
    assert admin.audit_log(session, patient_id=log["patient"].id + 1000).total == 0


def test_audit_log_date_range_uses_berlin_days(session, now, log):
    berlin_day = dt.date(2026, 11, 23)  # now - 1 day = 23 Nov 10:00 Berlin
    page = admin.audit_log(session, date_from=berlin_day, date_to=berlin_day)
    assert [r.event.action for r in page.items] == ["offer.declined"]


def test_audit_log_date_range_includes_late_evening_in_berlin(session, now, boss):
    # 23:30 Berlin on the 24th is 22:30 UTC: it belongs to the 24th.
    audit.record(session, dt.datetime(2026, 11, 24, 22, 30, tzinfo=dt.UTC), "late", boss)
    session.flush()
    assert (
        admin.audit_log(
            session, date_from=dt.date(2026, 11, 24), date_to=dt.date(2026, 11, 24)
        ).total
        == 1
    )
    assert admin.audit_log(session, date_from=dt.date(2026, 11, 25)).total == 0


def test_audit_log_pages(session, now, boss):
    for i in range(7):
        audit.record(session, now + dt.timedelta(minutes=i), f"a.{i}", boss)
    session.flush()
    first = admin.audit_log(session, per_page=3)
    third = admin.audit_log(session, per_page=3, page=3)
    assert first.pages == 3 and first.has_next and not first.has_prev
    assert [r.event.action for r in first.items] == ["a.6", "a.5", "a.4"]
    assert [r.event.action for r in third.items] == ["a.0"] and not third.has_next
