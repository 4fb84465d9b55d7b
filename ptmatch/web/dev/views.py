"""Development-only pages: the dev mailbox. Registered only in development with DEBUG on
(and refuses to answer otherwise), so `scripts/run` demos every mail without a mail server.

The one place that shows mail bodies: outbox rows, and the `.eml` files the file sender
wrote under MAIL_DIR.
"""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

from flask import Blueprint, Response, abort, render_template
from sqlalchemy import func, select

from ptmatch.db import get_session
from ptmatch.models import OutboxMessage
from ptmatch.web import current_settings
from ptmatch.web.bounds import page_arg

bp = Blueprint("dev", __name__)

PER_PAGE = 50
MAX_FILES = 200
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.eml$")
_LINK = re.compile(r"https?://[^\s<>\"']+")


@bp.before_request
def _debug_only():
    settings = current_settings()
    if settings.ENV != "development" or not settings.DEBUG:
        abort(404)


def _mail_dir() -> Path:
    return Path(current_settings().MAIL_DIR)


@bp.route("/mail")
def mailbox():
    """Every outbox row (newest first) and the .eml files written by the file sender."""
    db = get_session()
    page = page_arg()
    rows = list(
        db.scalars(
            select(OutboxMessage)
            .order_by(OutboxMessage.id.desc())
            .offset((page - 1) * PER_PAGE)
            .limit(PER_PAGE + 1)
        )
    )
    total = db.scalar(select(func.count()).select_from(OutboxMessage))
    files = (
        sorted(_mail_dir().glob("*.eml"), reverse=True)[:MAX_FILES] if _mail_dir().is_dir() else []
    )
    return render_template(
        "dev/mailbox.html",
        rows=rows[:PER_PAGE],
        has_next=len(rows) > PER_PAGE,
        page=page,
        total=total,
        files=[f.name for f in files],
        mail_dir=str(_mail_dir()),
    )


@bp.route("/mail/<int:outbox_id>")
def message(outbox_id: int):
    """One outbox row: headers, plain text, the links in it, and the HTML part."""
    row = get_session().get(OutboxMessage, outbox_id) or abort(404)
    return render_template("dev/message.html", row=row, links=_LINK.findall(row.body_text))


@bp.route("/mail/<int:outbox_id>/html")
def message_html(outbox_id: int):
    """The HTML part as the recipient sees it, locked down (no scripts, no remote loads)."""
    row = get_session().get(OutboxMessage, outbox_id) or abort(404)
    response = Response(row.body_html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox allow-popups "
        "allow-popups-to-escape-sandbox"
    )
    return response


@bp.route("/mail/datei/<name>")
def mail_file(name: str):
    """One .eml file from MAIL_DIR (names are checked: nothing outside the folder)."""
    if not _FILE_NAME.match(name):
        abort(404)
    path = _mail_dir() / name
    if not path.is_file():
        abort(404)
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    text_part = msg.get_body(preferencelist=("plain",))
    text = text_part.get_content() if text_part is not None else ""
    headers = [
        (key, str(msg[key]))
        for key in ("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted")
        if msg[key] is not None
    ]
    return render_template(
        "dev/mail_file.html", name=name, headers=headers, text=text, links=_LINK.findall(text)
    )
