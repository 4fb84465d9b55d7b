"""Accounts: password policy, hashing, lockout, TOTP, recovery codes, tokens."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from argon2 import PasswordHasher

from ptmatch.config import Settings
from ptmatch.domain import accounts, passwords
from ptmatch.domain.errors import AccountLocked, InvalidInput
from ptmatch.models import Role, TokenPurpose
from tests.factories import PASSWORD, make_user

SETTINGS = Settings(LOCKOUT_FAILURES=5, LOCKOUT_WINDOW_MINUTES=15, LOCKOUT_MINUTES=15)


@pytest.mark.parametrize(
    "pw", ["short", "x" * 9, "y" * 129, "password123", "Passwort123", "abc\x00defghijk"]
)
def test_password_policy_refuses(pw):
    with pytest.raises(InvalidInput):
        passwords.check_password_policy(pw)


@pytest.mark.parametrize(
    "pw", ["x" * 10, "y" * 128, "  leading and trailing  ", "Grüße aus Bonn 2026 ✓"]
)
def test_password_policy_accepts(pw):
    passwords.check_password_policy(pw)


def test_password_is_not_trimmed_or_truncated(session, now):
    pw = " " + "a" * 126 + " "
    user = accounts.create_user(
        session, now, email="trim@example.org", password=pw, role=Role.PATIENT
    )
    assert accounts.authenticate(session, now, "trim@example.org", pw, SETTINGS) is not None
    assert accounts.authenticate(session, now, "trim@example.org", pw.strip(), SETTINGS) is None
    assert accounts.authenticate(session, now, "trim@example.org", pw[:-1], SETTINGS) is None
    assert user.password_hash.startswith("$argon2id$")


def test_email_is_normalised(session, now):
    user = accounts.create_user(
        session, now, email="  Anna.Muster@Example.ORG ", password=PASSWORD, role=Role.PATIENT
    )
    assert user.email == "anna.muster@example.org"
    assert (
        accounts.authenticate(session, now, "ANNA.muster@example.org", PASSWORD, SETTINGS)
        is not None
    )
    with pytest.raises(InvalidInput) as err:
        accounts.create_user(
            session, now, email="anna.muster@EXAMPLE.org", password=PASSWORD, role=Role.PATIENT
        )
    assert err.value.field == "email"


@pytest.mark.parametrize(
    "email", ["", "no-at-sign", "a@", "@b.de", "a b@c.de", "x" * 250 + "@a.de", "a\x00@b.de"]
)
def test_invalid_emails_refused(email):
    with pytest.raises(InvalidInput):
        accounts.normalise_email(email)


def test_rehash_on_login_when_parameters_change(session, now):
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    user = make_user(session, Role.PATIENT, password_hash=weak)
    assert accounts.authenticate(session, now, user.email, PASSWORD, SETTINGS) is not None
    assert user.password_hash != weak
    assert not passwords.needs_rehash(user.password_hash)


def test_unknown_user_and_wrong_password_cost_the_same_work(session, now, monkeypatch):
    user = make_user(session, Role.PATIENT)
    calls = []
    real = PasswordHasher.verify

    def spy(self, hash_, password):
        calls.append(hash_)
        return real(self, hash_, password)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    assert (
        accounts.authenticate(session, now, "nobody@example.org", "whatever-123", SETTINGS) is None
    )
    unknown_calls = len(calls)
    calls.clear()
    assert accounts.authenticate(session, now, user.email, "wrong-password-1", SETTINGS) is None
    assert unknown_calls == len(calls) == 1


def test_lockout_after_five_failures_within_window(session, now):
    user = make_user(session, Role.PATIENT)
    for i in range(5):
        assert (
            accounts.authenticate(
                session, now + dt.timedelta(minutes=i), user.email, "wrong-password!", SETTINGS
            )
            is None
        )
    with pytest.raises(AccountLocked):
        accounts.authenticate(
            session, now + dt.timedelta(minutes=5), user.email, PASSWORD, SETTINGS
        )
    # 15 minutes after locking, the right password works again.
    assert (
        accounts.authenticate(
            session, now + dt.timedelta(minutes=20), user.email, PASSWORD, SETTINGS
        )
        is not None
    )


def test_failures_spread_beyond_the_window_do_not_lock(session, now):
    user = make_user(session, Role.PATIENT)
    for i in range(8):
        accounts.authenticate(
            session, now + dt.timedelta(minutes=16 * i), user.email, "wrong-password!", SETTINGS
        )
    assert (
        accounts.authenticate(
            session, now + dt.timedelta(minutes=130), user.email, PASSWORD, SETTINGS
        )
        is not None
    )


def test_lockout_leaves_other_accounts_alone(session, now):
    victim = make_user(session, Role.PATIENT)
    other = make_user(session, Role.PATIENT)
    for _ in range(5):
        accounts.authenticate(session, now, victim.email, "wrong-password!", SETTINGS)
    with pytest.raises(AccountLocked):
        accounts.authenticate(session, now, victim.email, PASSWORD, SETTINGS)
    assert accounts.authenticate(session, now, other.email, PASSWORD, SETTINGS) is not None


def test_lockout_counter_lives_in_the_database(sessions, now):
    """A second 'worker' (another session/connection) sees the same counter."""
    with sessions() as s:
        user = make_user(s, Role.PATIENT)
        s.commit()
        email = user.email
    for _ in range(5):
        with sessions() as s:  # a fresh connection each time, as different workers would have
            accounts.authenticate(s, now, email, "wrong-password!", SETTINGS)
            s.commit()
    with sessions() as s, pytest.raises(AccountLocked):
        accounts.authenticate(s, now, email, PASSWORD, SETTINGS)


def test_disabled_user_cannot_log_in(session, now):
    user = make_user(session, Role.PATIENT, is_enabled=False)
    assert accounts.authenticate(session, now, user.email, PASSWORD, SETTINGS) is None


def test_totp_code_accepted_once(session, now):
    user = make_user(session, Role.THERAPIST)
    code = pyotp.TOTP(user.totp_secret).at(now)
    assert accounts.verify_totp(session, now, user, code)
    assert not accounts.verify_totp(session, now, user, code)


def test_totp_valid_window_is_one_step(session, now):
    user = make_user(session, Role.THERAPIST)
    totp = pyotp.TOTP(user.totp_secret)
    assert accounts.verify_totp(session, now, user, totp.at(now - dt.timedelta(seconds=30)))
    assert not accounts.verify_totp(session, now, user, totp.at(now - dt.timedelta(seconds=90)))
    assert not accounts.verify_totp(session, now, user, totp.at(now + dt.timedelta(seconds=90)))


def test_totp_older_step_refused_after_newer_used(session, now):
    user = make_user(session, Role.THERAPIST)
    totp = pyotp.TOTP(user.totp_secret)
    assert accounts.verify_totp(session, now, user, totp.at(now))
    assert not accounts.verify_totp(session, now, user, totp.at(now - dt.timedelta(seconds=30)))


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5", "\x00" * 6])
def test_malformed_totp_codes(session, now, code):
    user = make_user(session, Role.THERAPIST)
    assert not accounts.verify_totp(session, now, user, code)


def test_enrolment_gives_ten_single_use_hashed_recovery_codes(session, now):
    user = make_user(session, Role.THERAPIST, totp=False)
    secret = accounts.start_totp_enrolment(user)
    assert (
        accounts.confirm_totp(
            session, now, user, "000000" if pyotp.TOTP(secret).at(now) != "000000" else "111111"
        )
        is None
    )
    codes = accounts.confirm_totp(session, now, user, pyotp.TOTP(secret).at(now))
    assert codes is not None and len(codes) == 10 and len(set(codes)) == 10
    assert user.has_totp
    assert all(
        code.replace("-", "") not in rc.code_hash for code in codes for rc in user.recovery_codes
    )
    assert accounts.use_recovery_code(session, now, user, codes[0])
    assert not accounts.use_recovery_code(session, now, user, codes[0])
    assert accounts.use_recovery_code(session, now, user, codes[1].upper())


def test_reset_totp_ends_sessions(session, now):
    admin = make_user(session, Role.ADMIN)
    user = make_user(session, Role.THERAPIST)
    version = user.session_version
    accounts.reset_totp(session, now, user, admin)
    assert not user.has_totp and user.totp_secret is None
    assert user.session_version == version + 1


def test_user_tokens_single_use_and_expire(session, now):
    user = make_user(session, Role.PATIENT)
    token = accounts.issue_user_token(
        session, now, user, TokenPurpose.VERIFY_EMAIL, dt.timedelta(hours=1)
    )
    assert accounts.consume_user_token(session, now, token, TokenPurpose.SET_PASSWORD) is None
    assert accounts.consume_user_token(session, now, token, TokenPurpose.VERIFY_EMAIL) == user
    assert accounts.consume_user_token(session, now, token, TokenPurpose.VERIFY_EMAIL) is None
    late = accounts.issue_user_token(
        session, now, user, TokenPurpose.VERIFY_EMAIL, dt.timedelta(hours=1)
    )
    assert (
        accounts.consume_user_token(
            session, now + dt.timedelta(hours=2), late, TokenPurpose.VERIFY_EMAIL
        )
        is None
    )
    assert accounts.consume_user_token(session, now, "x" * 500, TokenPurpose.VERIFY_EMAIL) is None


def test_production_argon2_parameters_are_the_library_recommendation(tmp_path):
    """The suite hashes cheaply; a real install uses argon2-cffi's RFC 9106 parameters."""
    from ptmatch.config import load_settings
    from ptmatch.domain.passwords import use_settings as apply_process_settings
    from tests.conftest import CHEAP_ARGON2

    defaults = load_settings(str(tmp_path))
    try:
        apply_process_settings(defaults)
        hashed = passwords.hash_password(PASSWORD)
        assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert passwords.verify_password(hashed, PASSWORD)
    finally:
        apply_process_settings(CHEAP_ARGON2)
    assert not passwords.needs_rehash(passwords.hash_password(PASSWORD))
    assert passwords.needs_rehash(hashed)  # a production hash verified under other costs is renewed
