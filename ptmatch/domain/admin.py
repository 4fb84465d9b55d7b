"""Administration: accounts (deactivate, 2FA reset, staff invitations), which practices a
secretariat serves, the audit log with filters, and re-sending undeliverable mails.

Therapist approval and practice creation / therapist assignment live in
`ptmatch.domain.practices`; the admin views call them. Nothing here reads clinical data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased, contains_eager

from ptmatch import links
from ptmatch.catalog import N_
from ptmatch.domain import accounts, audit
from ptmatch.domain.errors import InvalidInput, NotAllowed, NotFound
from ptmatch.domain.paging import Page
from ptmatch.models import (
    AuditEvent,
    OutboxMessage,
    OutboxStatus,
    Practice,
    Role,
    SecretariatAssignment,
    Therapist,
    TokenPurpose,
    User,
)
from ptmatch.notifications import outbox

BERLIN = ZoneInfo("Europe/Berlin")
PER_PAGE = 50
INVITE_VALID_FOR = dt.timedelta(days=7)


def _page(session: Session, query, page: int, per_page: int) -> Page:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    page = min(max(1, page), max(1, -(-total // per_page)))  # past the end: the last page
    items = list(session.execute(query.limit(per_page).offset((page - 1) * per_page)).all())
    return Page(items=items, page=page, per_page=per_page, total=total)


def _require_admin(actor: User) -> None:
    if actor.role != Role.ADMIN or not actor.is_enabled:
        raise NotAllowed(N_("Nur für die Verwaltung."))


# --- accounts -----------------------------------------------------------------------------


def list_users(
    session: Session,
    *,
    role: Role | None = None,
    q: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Page:
    """Accounts, newest first; `q` matches the e-mail address or the display name."""
    query = select(User).order_by(User.created_at.desc(), User.id.desc())
    if role is not None:
        query = query.where(User.role == role)
    q = (q or "").strip().lower()
    if q:
        like = f"%{_escape_like(q)}%"
        query = query.where(
            or_(
                func.lower(User.email).like(like, escape="\\"),
                func.lower(User.display_name).like(like, escape="\\"),
            )
        )
    result = _page(session, query, page, per_page)
    return Page(
        items=[row[0] for row in result.items],
        page=result.page,
        per_page=per_page,
        total=result.total,
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def deactivate_user(session: Session, now: dt.datetime, admin: User, user: User) -> None:
    """Disable the account; every session of it ends at once (session version bump)."""
    _require_admin(admin)
    if user.id == admin.id:
        raise InvalidInput(N_("Sie können Ihr eigenes Konto nicht deaktivieren."))
    if not user.is_enabled:
        return
    user.is_enabled = False
    accounts.end_all_sessions(session, user)
    audit.record(
        session, now, "account.deactivated", admin, subject_user_id=user.id, role=str(user.role)
    )


def reactivate_user(session: Session, now: dt.datetime, admin: User, user: User) -> None:
    _require_admin(admin)
    if user.is_enabled:
        return
    user.is_enabled = True
    user.failed_logins = 0
    user.first_failed_at = None
    user.locked_until = None
    session.flush()
    audit.record(
        session, now, "account.reactivated", admin, subject_user_id=user.id, role=str(user.role)
    )


def reset_two_factor(session: Session, now: dt.datetime, admin: User, user: User) -> None:
    """Remove the user's TOTP and recovery codes; staff must enrol again at the next login."""
    _require_admin(admin)
    if user.id == admin.id:
        raise InvalidInput(
            N_(
                "Die eigene Zwei-Faktor-Anmeldung setzt eine andere Person aus der Verwaltung "
                "zurück."
            )
        )
    accounts.reset_totp(session, now, user, admin)


def invite_staff(
    session: Session,
    now: dt.datetime,
    admin: User,
    *,
    email: str,
    role: Role,
    display_name: str = "",
) -> User:
    """Create a secretariat or admin account without a password; the person gets a mail to
    set one (and enrols 2FA at the first login). Therapists register themselves."""
    _require_admin(admin)
    if role not in (Role.SECRETARY, Role.ADMIN):
        raise InvalidInput(N_("Bitte eine Rolle wählen."), "role")
    user = accounts.create_user(
        session,
        now,
        email=email,
        password=None,
        role=role,
        display_name=display_name.strip(),
        actor=admin,
    )
    user.email_verified_at = now  # the admin typed it; the set-password link proves it anyway
    token = accounts.issue_user_token(
        session, now, user, TokenPurpose.SET_PASSWORD, INVITE_VALID_FOR
    )
    outbox.enqueue(
        session,
        now,
        kind="set_password",
        dedupe_key=f"staff-invite:{user.id}",
        to_user=user,
        link_path=links.set_password(token),
    )
    return user


# --- therapists and practices ----------------------------------------------------------------


def pending_therapists(session: Session) -> list[Therapist]:
    """Therapist accounts waiting for approval, oldest first."""
    return list(
        session.scalars(
            select(Therapist)
            .join(User, User.id == Therapist.user_id)
            .options(contains_eager(Therapist.user))
            .where(Therapist.approved_at.is_(None), User.is_enabled.is_(True))
            .order_by(User.created_at, Therapist.id)
        )
    )


def list_practices(session: Session) -> list[tuple[Practice, int]]:
    """Every practice with its number of therapists."""
    counts = (
        select(Therapist.practice_id, func.count(Therapist.id).label("n"))
        .group_by(Therapist.practice_id)
        .subquery()
    )
    rows = session.execute(
        select(Practice, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.practice_id == Practice.id)
        .order_by(Practice.name)
    ).all()
    return [(practice, n) for practice, n in rows]


def set_practice_active(
    session: Session, now: dt.datetime, admin: User, practice: Practice, active: bool
) -> None:
    """Switch a practice on or off (an inactive practice's therapists cannot work; see
    `practices.get_active_therapist`). Name, address and texts are edited with
    `practices.update_practice_profile`."""
    _require_admin(admin)
    if practice.is_active == active:
        return
    practice.is_active = active
    session.flush()
    audit.record(
        session,
        now,
        "practice.activated" if active else "practice.deactivated",
        admin,
        practice_id=practice.id,
    )


# --- secretariats ------------------------------------------------------------------------------


def list_secretaries(session: Session) -> list[tuple[User, list[Practice]]]:
    """Every secretariat account with the practices it serves (two queries, no N+1)."""
    users = list(
        session.scalars(select(User).where(User.role == Role.SECRETARY).order_by(User.email))
    )
    served: dict[int, list[Practice]] = {u.id: [] for u in users}
    if users:
        rows = session.execute(
            select(SecretariatAssignment.user_id, Practice)
            .join(Practice, Practice.id == SecretariatAssignment.practice_id)
            .where(SecretariatAssignment.user_id.in_(served))
            .order_by(Practice.name)
        ).all()
        for user_id, practice in rows:
            served[user_id].append(practice)
    return [(u, served[u.id]) for u in users]


def set_served_practices(
    session: Session, now: dt.datetime, admin: User, secretary: User, practice_ids: set[int]
) -> None:
    """Make `secretary` serve exactly these practices; each change is audited."""
    _require_admin(admin)
    if secretary.role != Role.SECRETARY:
        raise InvalidInput(N_("Dieses Konto gehört nicht zum Sekretariat."))
    practice_ids = set(practice_ids)
    known = (
        set(session.scalars(select(Practice.id).where(Practice.id.in_(practice_ids))))
        if practice_ids
        else set()
    )
    if known != practice_ids:
        raise InvalidInput(N_("Unbekannte Praxis."), "practices")
    current = set(
        session.scalars(
            select(SecretariatAssignment.practice_id).where(
                SecretariatAssignment.user_id == secretary.id
            )
        )
    )
    for practice_id in sorted(practice_ids - current):
        session.add(SecretariatAssignment(user_id=secretary.id, practice_id=practice_id))
        audit.record(
            session,
            now,
            "role.secretariat_assigned",
            admin,
            subject_user_id=secretary.id,
            practice_id=practice_id,
        )
    removed = current - practice_ids
    if removed:
        session.execute(
            delete(SecretariatAssignment).where(
                SecretariatAssignment.user_id == secretary.id,
                SecretariatAssignment.practice_id.in_(removed),
            )
        )
        for practice_id in sorted(removed):
            audit.record(
                session,
                now,
                "role.secretariat_unassigned",
                admin,
                subject_user_id=secretary.id,
                practice_id=practice_id,
            )
    session.flush()


# --- the mail outbox ---------------------------------------------------------------------------


def resend_mail(session: Session, now: dt.datetime, outbox_id: int, actor: User) -> OutboxMessage:
    """Give a dead mail a fresh start: PENDING, attempts 0, due now (same Message-ID)."""
    _require_admin(actor)
    row = session.get(OutboxMessage, outbox_id)
    if row is None:
        raise NotFound(N_("Die Nachricht wurde nicht gefunden."))
    if row.status != OutboxStatus.DEAD:
        raise InvalidInput(N_("Nur unzustellbare Nachrichten können erneut gesendet werden."))
    row.status = OutboxStatus.PENDING
    row.attempts = 0
    row.next_attempt_at = now
    row.claimed_at = None
    audit.record(session, now, "mail.resend", actor, subject_user_id=row.user_id, outbox_id=row.id)
    session.flush()
    return row


def resend_all_dead_mail(session: Session, now: dt.datetime, actor: User) -> int:
    """Re-send every dead mail (after fixing the SMTP settings, say)."""
    _require_admin(actor)
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.DEAD)
        .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        audit.record(session, now, "mail.resend_all", actor, count=result.rowcount)
    session.flush()
    return result.rowcount


# --- audit log ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    actor_email: str | None
    subject_email: str | None
    practice_name: str | None


def audit_log(
    session: Session,
    *,
    actor: str = "",
    action: str = "",
    patient_id: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Page:
    """Audit events, newest first. `actor` matches the actor's e-mail (substring) or is an
    account id; `action` is a prefix ("offer." finds every offer event); dates are Berlin
    calendar days, both inclusive. Items are `AuditRow`s."""
    actor_user = aliased(User)
    subject_user = aliased(User)
    query = (
        select(AuditEvent, actor_user.email, subject_user.email, Practice.name)
        .outerjoin(actor_user, actor_user.id == AuditEvent.actor_id)
        .outerjoin(subject_user, subject_user.id == AuditEvent.subject_user_id)
        .outerjoin(Practice, Practice.id == AuditEvent.practice_id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    )
    actor = (actor or "").strip().lower()
    if actor.isdigit():
        query = query.where(AuditEvent.actor_id == int(actor))
    elif actor == "system":
        query = query.where(AuditEvent.actor_id.is_(None))
    elif actor:
        query = query.where(
            func.lower(actor_user.email).like(f"%{_escape_like(actor)}%", escape="\\")
        )
    action = (action or "").strip()
    if action:
        query = query.where(AuditEvent.action.like(f"{_escape_like(action)}%", escape="\\"))
    if patient_id is not None:
        query = query.where(AuditEvent.patient_id == patient_id)
    if date_from is not None:
        query = query.where(AuditEvent.at >= _berlin_midnight(date_from))
    if date_to is not None:
        query = query.where(AuditEvent.at < _berlin_midnight(date_to + dt.timedelta(days=1)))
    result = _page(session, query, page, per_page)
    rows = [AuditRow(event, a, s, p) for event, a, s, p in result.items]
    return Page(items=rows, page=result.page, per_page=per_page, total=result.total)


def audit_actions(session: Session) -> list[str]:
    """The distinct actions in the log (for the filter's suggestions)."""
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def _berlin_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=BERLIN).astimezone(dt.UTC)
