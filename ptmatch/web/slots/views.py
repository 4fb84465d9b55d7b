"""Freie Termine: post a free slot from a phone, watch its offers live, pick by hand (manual
mode), cancel, mark attended / no-show, release as "no fit". Therapists work on their own
practice's slots; secretaries on those of the practices they serve."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.domain import access, calendar_rules, matching, offers, rooms
from ptmatch.domain.errors import DomainError
from ptmatch.domain.practices import get_active_therapist
from ptmatch.models import (
    Modality,
    Offer,
    OfferMode,
    Practice,
    Role,
    Slot,
    SlotStatus,
    Therapist,
    User,
)
from ptmatch.web import current_settings
from ptmatch.web.forms import add_domain_error, local_start
from ptmatch.web.security import current_db_user, require_roles
from ptmatch.web.slots.forms import ConfirmForm, PickForm, SlotForm

bp = Blueprint("slots", __name__)
require_roles(bp, Role.THERAPIST, Role.SECRETARY)

BERLIN = ZoneInfo("Europe/Berlin")
CANDIDATES_SHOWN = 30


@dataclass
class Desk:
    """Who is working and for which therapists / practices."""

    user: User
    therapist: Therapist | None  # the therapist themselves; None for the secretariat
    therapists: list[Therapist] = field(default_factory=list)  # may post for these

    @property
    def practice_ids(self) -> set[int]:
        return {t.practice_id for t in self.therapists}


def _desk() -> Desk:
    db, user = get_session(), current_db_user()
    if user.role == Role.THERAPIST:
        therapist = get_active_therapist(db, user)
        if therapist is None:
            abort(403)
        return Desk(user, therapist, [therapist])
    served = access.served_practice_ids(db, user)
    therapists = list(
        db.scalars(
            select(Therapist)
            .join(Practice, Practice.id == Therapist.practice_id)
            .where(
                Therapist.practice_id.in_(served or {-1}),
                Therapist.approved_at.is_not(None),
                Practice.is_active,
            )
            .options(selectinload(Therapist.user), selectinload(Therapist.practice))
            .order_by(Practice.name, Therapist.id)
        )
    )
    return Desk(user, None, therapists)


def _slot_or_404(slot_id: int) -> tuple[Desk, Slot]:
    desk = _desk()
    slot = get_session().get(Slot, slot_id)
    if slot is None or not offers.can_manage_slot(get_session(), desk.user, slot):
        abort(404)
    return desk, slot


@bp.context_processor
def _days():
    """Which days the "Heute" / "Morgen" buttons mean (shown on them: a Friday's "Morgen"
    is a Saturday)."""
    today = clock.now().astimezone(BERLIN).date()
    return {"today": today, "tomorrow": today + dt.timedelta(days=1)}


@bp.route("/")
def index():
    """The slots of the practice(s), upcoming and of the last two weeks, with live counts."""
    desk, db, now = _desk(), get_session(), clock.now()
    slots = offers.list_slots(db, now, desk.practice_ids)
    quick = None
    if desk.therapist is not None:  # the quick form: time, then one tap on Heute / Morgen
        quick = SlotForm(formdata=None)
        _prefill(quick, desk, now)
    return render_template(
        "slots/index.html",
        states=offers.slot_states(db, now, slots),
        desk=desk,
        now=now,
        quick=quick,
    )


def _prefill(form: SlotForm, desk: Desk, now: dt.datetime) -> None:
    therapist = desk.therapist or (desk.therapists[0] if desk.therapists else None)
    local = now.astimezone(BERLIN)
    form.start_time.data = (
        (local + dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0).time()
    )
    form.day.data = local.date() + dt.timedelta(days=1)
    if therapist is not None:
        form.minutes.data = therapist.session_minutes
        form.modality.data = (
            Modality.IN_PERSON.value if therapist.offers_in_person else Modality.VIDEO.value
        )
        proposed = calendar_rules.block_modality_at(  # the therapist's weekly block for that hour
            get_session(),
            therapist,
            dt.datetime.combine(form.day.data, form.start_time.data, tzinfo=BERLIN),
        )
        if proposed is not None and (
            therapist.offers_video if proposed == Modality.VIDEO else therapist.offers_in_person
        ):
            form.modality.data = proposed.value
    last = (
        offers.last_slot(get_session(), therapist)
        if therapist and request.args.get("wie") == "letzter"
        else None
    )
    if last is not None:
        form.start_time.data = last.start_at.astimezone(BERLIN).time()
        form.minutes.data, form.kind.data = last.minutes, last.kind.value
        form.modality.data, form.mode.data = last.modality.value, last.offer_mode.value


def _chosen_start(form: SlotForm, now: dt.datetime) -> dt.datetime | None:
    """The start in UTC from the pressed day button and the Berlin wall-clock time."""
    today = now.astimezone(BERLIN).date()
    if form.today.data:
        day = today
    elif form.tomorrow.data:
        day = today + dt.timedelta(days=1)
    else:
        day = form.day.data
        if day is None:
            form.day.errors = [*form.day.errors, _("Bitte ein Datum wählen.")]
            return None
    return local_start(day, form.start_time, form.dst)


@bp.route("/neu", methods=["GET", "POST"])
def new():
    """Post a free slot: time, then one tap on Heute / Morgen (or a date)."""
    desk, db, now = _desk(), get_session(), clock.now()
    form = SlotForm()
    form.therapist.choices = [
        (t.id, f"{t.user.display_name or t.user.email} · {t.practice.name}")
        for t in desk.therapists
    ]
    form.room.choices = [(0, _("automatisch (eigener oder erster freier Raum)"))] + [
        (r.id, r.name)
        for practice_id in sorted(desk.practice_ids)
        for r in rooms.list_rooms(db, practice_id)
    ]
    if request.method == "GET":
        _prefill(form, desk, now)
    elif form.validate_on_submit():
        therapist = desk.therapist or next(
            (t for t in desk.therapists if t.id == form.therapist.data), None
        )
        start = _chosen_start(form, now)
        if therapist is None:
            form.therapist.errors = [_("Bitte auswählen.")]
        elif start is not None:
            try:
                slot = offers.post_slot(
                    db,
                    now,
                    desk.user,
                    therapist,
                    start_at=start,
                    minutes=form.minutes.data,
                    kind=form.kind.data,
                    modality=form.modality.data,
                    mode=form.mode.data,
                    settings=current_settings(),
                    room_id=form.room.data or None,
                )
            except DomainError as err:
                message = _(err.msgid, **err.params) if hasattr(err, "msgid") else err.text(_)
                if not add_domain_error(form, type(err)(message, err.field)):
                    flash(message, "danger")
            else:
                flash(
                    _("Der Termin ist eingetragen.")
                    if slot.offer_mode == OfferMode.MANUAL or slot.status != SlotStatus.OFFERING
                    else _("Der Termin ist eingetragen und wird angeboten."),
                    "success",
                )
                if slot.room is not None:  # posting picks the room: say which
                    flash(_("Raum: %(room)s", room=slot.room.name), "info")
                warning = calendar_rules.modality_warning(
                    db, therapist, slot.start_at, slot.minutes, slot.modality
                )
                if warning:  # a calendar rule says otherwise: warn, never refuse
                    flash(_(warning), "warning")
                return redirect(url_for("slots.detail", slot_id=slot.id))
    return render_template(
        "slots/new.html", form=form, desk=desk
    ), 200 if request.method == "GET" else 400


@bp.route("/<int:slot_id>")
def detail(slot_id: int):
    """One slot: state, the offers sent, the booking, and (manual mode) the ranked candidates."""
    desk, slot = _slot_or_404(slot_id)
    db, now = get_session(), clock.now()
    state = offers.slot_states(db, now, [slot])[0]
    booked_name = (
        access.patient_label(db, desk.user, state.patient, now)
        if state.patient is not None
        else None
    )
    rows = _offer_rows(db, desk, now, slot)
    candidates = []  # the manual pick: names, pseudonyms and reasons as the policy allows
    if (
        slot.status == SlotStatus.OFFERING
        and slot.offer_mode == OfferMode.MANUAL
        and now < slot.offer_deadline_at
    ):
        ranked = matching.rank_candidates(db, slot, now, limit=CANDIDATES_SHOWN)
        candidates = access.show_candidates(db, desk.user, now, slot, ranked)
    nobody = []  # posted, but nobody could be offered it: say why and what to change
    if state.offered == 0 and slot.status in (SlotStatus.OFFERING, SlotStatus.UNFILLED):
        if slot.offer_mode == OfferMode.AUTO or not candidates:
            nobody = [
                _(r.msgid, **{k: _(v) for k, v in r.params.items()})
                for r in matching.why_nobody(db, slot, now)
            ]
    return render_template(
        "slots/detail.html",
        nobody=nobody,
        slot=slot,
        state=state,
        rows=rows,
        candidates=candidates,
        booked_name=booked_name,
        now=now,
        desk=desk,
        pick_form=PickForm(),
        form=ConfirmForm(),
    )


def _offer_rows(db, desk, now, slot) -> list[access.ShownOffer]:
    sent = db.scalars(select(Offer).where(Offer.slot_id == slot.id).order_by(Offer.wave, Offer.id))
    return access.show_offers(db, desk.user, now, slot, sent)


@bp.route("/<int:slot_id>/angebote")
def offers_fragment(slot_id: int):
    """The offers of a slot as an HTML fragment: the slot page polls it (no reload)."""
    desk, slot = _slot_or_404(slot_id)
    db, now = get_session(), clock.now()
    state = offers.slot_states(db, now, [slot])[0]
    return render_template(
        "slots/_offers.html", slot=slot, state=state, rows=_offer_rows(db, desk, now, slot)
    )


def _act(slot_id: int, action, message: str):
    """Run one domain action on a slot from a one-click POST, flash the outcome, back to the
    slot."""
    desk, slot = _slot_or_404(slot_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        action(get_session(), clock.now(), desk.user, slot)
    except DomainError as err:
        flash(err.text(_), "warning")
    else:
        flash(message, "success")
    return redirect(url_for("slots.detail", slot_id=slot.id))


def _booking_or_404(slot: Slot):
    booking = offers.get_booking(get_session(), slot)
    if booking is None:
        abort(404)
    return booking


@bp.route("/<int:slot_id>/senden", methods=["POST"])
def send(slot_id: int):
    """Manual mode: offer the slot to the ticked candidates."""
    desk, slot = _slot_or_404(slot_id)
    form = PickForm()
    if not form.validate_on_submit():
        flash(_("Bitte mindestens eine Person auswählen."), "warning")
        return redirect(url_for("slots.detail", slot_id=slot.id))
    try:
        sent = offers.send_offers(
            get_session(), clock.now(), slot, form.patients.data, desk.user, current_settings()
        )
    except DomainError as err:
        flash(err.text(_), "warning")
    else:
        flash(_("Angebot an %(num)d Person(en) verschickt.", num=len(sent)), "success")
    return redirect(url_for("slots.detail", slot_id=slot.id))


@bp.route("/<int:slot_id>/absagen", methods=["POST"])
def cancel(slot_id: int):
    """Take the slot back (offers withdrawn, or the booked patient told)."""
    return _act(slot_id, offers.cancel_slot, _("Der Termin ist abgesagt."))


@bp.route("/<int:slot_id>/<any('erschienen', 'nicht-erschienen'):outcome>", methods=["POST"])
def mark(slot_id: int, outcome: str):
    """After the appointment: attended or no-show."""
    status = "attended" if outcome == "erschienen" else "no_show"
    return _act(
        slot_id,
        lambda db, now, user, slot: offers.mark_booking(
            db, now, user, _booking_or_404(slot), status
        ),
        _("Gespeichert."),
    )


@bp.route("/<int:slot_id>/freigeben", methods=["POST"])
def release(slot_id: int):
    """Release the booking as "no fit": the patient gets their lists back."""
    return _act(
        slot_id,
        lambda db, now, user, slot: offers.release_booking(db, now, user, _booking_or_404(slot)),
        _("Freigegeben. Die Person steht wieder auf ihren Wartelisten."),
    )
