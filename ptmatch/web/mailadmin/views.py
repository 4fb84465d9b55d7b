"""Mail-Ausgang: outbox health for admins (counts, undeliverable mails with their last error,
re-send). Shows metadata only, never a mail's body."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.domain import admin
from ptmatch.domain.errors import DomainError
from ptmatch.models import Role
from ptmatch.notifications import delivery
from ptmatch.web.bounds import page_arg
from ptmatch.web.security import current_db_user, require_roles

bp = Blueprint("mailadmin", __name__)
require_roles(bp, Role.ADMIN)

PER_PAGE = 50


@bp.route("/")
def index():
    """Counts per status, mails waiting for a retry, and the dead ones."""
    db = get_session()
    page = page_arg()
    counts = delivery.status_counts(db)
    dead = delivery.dead_messages(db, page=page, per_page=PER_PAGE + 1)
    return render_template(
        "mailadmin/index.html",
        counts=counts,
        dead=dead[:PER_PAGE],
        has_next=len(dead) > PER_PAGE,
        page=page,
        retrying=delivery.retrying_messages(db),
    )


@bp.route("/<int:outbox_id>/erneut-senden", methods=["POST"])
def resend(outbox_id: int):
    """Give one dead mail a fresh set of attempts."""
    try:
        admin.resend_mail(get_session(), clock.now(), outbox_id, current_db_user())
    except DomainError as err:
        flash(err.text(_), "warning")
    else:
        flash(_("Die Nachricht wird erneut gesendet."), "success")
    return redirect(url_for("mailadmin.index"))


@bp.route("/alle-erneut-senden", methods=["POST"])
def resend_all():
    """Re-send every dead mail (e.g. after the SMTP settings were fixed)."""
    count = admin.resend_all_dead_mail(get_session(), clock.now(), current_db_user())
    flash(_("%(count)s Nachrichten werden erneut gesendet.", count=count), "success")
    return redirect(url_for("mailadmin.index"))
