"""Enqueue mails as outbox rows in the caller's transaction (rollback leaves no mail).

`enqueue` renders the generic mail at once (subject, text and HTML in the recipient's
locale) and stores it; the sender job delivers it later. A dedupe key makes enqueueing
idempotent: a second enqueue with the same key is a no-op, also under a race (the
unique constraint decides, inside a savepoint). `enqueue_many` writes one kind of mail to
many recipients in one statement (``INSERT … ON CONFLICT (dedupe_key) DO NOTHING``),
rendered once per locale: the 99 "taken" notices of an accept.

On PostgreSQL every transaction that enqueues also sends ``NOTIFY ptmatch_outbox``; it is
delivered when (and only if) the transaction commits, and wakes the sender at once
(``ptmatch.scheduler.wakeup``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ptmatch.db import settings_of
from ptmatch.models import OutboxMessage, OutboxStatus, User
from ptmatch.notifications.messages import KINDS

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TRANSLATIONS_DIR = PACKAGE_DIR / "translations"
BERLIN = ZoneInfo("Europe/Berlin")

_translations: dict[str, NullTranslations] = {}


def translations(locale: str) -> NullTranslations:
    if locale not in _translations:
        if locale == "de":
            _translations[locale] = NullTranslations()  # msgids are German
        else:
            _translations[locale] = Translations.load(str(TRANSLATIONS_DIR), [locale])
    return _translations[locale]


_environments: dict[str, Environment] = {}


def _environment(locale: str) -> Environment:
    # One environment per locale, kept: a new one per mail recompiled both templates every
    # time (~9 ms each; an accept that tells 99 others took seconds -- see BENCHMARKS.md).
    env = _environments.get(locale)
    if env is None:
        env = Environment(
            loader=FileSystemLoader(str(PACKAGE_DIR / "templates" / "mail")),
            autoescape=select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_translations(translations(locale), newstyle=True)
        _environments[locale] = env
    return env


_WHEN_FORMATS = {"de": "EEEE, d. MMMM y, HH:mm 'Uhr'", "en": "EEEE, d MMMM y, HH:mm"}


def format_when(when: dt.datetime, locale: str) -> str:
    """A date and time in Berlin local time, e.g. "Dienstag, 24. November 2026, 10:00 Uhr"."""
    pattern = _WHEN_FORMATS.get(locale, _WHEN_FORMATS["en"])
    return format_datetime(when.astimezone(BERLIN), pattern, locale=locale)


def render(
    kind: str,
    locale: str,
    link: str,
    when: dt.datetime | None = None,
    deadline: dt.datetime | None = None,
) -> tuple[str, str, str]:
    """Return (subject, text, html) for a kind in a locale."""
    spec = KINDS[kind]
    gettext = translations(locale).gettext
    context = {
        "subject": gettext(spec.subject),
        "line": gettext(spec.line),
        "button": gettext(spec.button),
        "link": link,
        "when": format_when(when, locale) if when else None,
        "deadline": format_when(deadline, locale) if deadline else None,
        "locale": locale,
    }
    env = _environment(locale)
    text = env.get_template("generic.txt").render(**context)
    html = env.get_template("generic.html").render(**context)
    return context["subject"], text, html


def absolute_link(base_url: str, path: str) -> str:
    """BASE_URL + path. A full URL (url_for(..., _external=True) carries the request's Host)
    is cut down to its path and query first: links never point anywhere but BASE_URL."""
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        path = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    return base_url.rstrip("/") + (path if path.startswith("/") else "/" + path)


def enqueue(
    session: Session,
    now: dt.datetime,
    *,
    kind: str,
    dedupe_key: str,
    link_path: str,
    to_user: User | None = None,
    to_addr: str | None = None,
    locale: str | None = None,
    when: dt.datetime | None = None,
    deadline: dt.datetime | None = None,
) -> OutboxMessage | None:
    """Write one mail to the outbox. Returns the row, or None if the dedupe key was used.

    Links are built from the BASE_URL of the settings the session carries (the edge that
    made it), never from a request's Host header."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    address = to_addr or (to_user.email if to_user else None)
    if not address:
        return None
    locale = locale or (to_user.locale if to_user else "de") or "de"
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)):
        return None
    settings = settings_of(session)
    subject, text, html = render(
        kind, locale, absolute_link(settings.BASE_URL, link_path), when, deadline
    )
    return insert(
        session,
        now,
        dedupe_key=dedupe_key,
        kind=kind,
        user_id=to_user.id if to_user else None,
        to_addr=address,
        locale=locale,
        subject=subject,
        body_text=text,
        body_html=html,
        message_id=f"<{secrets.token_hex(16)}@{settings.mail_domain}>",
    )


def insert(session: Session, now: dt.datetime, **fields) -> OutboxMessage | None:
    """Add one due row (a mail or an SMS) in a savepoint and wake the sender. None if its
    dedupe key was taken meanwhile (the unique constraint decides)."""
    message = OutboxMessage(
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        last_error="",
        **fields,
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return None  # another transaction enqueued the same key first
    notify(session)
    return message


NOTIFY_CHANNEL = "ptmatch_outbox"


def notify(session: Session) -> None:
    """PostgreSQL: wake the sender when this transaction commits (once per transaction;
    PostgreSQL drops a rollback's notifications). SQLite: nothing, the sender polls."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    transaction = session.get_transaction()
    if session.info.get("ptmatch_notified") is transaction:  # held, so never a reused id
        return
    session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    session.info["ptmatch_notified"] = transaction


def enqueue_many(
    session: Session,
    now: dt.datetime,
    *,
    kind: str,
    link_path: str,
    recipients: list[tuple[User, str]],
) -> int:
    """One kind of mail with one link to many users: `recipients` is [(user, dedupe_key)].
    The same rows `enqueue` would write (users without an address are skipped, a used
    dedupe key is a no-op), in one INSERT. Returns how many rows were written."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    settings = settings_of(session)
    link = absolute_link(settings.BASE_URL, link_path)
    rendered: dict[str, tuple[str, str, str]] = {}
    rows = []
    for user, dedupe_key in recipients:
        if user is None or not user.email:
            continue
        locale = user.locale or "de"
        if locale not in rendered:
            rendered[locale] = render(kind, locale, link)
        subject, body_text, body_html = rendered[locale]
        rows.append(
            {
                "dedupe_key": dedupe_key,
                "kind": kind,
                "user_id": user.id,
                "to_addr": user.email,
                "locale": locale,
                "subject": subject,
                "body_text": body_text,
                "body_html": body_html,
                "message_id": f"<{secrets.token_hex(16)}@{settings.mail_domain}>",
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "claimed_at": None,
                "created_at": now,
                "sent_at": None,
                "last_error": "",
            }
        )
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(OutboxMessage.__table__).on_conflict_do_nothing(
        index_elements=["dedupe_key"]
    )
    session.flush()  # rows of this session's own enqueue() first, so the conflict sees them
    written = session.connection().execute(stmt, rows).rowcount
    notify(session)
    return max(written, 0) if written is not None else len(rows)
