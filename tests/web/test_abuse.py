"""Issue 16 (part A): the second factor can't be guessed, lockouts say nothing, rate limits.

Attacks as a client would make them: through the forms, with the counters in the database.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
import time
import unicodedata

import pyotp
import pytest
from sqlalchemy import func, select

from ptmatch.domain import accounts
from ptmatch.domain.passwords import hash_password, verify_password
from ptmatch.models import OutboxMessage, Patient, RateCounter, Role, User
from ptmatch.web.ratelimit import LIMITED
from tests.conftest import NOW, CsrfClient
from tests.factories import PASSWORD, make_patient, make_user
from tests.web.test_patient import FORM, post_form


@pytest.fixture
def make_app(settings, engine):
    """make_app(**settings) -> a second app on the same database (another worker or host)."""
    from ptmatch import create_app

    made = []

    def _make(**overrides):
        app = create_app(dataclasses.replace(settings, **overrides))
        app.test_client_class = CsrfClient
        made.append(app)
        return app

    yield _make
    for app in made:
        app.extensions["ptmatch_engine"].dispose()


def _login(client, email, password=PASSWORD, ip="127.0.0.1"):
    return client.post(
        "/auth/login",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )


def _wrong_codes(user, n):
    totp = pyotp.TOTP(user.totp_secret)
    valid = {totp.at(NOW, counter_offset=offset) for offset in (-1, 0, 1)}
    return [c for c in (f"{i:06d}" for i in range(n + 3)) if c not in valid][:n]


def _strip(html: str, *addresses: str) -> str:
    html = re.sub(r'value="[^"]*"', "", html)  # CSRF tokens and the typed address differ
    for address in addresses:
        html = html.replace(address, "X")
    return html


# --- the second factor ------------------------------------------------------------------------


def test_fifty_wrong_codes_evaluate_at_most_five_then_the_password_again(
    make_app, session, sessions, monkeypatch, clock
):
    # The code limit itself: no request limit, throttles and lockout far away.
    app = make_app(
        RATE_LIMITS_ENABLED=False,
        THROTTLE_PAIR_FREE_FAILURES=1000,
        THROTTLE_CLIENT_FREE_FAILURES=1000,
        LOCKOUT_FAILURES=1000,
    )
    client = app.test_client()
    user = make_user(session, Role.THERAPIST)
    session.commit()
    evaluated = []
    real_verify = accounts.verify_totp
    monkeypatch.setattr(
        accounts, "verify_totp", lambda *a, **k: evaluated.append(1) or real_verify(*a, **k)
    )
    assert _login(client, user.email).location.endswith("/auth/2fa")
    pending_cookie = client.get_cookie("session").value
    answers = [client.post("/auth/2fa", data={"code": c}) for c in _wrong_codes(user, 50)]
    assert len(evaluated) == 5
    assert all(r.status_code == 200 for r in answers[:4])
    assert all(r.status_code == 302 and r.location.endswith("/auth/login") for r in answers[4:])
    # The right code does not help now, not even with the cookie from before the guesses.
    client.set_cookie("session", pending_cookie)
    right = client.post("/auth/2fa", data={"code": pyotp.TOTP(user.totp_secret).at(NOW)})
    assert right.status_code == 302 and right.location.endswith("/auth/login")
    assert len(evaluated) == 5
    with sessions() as s:
        assert s.get(User, user.id).failed_logins == 5  # toward the account's lockout
    # The password again, then the right code: logged in.
    assert _login(client, user.email).location.endswith("/auth/2fa")
    right = client.post("/auth/2fa", data={"code": pyotp.TOTP(user.totp_secret).at(clock.now())})
    assert right.status_code == 302 and "/praxis/" in right.location
    with sessions() as s:
        assert s.get(User, user.id).failed_logins == 0


def test_wrong_codes_delay_this_clients_next_password_exponentially(app, session, clock):
    settings = app.extensions["settings"]
    client = app.test_client()
    user = make_user(session, Role.THERAPIST)
    session.commit()
    _login(client, user.email)
    for code in _wrong_codes(user, settings.TOTP_ATTEMPTS):
        client.post("/auth/2fa", data={"code": code})
    assert _login(client, user.email).status_code == 200  # the right password must wait
    clock.advance(seconds=settings.THROTTLE_BASE_SECONDS + 1)
    assert _login(client, user.email).location.endswith("/auth/2fa")
    client.post("/auth/2fa", data={"code": _wrong_codes(user, 1)[0]})  # one more: twice as long
    clock.advance(seconds=settings.THROTTLE_BASE_SECONDS + 1)
    assert _login(client, user.email).status_code == 200
    clock.advance(seconds=settings.THROTTLE_BASE_SECONDS)
    assert _login(client, user.email).location.endswith("/auth/2fa")


def test_a_new_password_login_drops_the_older_pending_one(app, session):
    user = make_user(session, Role.ADMIN)
    session.commit()
    first, second = app.test_client(), app.test_client()
    _login(first, user.email)
    _login(second, user.email)
    code = pyotp.TOTP(user.totp_secret).at(NOW)
    assert first.post("/auth/2fa", data={"code": code}).location.endswith("/auth/login")
    assert second.post("/auth/2fa", data={"code": code}).location.endswith("/admin/")


@pytest.mark.parametrize("translate", ["０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "⁰¹²³⁴⁵⁶⁷⁸⁹"])
def test_codes_in_other_digits_log_in(client, session, translate):
    user = make_user(session, Role.SECRETARY)
    session.commit()
    _login(client, user.email)
    code = pyotp.TOTP(user.totp_secret).at(NOW).translate(str.maketrans("0123456789", translate))
    resp = client.post("/auth/2fa", data={"code": code})
    assert resp.status_code == 302 and resp.location.endswith("/sekretariat/")


@pytest.mark.parametrize("code", ["12345x", "１２３", "١٢٣٤٥٦٧", "ⅠⅡⅢⅣⅤⅥ", "½½½½½½", "🙂", "\x00"])
def test_a_code_that_is_no_code_gets_the_field_message(client, session, sessions, code):
    user = make_user(session, Role.THERAPIST)
    session.commit()
    _login(client, user.email)
    resp = client.post("/auth/2fa", data={"code": code})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "invalid-feedback" in html and "6-stelligen Code" in html
    with sessions() as s:
        assert s.get(User, user.id).totp_attempts == 0  # not evaluated, not counted


# --- lockout and enumeration --------------------------------------------------------------------


def test_locked_account_answers_as_an_unknown_address(app, session, sessions):
    user = make_user(session, Role.PATIENT)
    make_patient(session, user=user)
    session.commit()
    limit = app.extensions["settings"].LOCKOUT_FAILURES
    # Failures from many clients lock the account (one client alone is only delayed).
    for i in range(limit):
        _login(app.test_client(), user.email, "wrong-password-x", ip=f"198.51.100.{i}")
    with sessions() as s:
        assert s.get(User, user.id).locked_until is not None
    locked = _login(app.test_client(), user.email, PASSWORD, ip="203.0.113.1")
    unknown = _login(app.test_client(), "nobody@example.org", PASSWORD, ip="203.0.113.2")
    assert locked.status_code == unknown.status_code == 200
    assert _strip(locked.get_data(as_text=True), user.email) == _strip(
        unknown.get_data(as_text=True), "nobody@example.org"
    )
    assert "Zu viele Fehlversuche" not in locked.get_data(as_text=True)


def test_throttled_existing_and_unknown_address_look_the_same(client, session):
    user = make_user(session, Role.THERAPIST)
    session.commit()
    existing = [_login(client, user.email, "wrong-password-x") for _ in range(8)]
    unknown = [_login(client, "nobody@example.org", "wrong-password-x") for _ in range(8)]
    for a, b in zip(existing, unknown, strict=True):
        assert a.status_code == b.status_code == 200
        assert _strip(a.get_data(as_text=True), user.email) == _strip(
            b.get_data(as_text=True), "nobody@example.org"
        )


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _interleaved(first, second, rounds: int) -> tuple[float, float]:
    """Median times of two requests, measured in alternating order (so load hits both alike)."""
    a, b = [], []
    for i in range(rounds):
        pair = [(first, a), (second, b)] if i % 2 == 0 else [(second, b), (first, a)]
        for call, out in pair:
            start = time.perf_counter()
            call(i)
            out.append(time.perf_counter() - start)
    return _median_ms(a), _median_ms(b)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 0.2 * max(a, b)


def test_login_timing_does_not_tell_an_existing_address(make_app, session):
    # Many client addresses, so neither address is throttled or locked while we measure;
    # cheap argon2 from the test settings. Medians of interleaved samples, repeated once
    # if a loaded machine disturbed the first series.
    app = make_app(RATE_LIMITS_ENABLED=False, LOCKOUT_FAILURES=10_000)
    client = app.test_client()
    user = make_user(session, Role.PATIENT)
    session.commit()
    _login(client, "warm-up@example.org", "wrong-password-x", ip="192.0.2.250")
    for attempt in range(3):
        existing, unknown = _interleaved(
            lambda i, a=attempt: _login(client, user.email, "wrong-password-x", ip=f"10.{a}.0.{i}"),
            lambda i, a=attempt: _login(
                client, "nobody@example.org", "wrong-password-x", ip=f"10.{a}.1.{i}"
            ),
            rounds=40,
        )
        if _close(existing, unknown):
            break
    assert _close(existing, unknown), (existing, unknown)


def test_reset_form_answers_alike_and_mails_only_real_accounts(
    make_app, session, sessions, settings
):
    app = make_app(RATE_LIMITS_ENABLED=False)
    client = app.test_client()
    user = make_user(session, Role.PATIENT)
    session.commit()
    for _attempt in range(3):
        existing, unknown = _interleaved(
            lambda i: client.post("/auth/reset", data={"email": user.email}),
            lambda i: client.post("/auth/reset", data={"email": f"nobody{i}@example.org"}),
            rounds=30,
        )
        if _close(existing, unknown):
            break
    assert _close(existing, unknown), (existing, unknown)
    a = client.post("/auth/reset", data={"email": user.email})
    b = client.post("/auth/reset", data={"email": "nobody@example.org"})
    assert a.status_code == b.status_code == 302 and a.location == b.location
    with sessions() as s:
        assert s.scalar(select(func.count(OutboxMessage.id))) == 0  # no mail work in the request
        assert accounts.send_reset_mails(s, NOW, settings) == 1  # one per account and minute
        s.commit()
        [row] = s.scalars(select(OutboxMessage))
        assert row.kind == "password_reset" and row.to_addr == user.email


def test_the_reset_mail_unlocks_the_account(app, session, sessions, settings):
    user = make_user(session, Role.PATIENT)
    make_patient(session, user=user)
    session.commit()
    for i in range(settings.LOCKOUT_FAILURES):
        _login(app.test_client(), user.email, "wrong-password-x", ip=f"198.51.100.{i}")
    assert _login(app.test_client(), user.email, ip="203.0.113.9").status_code == 200  # locked
    client = app.test_client()
    client.post("/auth/reset", data={"email": user.email})
    with sessions() as s:
        accounts.send_reset_mails(s, NOW, settings)
        s.commit()
        body = s.scalar(select(OutboxMessage.body_text))
    path = re.search(r"/auth/set-password/[A-Za-z0-9_\-]+", body).group(0)
    new = "ein-neues-passwort-2026"
    assert client.post(path, data={"new_password": new}).status_code == 302
    assert _login(app.test_client(), user.email, new, ip="198.51.100.1").status_code == 302


# --- text --------------------------------------------------------------------------------------


def test_a_password_logs_in_in_any_unicode_spelling(client, session, sessions):
    password = "Grüße-aus-Köln-2026"
    nfc = unicodedata.normalize("NFC", password)
    nfd = unicodedata.normalize("NFD", password)
    assert nfc != nfd
    resp = post_form(
        client, "/patient/registrieren", email="ute@example.org", password=nfc, password_repeat=nfc
    )
    assert resp.status_code == 302
    with sessions() as s:
        s.get(User, s.scalar(select(User.id))).email_verified_at = NOW
        s.commit()
    assert _login(client, "ute@example.org", nfd).status_code == 302


def test_an_old_hash_of_another_spelling_is_rehashed_in_nfc(client, session, sessions):
    from ptmatch.domain import passwords

    nfd = unicodedata.normalize("NFD", "Grüße-aus-Köln-2026")
    user = make_user(session, Role.PATIENT, password_hash=passwords._hasher.hash(nfd))
    make_patient(session, user=user)
    session.commit()
    assert _login(client, user.email, nfd).status_code == 302
    with sessions() as s:
        new_hash = s.get(User, user.id).password_hash
    assert verify_password(new_hash, unicodedata.normalize("NFC", nfd))
    assert not verify_password(new_hash, nfd)


def test_a_look_alike_address_is_refused_at_registration(client, session, sessions):
    make_user(session, Role.PATIENT, email="anna@example.org")
    session.commit()
    resp = post_form(client, "/patient/registrieren", email="\u0430nna@example.org")  # Cyrillic а
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "zum Verwechseln ähnlich" in html
    with sessions() as s:
        assert s.scalar(select(func.count(User.id))) == 1


def test_a_local_part_of_65_characters_is_refused(client, sessions):
    resp = post_form(client, "/patient/registrieren", email="a" * 65 + "@example.org")
    assert resp.status_code == 200 and "höchstens 64 Zeichen" in resp.get_data(as_text=True)
    ok = post_form(client, "/patient/registrieren", email="a" * 64 + "@example.org")
    assert ok.status_code == 302


# --- rate limits ---------------------------------------------------------------------------------


def test_the_21st_registration_in_a_minute_gets_429_across_two_app_instances(
    make_app, sessions, clock
):
    one, two = make_app().test_client(), make_app().test_client()
    answers = [
        post_form(one if i % 2 else two, "/patient/registrieren", email=f"p{i}@example.org")
        for i in range(21)
    ]
    assert [r.status_code for r in answers[:20]] == [302] * 20
    assert answers[20].status_code == 429
    assert "Zu viele Anfragen" in answers[20].get_data(as_text=True)
    with sessions() as s:
        assert s.scalar(select(func.count(Patient.id))) == 20
    # Another client is not affected; this one may go on after the window.
    other = one.post(
        "/patient/registrieren",
        data={**FORM, "email": "other@example.org"},
        environ_base={"REMOTE_ADDR": "192.0.2.99"},
    )
    assert other.status_code == 302
    clock.advance(seconds=61)
    assert post_form(two, "/patient/registrieren", email="later@example.org").status_code == 302


def test_the_429_page_speaks_english(make_app):
    client = make_app(RATE_LIMIT_LOGIN=1).test_client()
    headers = {"Accept-Language": "en"}
    client.post("/auth/login", data={"email": "a@example.org", "password": "x"}, headers=headers)
    resp = client.post(
        "/auth/login", data={"email": "a@example.org", "password": "x"}, headers=headers
    )
    assert resp.status_code == 429 and "Too many requests" in resp.get_data(as_text=True)
    assert resp.headers["Retry-After"] == "60"


def test_every_limited_endpoint_exists(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(LIMITED) <= endpoints


@pytest.mark.parametrize(
    "method, path, setting",
    [
        ("post", "/auth/login", "RATE_LIMIT_LOGIN"),
        ("post", "/auth/reset", "RATE_LIMIT_RESET"),
        ("post", "/patient/registrieren", "RATE_LIMIT_REGISTER"),
        ("get", "/o/not-a-token", "RATE_LIMIT_TOKEN_PAGES"),
        ("get", "/g/not-a-token", "RATE_LIMIT_TOKEN_PAGES"),
        ("get", "/patient/verify/not-a-token", "RATE_LIMIT_TOKEN_PAGES"),
    ],
)
def test_each_kind_is_limited_per_client(make_app, sessions, method, path, setting):
    client = make_app(**{setting: 3}).test_client()
    codes = [getattr(client, method)(path).status_code for _ in range(4)]
    assert 429 not in codes[:3] and codes[3] == 429
    with sessions() as s:
        assert s.scalar(select(RateCounter.count)) == 4


def test_list_joins_are_limited(make_app, session, login_as):
    app = make_app(RATE_LIMIT_LISTS=2)
    client = app.test_client()
    patient = make_patient(session)
    session.commit()
    login_as(patient.user, client)
    codes = [client.post("/patient/listen/pool").status_code for _ in range(3)]
    assert codes == [302, 302, 429]


def test_hash_password_is_nfc():
    nfd = unicodedata.normalize("NFD", "Grüße-aus-Köln-2026")
    assert verify_password(hash_password(nfd), unicodedata.normalize("NFC", nfd))
