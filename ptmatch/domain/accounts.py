"""Accounts: creation, login with lockout, session revocation, TOTP and recovery codes."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import pyotp
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from ptmatch import links
from ptmatch.catalog import N_
from ptmatch.config import Settings
from ptmatch.domain import audit, textnorm, throttle
from ptmatch.domain.errors import AccountLocked, InvalidInput, LoginRestart
from ptmatch.domain.passwords import (
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from ptmatch.domain.tokens import hash_token, new_token
from ptmatch.models import RecoveryCode, ResetRequest, Role, TokenPurpose, User, UserToken
from ptmatch.notifications import outbox

TOTP_ISSUER = "ptmatch"
RECOVERY_CODE_COUNT = 10
LOCAL_PART_MAX = 64  # RFC 5321
# One answer for every failed login: wrong address, wrong password, locked or throttled.
MSG_LOGIN_FAILED = N_(
    "Anmeldung nicht möglich: E-Mail oder Passwort ist falsch, oder es gab zu viele Versuche. "
    "Bitte warten Sie einige Minuten oder setzen Sie Ihr Passwort zurück."
)


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


@event.listens_for(User.email, "set")
def _keep_skeleton(target: User, value, _old, _initiator) -> None:
    """The skeleton follows the address wherever a User is written (demo data, factories)."""
    target.email_skeleton = textnorm.skeleton(value or "")


def check_new_email(session: Session, raw: str, field: str = "email") -> str:
    """The normalised address for a new account: RFC 5321 allows 64 characters before the @."""
    email = normalise_email(raw, field)
    if len(email.rsplit("@", 1)[0]) > LOCAL_PART_MAX:
        raise InvalidInput(N_("Vor dem @ sind höchstens 64 Zeichen erlaubt."), field)
    return email


def check_available_email(session: Session, raw: str, field: str = "email") -> str:
    """The normalised address for a new account that no account has or resembles."""
    email = check_new_email(session, raw, field)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise InvalidInput(N_("Diese E-Mail-Adresse ist bereits registriert."), field)
    refuse_confusable(session, email, field)
    return email


def refuse_confusable(session: Session, email: str, field: str = "email") -> None:
    """Refuse an address that looks like another account's (same UTS #39 skeleton)."""
    other = session.scalar(
        select(User.id)
        .where(User.email_skeleton == textnorm.skeleton(email))
        .where(User.email != email)
        .limit(1)
    )
    if other is not None:
        raise InvalidInput(
            N_(
                "Diese Adresse ist einer bereits registrierten zum Verwechseln ähnlich. "
                "Bitte prüfen Sie die Schreibweise."
            ),
            field,
        )


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
    """Create a user. Raises InvalidInput (field 'email') if the address is taken, too long
    before the @, or a look-alike of an existing one."""
    email = check_available_email(session, email)
    if password is not None:
        check_password_policy(password)
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
    session: Session,
    now: dt.datetime,
    email: str,
    password: str,
    settings: Settings,
    client: str = "",
) -> User | None:
    """Check credentials with lockout and throttles. Returns the user or None; raises
    AccountLocked (the caller shows MSG_LOGIN_FAILED for it as for None).

    Unknown users, wrong passwords and locked accounts cost the same argon2 work and give the
    same answer. The throttles key on the address as typed and the client, whether or not an
    account exists. Counters are updated atomically in the database (so they hold across
    workers); the caller commits them even when the login fails. A user with a second factor
    keeps the counters until the code is right too (see check_second_factor).
    """
    login = _login_name(email)
    keys = throttle.login_keys(login, client, settings)
    if throttle.blocked_until(session, now, keys) is not None:
        raise AccountLocked(MSG_LOGIN_FAILED)
    user = get_user_by_email(session, email)
    if user is None:
        _verify_any(None, password)
        throttle.register_failure(session, now, keys, settings)
        return None
    if user.locked_until is not None and user.locked_until > now:
        _verify_any(None, password)
        raise AccountLocked(MSG_LOGIN_FAILED)
    matched = _verify_any(user.password_hash, password)
    if matched is None or not user.is_enabled:
        _register_failure(session, now, user, settings)
        throttle.register_failure(session, now, keys, settings)
        return None
    if matched != textnorm.nfc(password) or needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)  # transparent rehash, in NFC
    if user.has_totp:
        # A fresh pending login: older ones are dropped, and it gets its own code attempts.
        user.login_generation = (user.login_generation or 0) + 1
        user.totp_attempts = 0
    else:
        _login_succeeded(session, now, user, client)
    return user


def _login_name(email: str) -> str:
    try:
        return normalise_email(email)
    except InvalidInput:
        return (email or "").strip().lower()[:254]


def password_matches(user: User, password: str) -> bool:
    """Whether `password` (in any Unicode spelling) is the user's."""
    return _verify_any(user.password_hash, password or "") is not None


def _verify_any(password_hash: str | None, password: str) -> str | None:
    """The spelling of `password` that matches (see textnorm.password_candidates), or None.
    Every spelling is tried against an absent hash too, so the work is the same."""
    for candidate in textnorm.password_candidates(password):
        if verify_password(password_hash, candidate):
            return candidate
    return None


def _login_succeeded(session: Session, now: dt.datetime, user: User, client: str) -> None:
    user.failed_logins = 0
    user.first_failed_at = None
    user.locked_until = None
    user.last_login_at = now
    throttle.clear_pair(session, user.email, client)


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
        user.login_generation = (user.login_generation or 0) + 1  # drops a pending login
        audit.record(session, now, "account.locked", None, subject_user_id=user.id)
    session.flush()


def check_second_factor(
    session: Session,
    now: dt.datetime,
    user: User,
    generation: int,
    code: str,
    settings: Settings,
    client: str = "",
) -> bool:
    """The second login step: a TOTP or recovery code for the pending login `generation`.

    Raises InvalidInput (field 'code') for something that is no code at all (not evaluated,
    not counted), and LoginRestart when the pending login is gone: locked, throttled, or its
    TOTP_ATTEMPTS codes spent. An attempt is reserved with a conditional UPDATE before the code
    is evaluated, so parallel requests cannot evaluate more than TOTP_ATTEMPTS codes either.
    A wrong code counts toward the account's lockout and the client's throttles.
    """
    kind, value = textnorm.normalise_code(code)
    keys = throttle.login_keys(user.email, client, settings)
    locked = user.locked_until is not None and user.locked_until > now
    if locked or throttle.blocked_until(session, now, keys) is not None:
        raise LoginRestart(MSG_LOGIN_FAILED)
    reserved = session.execute(
        update(User)
        .where(User.id == user.id)
        .where(User.login_generation == generation)
        .where(User.totp_attempts < settings.TOTP_ATTEMPTS)
        .values(totp_attempts=User.totp_attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if reserved.rowcount != 1:
        raise LoginRestart(MSG_LOGIN_FAILED)
    if kind == "totp":
        ok = verify_totp(session, now, user, value)
    else:
        ok = use_recovery_code(session, now, user, value)
    if ok:
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(totp_attempts=0, login_generation=User.login_generation + 1)
            .execution_options(synchronize_session=False)
        )
        session.refresh(user)
        _login_succeeded(session, now, user, client)
        return True
    _register_failure(session, now, user, settings)
    throttle.register_failure(session, now, keys, settings)
    session.refresh(user)
    if user.totp_attempts >= settings.TOTP_ATTEMPTS or user.login_generation != generation:
        session.execute(
            update(User)
            .where(User.id == user.id)
            .where(User.login_generation == generation)
            .values(login_generation=User.login_generation + 1)
            .execution_options(synchronize_session=False)
        )
        audit.record(session, now, "account.2fa_attempts_spent", None, subject_user_id=user.id)
        raise LoginRestart(MSG_LOGIN_FAILED)
    return False


def end_all_sessions(session: Session, user: User) -> None:
    """Invalidate every session of the user (checked on each request)."""
    session.execute(
        update(User).where(User.id == user.id).values(session_version=User.session_version + 1)
    )
    session.refresh(user)


def change_password(session: Session, now: dt.datetime, user: User, current: str, new: str) -> None:
    if _verify_any(user.password_hash, current) is None:
        raise InvalidInput(N_("Das aktuelle Passwort ist falsch."), "current_password")
    check_password_policy(new, "new_password")
    set_password(session, now, user, new)


def set_password(
    session: Session, now: dt.datetime, user: User, new: str, actor: User | None = None
) -> None:
    check_password_policy(new, "new_password")
    user.password_hash = hash_password(new)
    # A new password also ends a lockout and every client's delay for this address.
    user.failed_logins = 0
    user.first_failed_at = None
    user.locked_until = None
    throttle.clear_login(session, user.email)
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
    try:
        kind, code = textnorm.normalise_code(code)
    except InvalidInput:
        return None
    if kind != "totp":
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


# --- password reset by mail -----------------------------------------------------------------

RESET_VALID = dt.timedelta(hours=2)


def request_password_reset(session: Session, now: dt.datetime, email: str, locale: str) -> None:
    """Note a reset request for the scheduler. No lookup happens here: the form does the same
    work for every address (one insert), so neither its answer nor its timing tells whether
    an account exists. A malformed address is dropped silently, as an unknown one."""
    try:
        address = normalise_email(email)
    except InvalidInput:
        return
    session.add(ResetRequest(email=address, locale=(locale or "de")[:5], created_at=now))
    session.flush()


def send_reset_mails(session: Session, now: dt.datetime, settings: Settings) -> int:
    """The scheduler's half of a reset: for each request whose address has an enabled account,
    a single-use link by mail (at most one per account and minute); the request is removed."""
    sent = 0
    for request in session.scalars(select(ResetRequest).order_by(ResetRequest.id).limit(500)):
        session.delete(request)
        user = session.scalar(select(User).where(User.email == request.email))
        if user is None or not user.is_enabled:
            continue
        token = issue_user_token(session, now, user, TokenPurpose.SET_PASSWORD, RESET_VALID)
        row = outbox.enqueue(
            session,
            now,
            kind="password_reset",
            to_user=user,
            dedupe_key=f"reset:{user.id}:{now:%Y%m%d%H%M}",
            link_path=links.set_password(token),
        )
        sent += row is not None
    session.flush()
    return sent
