"""Administration over HTTP: approval, practices, secretariat assignments, deactivation that
ends sessions at once, 2FA reset, invitations, the audit log and its CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from ptmatch.domain import audit
from ptmatch.models import (
    AuditEvent,
    OutboxMessage,
    Practice,
    Role,
    SecretariatAssignment,
    Therapist,
    User,
)
from tests.conftest import NOW
from tests.factories import make_patient, make_practice, make_secretary, make_therapist, make_user


@pytest.fixture
def boss(session):
    user = make_user(session, Role.ADMIN, email="boss@example.org")
    session.commit()
    return user


@pytest.fixture
def admin_client(client, login_as, boss):
    login_as(boss)
    return client


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def _fresh(session) -> None:
    """Read what the requests committed: end the test's own transaction (its snapshot) and
    drop loaded state (the session factory keeps it across commits)."""
    session.rollback()
    session.expire_all()


def test_approve_pending_therapist(admin_client, session):
    therapist = make_therapist(session, approved_at=None)
    therapist_id = therapist.id
    session.commit()
    assert therapist.user.email in _text(admin_client.get("/admin/therapeuten"))
    assert admin_client.post(f"/admin/therapeuten/{therapist_id}/freigeben").status_code == 302
    _fresh(session)
    assert session.get(Therapist, therapist_id).approved_at is not None


def test_assign_therapist_to_practice(admin_client, session):
    therapist = make_therapist(session, practice=None)
    therapist.practice_id = None
    practice = make_practice(session)
    ids = therapist.id, practice.id
    session.commit()
    assert (
        admin_client.post(
            f"/admin/therapeuten/{ids[0]}/praxis", data={"practice": str(ids[1])}
        ).status_code
        == 302
    )
    _fresh(session)
    assert session.get(Therapist, ids[0]).practice_id == ids[1]


def test_create_and_edit_practice(admin_client, session):
    resp = admin_client.post(
        "/admin/praxen/neu", data={"name": "Neue Praxis", "postcode": "53111", "city": "Bonn"}
    )
    assert resp.status_code == 302
    _fresh(session)
    practice = session.scalar(select(Practice).where(Practice.name == "Neue Praxis"))
    practice_id = practice.id
    session.rollback()
    resp = admin_client.post(
        f"/admin/praxen/{practice_id}", data={"name": "Umbenannt", "postcode": "53111"}
    )
    assert resp.status_code == 302
    _fresh(session)
    assert session.get(Practice, practice_id).name == "Umbenannt"


def test_practice_form_errors_stay_at_the_field(admin_client, session):
    resp = admin_client.post("/admin/praxen/neu", data={"name": "X", "postcode": "12"})
    assert resp.status_code == 200 and "fünfstellige Postleitzahl" in _text(resp)


def test_unknown_practice_is_404(admin_client):
    assert admin_client.get("/admin/praxen/999999").status_code == 404


def test_switch_practice_off(admin_client, session):
    practice_id = make_practice(session).id
    session.commit()
    admin_client.post(f"/admin/praxen/{practice_id}/deaktivieren")
    _fresh(session)
    assert session.get(Practice, practice_id).is_active is False


def test_set_served_practices(admin_client, session):
    x, y = make_practice(session), make_practice(session)
    secretary = make_secretary(session, [x])
    ids = secretary.id, x.id, y.id
    session.commit()
    page = _text(admin_client.get("/admin/sekretariate"))
    assert secretary.email in page
    resp = admin_client.post(
        f"/admin/sekretariate/{ids[0]}", data={f"s{ids[0]}-practices": [str(ids[2])]}
    )
    assert resp.status_code == 302
    _fresh(session)
    served = set(
        session.scalars(
            select(SecretariatAssignment.practice_id).where(SecretariatAssignment.user_id == ids[0])
        )
    )
    assert served == {ids[2]}


def test_deactivation_ends_the_users_sessions_at_once(app, admin_client, session, login_as):
    victim = make_user(session, Role.SECRETARY)
    victim_id = victim.id
    session.commit()
    victim_client = app.test_client()
    login_as(victim, victim_client)
    assert victim_client.get("/sekretariat/").status_code == 200
    assert admin_client.post(f"/admin/konten/{victim_id}/deaktivieren").status_code == 302
    resp = victim_client.get("/sekretariat/")
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]
    _fresh(session)
    assert session.get(User, victim_id).is_enabled is False


def test_reset_2fa_ends_sessions_and_removes_the_secret(app, admin_client, session, login_as):
    victim = make_user(session, Role.THERAPIST)
    victim_id = victim.id
    session.commit()
    victim_client = app.test_client()
    login_as(victim, victim_client)
    assert admin_client.post(f"/admin/konten/{victim_id}/2fa-zuruecksetzen").status_code == 302
    _fresh(session)
    user = session.get(User, victim_id)
    assert user.totp_secret is None and not user.has_totp
    assert victim_client.get("/praxis/").status_code == 302


def test_admin_cannot_deactivate_themselves(admin_client, session, boss):
    resp = admin_client.post(f"/admin/konten/{boss.id}/deaktivieren", follow_redirects=True)
    assert "eigenes Konto" in _text(resp)
    _fresh(session)
    assert session.get(User, boss.id).is_enabled


def test_account_list_filters(admin_client, session):
    make_user(session, Role.SECRETARY, email="finde.mich@example.org")
    make_user(session, Role.PATIENT, email="nicht.ich@example.org")
    session.commit()
    page = _text(admin_client.get("/admin/konten?q=finde&role=secretary"))
    assert "finde.mich@example.org" in page and "nicht.ich@example.org" not in page


def test_account_list_ignores_a_bad_role(admin_client):
    assert admin_client.get("/admin/konten?role=emperor&page=x").status_code == 200


def test_invite_secretary(admin_client, session):
    resp = admin_client.post(
        "/admin/konten/neu",
        data={"email": "neu@example.org", "display_name": "Neu", "role": "secretary"},
    )
    assert resp.status_code == 302
    _fresh(session)
    user = session.scalar(select(User).where(User.email == "neu@example.org"))
    assert user.role == Role.SECRETARY
    assert (
        session.scalar(select(OutboxMessage.kind).where(OutboxMessage.user_id == user.id))
        == "set_password"
    )


def test_invite_refuses_a_taken_address(admin_client, session, boss):
    resp = admin_client.post(
        "/admin/konten/neu", data={"email": boss.email, "display_name": "X", "role": "admin"}
    )
    assert resp.status_code == 200 and "bereits registriert" in _text(resp)


def test_audit_log_filters_and_pages(admin_client, session, boss):
    patient = make_patient(session)
    for i in range(60):
        audit.record(session, NOW, "offer.sent", boss, patient_id=patient.id, n=i)
    audit.record(session, NOW, "account.deactivated", boss)
    session.commit()
    page = _text(admin_client.get(f"/admin/audit?action=offer.&patient_id={patient.id}"))
    assert "60 Einträge" in page and "account.deactivated" not in page
    assert "Seite 1 von 2" in page
    assert admin_client.get("/admin/audit?date_from=kaputt&patient_id=-4").status_code == 200


def test_audit_csv_export_is_filtered_and_safe(admin_client, session, boss):
    audit.record(session, NOW, "=cmd", boss, note="=2+3")
    audit.record(session, NOW, "account.created", boss)
    session.commit()
    resp = admin_client.get("/admin/audit.csv?action=%3D")
    rows = list(csv.reader(io.StringIO(_text(resp))))
    assert resp.mimetype == "text/csv"
    assert len(rows) == 2 and rows[1][5] == "'=cmd"


def test_audit_log_shows_actor_and_subject(admin_client, session, boss):
    secretary = make_secretary(session)
    audit.record(session, NOW, "account.2fa_reset", boss, subject_user_id=secretary.id)
    session.commit()
    page = _text(admin_client.get("/admin/audit"))
    assert "boss@example.org" in page and secretary.email in page


def test_audit_rows_exist_for_admin_actions(admin_client, session):
    victim_id = make_user(session).id
    session.commit()
    admin_client.post(f"/admin/konten/{victim_id}/deaktivieren")
    _fresh(session)
    actions = set(session.scalars(select(AuditEvent.action)))
    assert "account.deactivated" in actions
