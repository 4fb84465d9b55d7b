"""Login flows: patients, staff with mandatory TOTP, enrolment, revocation, timeouts."""

from __future__ import annotations

import re

import pyotp

from ptmatch.models import Role, User
from tests.conftest import NOW
from tests.factories import PASSWORD, make_patient, make_user


def _patient_user(session) -> User:
    user = make_user(session, Role.PATIENT)
    make_patient(session, user=user)
    return user


def _login(client, email, password=PASSWORD, **extra):
    return client.post("/auth/login", data={"email": email, "password": password, **extra})


def _session_cookie(client):
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def test_patient_logs_in_and_reaches_dashboard(client, session):
    user = _patient_user(session)
    session.commit()
    resp = _login(client, user.email)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/patient/")
    assert client.get("/patient/").status_code == 200


def test_wrong_password_and_unknown_user_look_identical(client, session):
    user = _patient_user(session)
    session.commit()
    strip = lambda html: re.sub(r'value="[^"]*"', "", html)  # noqa: E731 - CSRF tokens differ
    wrong = _login(client, user.email, "wrong-password-x")
    unknown = _login(client, "nobody@example.org", "wrong-password-x")
    assert wrong.status_code == unknown.status_code == 200
    assert strip(wrong.get_data(as_text=True)).replace(user.email, "X") == strip(
        unknown.get_data(as_text=True)
    ).replace("nobody@example.org", "X")
    assert "E-Mail oder Passwort ist falsch" in wrong.get_data(as_text=True)


def test_throttle_through_the_form_holds_only_this_client(client, session, app):
    victim = _patient_user(session)
    other = _patient_user(session)
    session.commit()
    for _ in range(5):
        _login(client, victim.email, "wrong-password-x")
    resp = _login(client, victim.email)  # the right password, but this client must wait
    assert resp.status_code == 200 and "zu viele Versuche" in resp.get_data(as_text=True)
    assert _login(app.test_client(), other.email).status_code == 302
    # Another client is not held up: one client cannot lock somebody out.
    elsewhere = app.test_client()
    resp = elsewhere.post(
        "/auth/login",
        data={"email": victim.email, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert resp.status_code == 302


def test_staff_must_pass_totp_before_any_page(client, session):
    user = make_user(session, Role.THERAPIST)
    session.commit()
    resp = _login(client, user.email)
    assert resp.headers["Location"].endswith("/auth/2fa")
    # Not logged in yet: protected pages send back to login.
    assert client.get("/praxis/").status_code == 302
    resp = client.post(
        "/auth/2fa",
        data={"code": "000000" if pyotp.TOTP(user.totp_secret).at(NOW) != "000000" else "111111"},
    )
    assert "ungültig" in resp.get_data(as_text=True)
    resp = client.post("/auth/2fa", data={"code": pyotp.TOTP(user.totp_secret).at(NOW)})
    assert resp.status_code == 302
    assert client.get("/praxis/").status_code in (200, 302)
    assert client.get("/praxis/").headers.get("Location", "").find("/auth/login") == -1


def test_staff_without_totp_reaches_only_enrolment(client, session, sessions):
    user = make_user(session, Role.SECRETARY, totp=False)
    session.commit()
    resp = _login(client, user.email)
    assert resp.headers["Location"].endswith("/auth/2fa/setup")
    for path in ("/sekretariat/", "/patient/", "/admin/", "/praxis/", "/auth/password"):
        assert client.get(path).status_code == 302, path
    page = client.get("/auth/2fa/setup").get_data(as_text=True)
    assert "<svg" in page
    with sessions() as s:
        secret = s.get(User, user.id).totp_secret
    assert secret in page
    resp = client.post("/auth/2fa/setup", data={"code": pyotp.TOTP(secret).at(NOW)})
    assert resp.status_code == 200
    codes = re.findall(r"<li>([0-9a-f]{5}-[0-9a-f]{5})</li>", resp.get_data(as_text=True))
    assert len(codes) == 10
    assert client.get("/sekretariat/").status_code == 200


def test_recovery_code_logs_in_once(client, session, sessions, app):
    from ptmatch.domain import accounts

    user = make_user(session, Role.ADMIN)
    codes = accounts.new_recovery_codes(session, user)
    session.commit()
    _login(client, user.email)
    assert client.post("/auth/2fa", data={"code": codes[0]}).status_code == 302
    other = app.test_client()
    _login(other, user.email)
    resp = other.post("/auth/2fa", data={"code": codes[0]})
    assert resp.status_code == 200 and "ungültig" in resp.get_data(as_text=True)


def test_logout_revokes_replayed_cookie(client, session):
    user = _patient_user(session)
    session.commit()
    _login(client, user.email)
    old = _session_cookie(client)
    assert client.get("/patient/").status_code == 200
    client.post("/auth/logout")
    client.set_cookie("session", old)
    assert client.get("/patient/").status_code == 302


def test_password_change_ends_other_sessions(client, session, app):
    user = _patient_user(session)
    session.commit()
    other = app.test_client()
    _login(other, user.email)
    _login(client, user.email)
    assert other.get("/patient/").status_code == 200
    resp = client.post(
        "/auth/password",
        data={"current_password": PASSWORD, "new_password": "ein ganz neues Passwort"},
    )
    assert resp.status_code == 302
    assert client.get("/patient/").status_code == 200  # this session was renewed
    assert other.get("/patient/").status_code == 302  # the other one is gone


def test_password_change_errors_at_the_field(client, session, login_as):
    user = _patient_user(session)
    session.commit()
    login_as(user)
    resp = client.post(
        "/auth/password",
        data={"current_password": "falsch-falsch", "new_password": "ein ganz neues Passwort"},
    )
    assert "Das aktuelle Passwort ist falsch." in resp.get_data(as_text=True)
    resp = client.post(
        "/auth/password", data={"current_password": PASSWORD, "new_password": "kurz"}
    )
    assert "Mindestens 10 Zeichen." in resp.get_data(as_text=True)


def test_deactivation_and_2fa_reset_end_sessions(client, session, sessions, login_as):
    from ptmatch.domain import accounts

    user = make_user(session, Role.THERAPIST)
    admin = make_user(session, Role.ADMIN)
    session.commit()
    login_as(user)
    assert client.get("/praxis/").headers.get("Location", "").find("/auth/login") == -1
    with sessions() as s:
        accounts.reset_totp(s, NOW, s.get(User, user.id), s.get(User, admin.id))
        s.commit()
    assert "/auth/login" in client.get("/praxis/").headers["Location"]


def test_staff_idle_timeout(client, session, login_as):
    user = make_user(session, Role.SECRETARY)
    session.commit()
    login_as(user)
    assert client.get("/sekretariat/").status_code == 200
    with client.session_transaction() as sess:
        sess["seen_at"] = int(NOW.timestamp()) - 31 * 60
    resp = client.get("/sekretariat/")
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]


def test_absolute_timeout_for_patients(client, session, login_as):
    user = _patient_user(session)
    session.commit()
    login_as(user)
    with client.session_transaction() as sess:
        sess["login_at"] = int(NOW.timestamp()) - 13 * 3600
    assert client.get("/patient/").status_code == 302


def test_patient_idle_is_not_cut_after_30_minutes(client, session, login_as):
    user = _patient_user(session)
    session.commit()
    login_as(user)
    with client.session_transaction() as sess:
        sess["seen_at"] = int(NOW.timestamp()) - 40 * 60
    assert client.get("/patient/").status_code == 200


def test_login_issues_a_new_session(client, session):
    user = _patient_user(session)
    session.commit()
    client.get("/auth/login")
    with client.session_transaction() as sess:
        sess["planted"] = "fixation"
    _login(client, user.email)
    with client.session_transaction() as sess:
        assert "planted" not in sess


def test_unsafe_next_is_ignored(client, session):
    user = _patient_user(session)
    session.commit()
    for bad in (
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "\\\\evil",
    ):
        client.post("/auth/logout")
        resp = client.post(
            f"/auth/login?next={bad}", data={"email": user.email, "password": PASSWORD}
        )
        assert resp.status_code == 302
        assert "evil" not in resp.headers["Location"] and not resp.headers["Location"].startswith(
            "javascript"
        )


def test_safe_next_is_followed(client, session):
    user = _patient_user(session)
    session.commit()
    resp = client.post(
        "/auth/login?next=/patient/", data={"email": user.email, "password": PASSWORD}
    )
    assert resp.headers["Location"] == "/patient/"


def test_is_safe_next_unit():
    from ptmatch.web.security import is_safe_next

    assert is_safe_next("/patient/?a=1")
    for bad in (None, "", "patient", "//x", "/\\x", "http://x/", "/x\n", "/" + "a" * 600):
        assert not is_safe_next(bad)


def test_patient_may_enable_totp_from_the_dashboard(client, session, sessions, app):
    user = _patient_user(session)
    session.commit()
    _login(client, user.email)
    assert "/auth/2fa/setup" in client.get("/patient/").get_data(as_text=True)
    client.get("/auth/2fa/setup")
    with sessions() as s:
        secret = s.get(User, user.id).totp_secret
    assert (
        client.post("/auth/2fa/setup", data={"code": pyotp.TOTP(secret).at(NOW)}).status_code == 200
    )
    assert "Zwei-Faktor-Anmeldung ist eingerichtet." in client.get("/patient/").get_data(
        as_text=True
    )
    other = app.test_client()
    assert _login(other, user.email).headers["Location"].endswith("/auth/2fa")


def test_successful_logins_are_audited(client, session, sessions):
    from sqlalchemy import select

    from ptmatch.models import AuditEvent

    user = make_user(session, Role.THERAPIST)
    session.commit()
    _login(client, user.email, "wrong-password-x")
    _login(client, user.email)
    with sessions() as s:
        assert (
            s.scalars(select(AuditEvent.action).where(AuditEvent.subject_user_id == user.id)).all()
            == []
        )
    client.post("/auth/2fa", data={"code": pyotp.TOTP(user.totp_secret).at(NOW)})
    with sessions() as s:
        assert s.scalars(
            select(AuditEvent.action).where(AuditEvent.subject_user_id == user.id)
        ).all() == ["account.login"]
