"""Offer pages: the mailed token link (public: the token is the credential), the same offer
from the patient's dashboard, and the booking confirmation with its .ics. Deny by default:
every page but the token link needs a logged-in patient.

Accept and decline are POSTs: mail scanners prefetch GET links. A used, expired, foreign or
malformed token gets one neutral page (always the same, status 404) and changes nothing; the
one exception is the patient's own accepted offer, which shows her booking (she opened the
mail again).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf

from ptmatch import clock
from ptmatch.db import begin_write_unless, get_session, read_session, reads_only
from ptmatch.domain import offers
from ptmatch.domain.errors import (
    InvalidInput,
    NotAllowed,
    NotFound,
    OfferClosed,
    OfferExpired,
    SlotTaken,
)
from ptmatch.models import Offer, OfferStatus, Role
from ptmatch.web import current_settings
from ptmatch.web.offers.forms import ACCEPT, AnswerForm, ConfirmForm
from ptmatch.web.pagecache import shared_pages
from ptmatch.web.security import current_db_user, require_roles

bp = Blueprint("offers", __name__)
require_roles(bp, Role.PATIENT, exempt=("token_offer",))  # the token is the credential there


def _neutral():
    return render_template("offers/neutral.html"), 404


def _details(offer: Offer) -> dict:
    slot = offer.slot
    return {
        "offer": offer,
        "slot": slot,
        "practice": slot.practice,
        "no_show_limit": current_settings().NO_SHOW_PAUSE_AFTER,
    }


def _shared_fills() -> dict:
    """The per-request values of a shared token page: the CSRF token and the way back of the
    language switch (the page's own address)."""
    return {
        "csrf_token": generate_csrf(),
        "next_path": request.full_path if request.method == "GET" else "",
    }


def _taken():
    return shared_pages().render("offers/taken.html", (), _shared_fills())


def _offer_page(session, token: str, *, answering: bool):
    """The quick way, one read without the ORM: the page of a GET (rendered once per slot,
    deadline and language: every patient of a wave opens the same one), and for an answer
    (`answering`) the "taken" page when the slot is gone, with no write. None: go the long
    way (an answer that may win; an accepted offer, which shows its booking)."""
    page = offers.get_offer_page(session, token)
    user = current_db_user()
    if page is None or page.patient_user_id is None:
        return None if answering else _neutral()
    if user is not None and user.id != page.patient_user_id:
        return None if answering else _neutral()
    now = clock.now()
    if page.taken(now):
        return _taken()
    if answering or page.status == OfferStatus.ACCEPTED:
        return None
    if not page.answerable(now):
        return _neutral()
    limit = current_settings().NO_SHOW_PAUSE_AFTER
    return shared_pages().render(
        "offers/offer.html",
        (page.slot, page.practice, page.expires_at, limit),
        {**_shared_fills(), "action": url_for("offers.token_offer", token=token)},
        offer=page,
        slot=page.slot,
        practice=page.practice,
        no_show_limit=limit,
        form_errors=False,
    )


def _taken_now(token: str) -> bool:
    with read_session() as peek:
        page = offers.get_offer_page(peek, token)
        return page is not None and page.taken(clock.now())


@bp.route("/o/<token>", methods=["GET", "POST"])
@reads_only  # the GET: no write transaction (mail scanners and bursts of readers)
def token_offer(token: str):
    """The offer a mail links to: details and two buttons; answering is a POST. An answer
    first looks in a read-only session: the losers of a burst that arrive after the winner
    never queue for a write (SQLite's single write lock, PostgreSQL's row lock)."""
    if request.method == "POST":
        with read_session() as peek:
            shown = _offer_page(peek, token, answering=True)
    else:
        shown = _offer_page(get_session(), token, answering=False)
    if shown is not None:
        return shown
    db = get_session()
    if request.method == "POST" and not begin_write_unless(db, lambda: _taken_now(token)):
        return _taken()  # the slot went to someone else while this answer waited for the lock
    return _answer_or_show(db, token)


def _answer_or_show(db, token: str):
    """The full path of a token page: the offer through the ORM, then the answer (POST) or
    the page of its state."""
    now = clock.now()
    offer = offers.get_offer_by_token(db, token)
    user = current_db_user()
    patient_user = offer.patient.user if offer is not None and offer.slot_id else None
    if patient_user is None or (user is not None and user.id != patient_user.id):
        return _neutral()
    if offer.status == OfferStatus.TAKEN:
        return _taken()
    if offer.status == OfferStatus.ACCEPTED:  # opened again after booking: show the booking
        booking = offers.get_booking(db, offer.slot)
        if booking is not None and booking.patient_id == offer.patient_id:
            return render_template(
                "offers/booked.html", booking=booking, logged_in=user is not None, **_details(offer)
            )
    if not offers.is_answerable(offer, now):
        return _neutral()
    form = AnswerForm() if request.method == "POST" else None  # a GET only shows the page
    if form is None or not form.validate_on_submit():
        return render_template(
            "offers/offer.html",
            form_errors=bool(form and form.errors),
            action=url_for("offers.token_offer", token=token),
            **_details(offer),
        )
    try:
        if form.answer.data == ACCEPT:
            booking = offers.accept_offer(db, now, offer, patient_user, current_settings())
            return render_template(
                "offers/booked.html", booking=booking, logged_in=user is not None, **_details(offer)
            )
        offers.decline_offer(db, now, offer, patient_user, current_settings())
        return render_template("offers/declined.html")
    except SlotTaken:
        db.rollback()  # a loser wrote nothing: give back the write lock before rendering
        return _taken()
    except (OfferExpired, OfferClosed, NotAllowed):
        return _neutral()


@bp.route("/patient/angebot/<int:offer_id>", methods=["GET", "POST"])
def patient_offer(offer_id: int):
    """One of the logged-in patient's own offers, answerable while open."""
    db, now, user = get_session(), clock.now(), current_db_user()
    try:
        offer = offers.get_patient_offer(db, user, offer_id)
    except NotFound:
        abort(404)
    form = AnswerForm()
    can_answer = offers.is_answerable(offer, now)
    if can_answer and form.validate_on_submit():
        try:
            if form.answer.data == ACCEPT:
                booking = offers.accept_offer(db, now, offer, user, current_settings())
                flash(_("Ihr Termin ist gebucht."), "success")
                return redirect(url_for("offers.booking", booking_id=booking.id))
            offers.decline_offer(db, now, offer, user, current_settings())
            flash(
                _("Sie haben das Angebot abgelehnt. Sie behalten Ihren Platz auf der Warteliste."),
                "info",
            )
        except (SlotTaken, OfferExpired, OfferClosed) as err:
            flash(err.text(_), "warning")
        return redirect(url_for("offers.patient_offer", offer_id=offer.id))
    return render_template(
        "offers/patient_offer.html",
        form=form,
        can_answer=can_answer,
        state=offer.effective_status(now),
        **_details(offer),
    )


def _own_booking(booking_id: int):
    user = current_db_user()
    try:
        return user, offers.get_patient_booking(get_session(), user, booking_id)
    except NotFound:
        abort(404)


@bp.route("/patient/termin/<int:booking_id>")
def booking(booking_id: int):
    """The booking confirmation: time, place or video details, the practice's notes, .ics."""
    _user, booking = _own_booking(booking_id)
    now = clock.now()
    return render_template(
        "offers/booking.html",
        booking=booking,
        slot=booking.slot,
        practice=booking.slot.practice,
        video_link=offers.video_link(booking),
        can_cancel=offers.can_cancel_booking(booking, now),
        form=ConfirmForm(),
    )


@bp.route("/patient/termin/<int:booking_id>.ics")
def booking_ics(booking_id: int):
    """The booking as an iCalendar file."""
    from ptmatch.domain import calendar

    user, booking = _own_booking(booking_id)
    domain = urlsplit(current_settings().BASE_URL).hostname or "ptmatch"
    body = calendar.booking_ics(booking, locale=user.locale or "de", domain=domain)
    return Response(
        body,
        mimetype="text/calendar",
        headers={
            "Content-Disposition": f'attachment; filename="termin-{booking.id}.ics"',
            "Cache-Control": "no-store",
        },
    )


@bp.route("/patient/termin/<int:booking_id>/absagen", methods=["POST"])
def cancel_booking(booking_id: int):
    """Cancel within the practice's notice; the time is offered to others again."""
    user, booking = _own_booking(booking_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        offers.cancel_booking_by_patient(
            get_session(), clock.now(), user, booking, current_settings()
        )
    except (InvalidInput, NotAllowed) as err:
        flash(err.text(_), "warning")
    else:
        flash(_("Ihr Termin ist abgesagt. Sie stehen wieder auf Ihren Wartelisten."), "info")
    return redirect(url_for("offers.booking", booking_id=booking.id))
