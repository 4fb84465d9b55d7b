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

from ptmatch import clock
from ptmatch.db import get_session, reads_only
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


@bp.route("/o/<token>", methods=["GET", "POST"])
@reads_only  # the GET: no write transaction (mail scanners and bursts of readers)
def token_offer(token: str):
    """The offer a mail links to: details and two buttons; answering is a POST."""
    db, now = get_session(), clock.now()
    offer = offers.get_offer_by_token(db, token)
    user = current_db_user()
    patient_user = offer.patient.user if offer is not None and offer.slot_id else None
    if patient_user is None or (user is not None and user.id != patient_user.id):
        return _neutral()
    if offer.status == OfferStatus.TAKEN:
        return render_template("offers/taken.html")
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
        return render_template("offers/taken.html")
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
