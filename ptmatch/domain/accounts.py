"""Accounts: creation, login with lockout, session revocation, TOTP and recovery codes."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import pyotp
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ptmatch.catalog import N_
from ptmatch.config import Settings
from ptmatch.domain import audit
from ptmatch.domain.errors import AccountLocked, InvalidInput
from ptmatch.domain.passwords import (
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from ptmatch.domain.tokens import hash_token, new_token
from ptmatch.models import RecoveryCode, Role, TokenPurpose, User, UserToken

TOTP_ISSUER = "ptmatch"
RECOVERY_CODE_COUNT = 10


def normalise_email(raw: str, field: str = "email") -> str:
    """Syntax-check and normalise (domain lower-cased, local part as given, then lower-cased)."""
    raw = (raw or "").strip()
    if not raw or len(raw) > 254 or "\x00" in raw:
        raise InvalidInput(N_("Bitte eine gültige E-Mail-Adresse angeben."), field)
    try:
        info = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(N_("Bitte eine gültige E-Mail-Adresse angeben."), field) from exc
    return info.normalized.lower()


def get_user_by_email(session: Session, email: str) -> User | None:
    try:
        email = normalise_email(email)
    except InvalidInput:
        return None
    return session.scalar(select(User).where(User.email == email))


def create_user(
    session: Session,
    now: dt.datetime,
    *,
    email: str,
    password: str | None,
    role: Role,
    display_name: str = "",
    locale: str = "de",
    actor: User | None = None,
) -> User:
    """Create a user. Raises InvalidInput (field 'email') if the address is taken."""
    email = normalise_email(email)
    if password is not None:
        check_password_policy(password)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise InvalidInput(N_("Diese E-Mail-Adresse ist bereits registriert."), "email")
    user = User(
        email=email,
        password_hash=hash_password(password) if password is not None else None,
        role=role,
        display_name=display_name,
        locale=locale,
        created_at=now,
        session_version=1,
        failed_logins=0,
        is_enabled=True,
    )
    session.add(user)
    session.flush()
    audit.record(session, now, "account.created", actor, subject_user_id=user.id, role=str(role))
    return user


def authenticate(
    session: Session, now: dt.datetime, email: str, password: str, settings: Settings
) -> User | None:
    """Check credentials with lockout. Returns the user or None; raises AccountLocked.

    Unknown users and wrong passwords cost the same argon2 work and give the same None.
    Failure counters are updated atomically in the database (so they hold across workers);
    the caller commits them even when the login fails.
    """
    user = get_user_by_email(session, email)
    if user is None:
        verify_password(None, password)
        return None
    if user.locked_until is not None and user.locked_until > now:
        verify_password(None, password)
        raise AccountLocked(
            N_("Zu viele Fehlversuche. Bitte versuchen Sie es in 15 Minuten erneut.")
        )
    if not verify_password(user.password_hash, password) or not user.is_enabled:
        _register_failure(session, now, user, settings)
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.first_failed_at = None
    user.locked_until = None
    user.last_login_at = now
    return user


def _register_failure(session: Session, now: dt.datetime, user: User, settings: Settings) -> None:
    window = dt.timedelta(minutes=settings.LOCKOUT_WINDOW_MINUTES)
    session.refresh(user)
    if user.first_failed_at is None or now - user.first_failed_at > window:
        # A new window starts; the conditional keeps two workers from both resetting it.
        session.execute(
            update(User).where(User.id == user.id).values(failed_logins=1, first_failed_at=now)
        )
    else:
        session.execute(
            update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1)
        )
    session.refresh(user)
    if user.failed_logins >= settings.LOCKOUT_FAILURES:
        user.locked_until = now + dt.timedelta(minutes=settings.LOCKOUT_MINUTES)
        user.failed_logins = 0
        user.first_failed_at = None
        audit.record(session, now, "account.locked", None, subject_user_id=user.id)
    session.flush()


def end_all_sessions(session: Session, user: User) -> None:
    """Invalidate every session of the user (checked on each request)."""
    session.execute(
        update(User).where(User.id == user.id).values(session_version=User.session_version + 1)
    )
    session.refresh(user)


def change_password(session: Session, now: dt.datetime, user: User, current: str, new: str) -> None:
    if not verify_password(user.password_hash, current):
        raise InvalidInput(N_("Das aktuelle Passwort ist falsch."), "current_password")
    check_password_policy(new, "new_password")
    set_password(session, now, user, new)


def set_password(
    session: Session, now: dt.datetime, user: User, new: str, actor: User | None = None
) -> None:
    check_password_policy(new, "new_password")
    user.password_hash = hash_password(new)
    end_all_sessions(session, user)
    audit.record(session, now, "account.password_changed", actor or user, subject_user_id=user.id)


# --- TOTP -------------------------------------------------------------------------------


def start_totp_enrolment(user: User) -> str:
    """Give the user a secret (not active until confirmed) and return it; an unconfirmed
    secret is kept across requests so the code typed in matches the QR code shown."""
    if user.totp_secret is None:
        user.totp_secret = pyotp.random_base32()
    return user.totp_secret


def totp_uri(user: User) -> str:
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


def _matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    code = (code or "").strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    step_now = totp.timecode(now)
    for step in (step_now - 1, step_now, step_now + 1):  # valid_window=1
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_totp(session: Session, now: dt.datetime, user: User, code: str) -> bool:
    """Accept a code once only, also under parallel requests.

    The time step is claimed with a conditional UPDATE (... WHERE last_step < step), so of
    several requests with the same code exactly one sees a row count of 1. The caller
    commits at once.
    """
    if not user.totp_secret:
        return False
    step = _matching_step(user.totp_secret, code, now)
    if step is None:
        return False
    result = session.execute(
        update(User)
        .where(User.id == user.id)
        .where((User.totp_last_step.is_(None)) | (User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def confirm_totp(session: Session, now: dt.datetime, user: User, code: str) -> list[str] | None:
    """Finish enrolment with a first valid code; returns fresh recovery codes, or None."""
    if not verify_totp(session, now, user, code):
        return None
    user.totp_confirmed_at = now
    audit.record(session, now, "account.2fa_enabled", user, subject_user_id=user.id)
    return new_recovery_codes(session, user)


def reset_totp(session: Session, now: dt.datetime, user: User, actor: User) -> None:
    """Remove 2FA (an admin's reset, or a patient turning it off); ends every session."""
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    for code in list(user.recovery_codes):
        session.delete(code)
    end_all_sessions(session, user)
    audit.record(session, now, "account.2fa_reset", actor, subject_user_id=user.id)


def _hash_recovery(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").strip().lower().encode()).hexdigest()


def new_recovery_codes(session: Session, user: User) -> list[str]:
    for code in list(user.recovery_codes):
        session.delete(code)
    session.flush()
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user.id, code_hash=_hash_recovery(raw)))
    session.flush()
    return codes


def use_recovery_code(session: Session, now: dt.datetime, user: User, code: str) -> bool:
    """Single use, atomically: the conditional UPDATE lets only one request spend a code."""
    if not code or len(code) > 40:
        return False
    result = session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id)
        .where(RecoveryCode.code_hash == _hash_recovery(code))
        .where(RecoveryCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        audit.record(session, now, "account.recovery_code_used", user, subject_user_id=user.id)
        return True
    return False


# --- single-use link tokens ---------------------------------------------------------------


def issue_user_token(
    session: Session, now: dt.datetime, user: User, purpose: TokenPurpose, valid_for: dt.timedelta
) -> str:
    token, digest = new_token()
    session.add(
        UserToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=digest,
            created_at=now,
            expires_at=now + valid_for,
        )
    )
    session.flush()
    return token


def peek_user_token(
    session: Session, now: dt.datetime, token: str, purpose: TokenPurpose
) -> UserToken | None:
    """The live token row, or None (unknown, used, expired or of another purpose)."""
    if not token or len(token) > 100:
        return None
    row = session.scalar(select(UserToken).where(UserToken.token_hash == hash_token(token)))
    if row is None or row.purpose != purpose or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def consume_user_token(
    session: Session, now: dt.datetime, token: str, purpose: TokenPurpose
) -> User | None:
    """Spend a token once (conditional UPDATE); returns its user or None."""
    row = peek_user_token(session, now, token, purpose)
    if row is None:
        return None
    result = session.execute(
        update(UserToken)
        .where(UserToken.id == row.id)
        .where(UserToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return session.get(User, row.user_id)
