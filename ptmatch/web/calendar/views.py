"""Calendar: a patient's .ics for a booking, the therapist's private feed and its settings page."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.domain import calendar
from ptmatch.models import Booking, Role, Therapist
from ptmatch.web import current_settings
from ptmatch.web.security import current_db_user, require_roles, roles_required

bp = Blueprint("calendar", __name__)
# Deny by default; the feed is the one public view (its secret URL is the credential).
require_roles(bp, Role.THERAPIST, Role.PATIENT, exempt=("feed",))


def _uid_domain() -> str:
    return urlsplit(current_settings().BASE_URL).hostname or "ptmatch"


def _ics(body: bytes, filename: str | None = None) -> Response:
    response = Response(body, mimetype="text/calendar")
    response.headers["Cache-Control"] = "no-store"
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.route("/kalender/<token>.ics")
def feed(token: str):
    """The therapist's private iCalendar feed; an unknown or disabled token is a 404."""
    db = get_session()
    therapist = calendar.get_feed_therapist(db, token)
    if therapist is None:
        abort(404)
    return _ics(calendar.therapist_feed(db, therapist, clock.now(), domain=_uid_domain()))


@bp.route("/patient/termine/<int:booking_id>.ics")
@roles_required(Role.PATIENT)
def booking_ics(booking_id: int):
    """Download one's own booking as .ics (someone else's booking: 404)."""
    user = current_db_user()
    booking = get_session().get(Booking, booking_id)
    if booking is None or booking.patient.user_id != user.id:
        abort(404)
    return _ics(
        calendar.booking_ics(booking, locale=user.locale, domain=_uid_domain()),
        filename=f"termin-{booking.id}.ics",
    )


def _own_therapist() -> Therapist:
    therapist = get_session().scalar(
        select(Therapist).where(Therapist.user_id == current_db_user().id)
    )
    if therapist is None:
        abort(404)
    return therapist


def _feed_url(token: str) -> str:
    return current_settings().BASE_URL.rstrip("/") + url_for("calendar.feed", token=token)


@bp.route("/praxis/kalender")
@roles_required(Role.THERAPIST)
def settings():
    """The feed's state; the URL itself is shown only once, right after it is created."""
    return render_template(
        "calendar/settings.html", enabled=calendar.is_feed_enabled(_own_therapist()), feed_url=None
    )


@bp.route("/praxis/kalender/neu", methods=["POST"])
@roles_required(Role.THERAPIST)
def rotate():
    """Create a new secret feed URL (the old one stops working)."""
    token = calendar.rotate_feed_token(
        get_session(), _own_therapist(), now=clock.now(), actor=current_db_user()
    )
    url = _feed_url(token)
    webcal = "webcal://" + url.split("://", 1)[1]
    return render_template("calendar/settings.html", enabled=True, feed_url=url, webcal_url=webcal)


@bp.route("/praxis/kalender/aus", methods=["POST"])
@roles_required(Role.THERAPIST)
def disable():
    """Switch the feed off."""
    calendar.disable_feed(get_session(), _own_therapist(), now=clock.now(), actor=current_db_user())
    flash(_("Der Kalender-Link ist abgeschaltet."), "info")
    return redirect(url_for("calendar.settings"))
