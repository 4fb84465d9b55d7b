"""Groups: the therapist's group programmes and calendar rules (blueprint `groups`,
/praxis/gruppen), and the patients' group offer pages (blueprint `group_offers`: the mailed
/g/<token> link, and the logged-in patient's /patient/gruppen).

Accept and decline are POSTs (mail scanners prefetch GET links). Unknown, used, expired,
foreign or malformed tokens all get the same neutral page (404) and change nothing.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.domain import access, calendar_rules, groups, offers, practices, rooms
from ptmatch.domain.errors import DomainError, NotFound, SlotTaken
from ptmatch.models import EnrollmentStatus, GroupEnrollment, OfferStatus, Patient, Role
from ptmatch.web import current_settings
from ptmatch.web.forms import add_domain_error, local_start
from ptmatch.web.groups.forms import BlockForm, CancelGroupForm, GroupForm
from ptmatch.web.security import current_db_user, require_roles

bp = Blueprint("groups", __name__)
require_roles(bp, Role.THERAPIST)

offers_bp = Blueprint("group_offers", __name__)
TOKEN_VIEWS = ("show", "accept", "decline")
require_roles(offers_bp, Role.PATIENT, exempt=TOKEN_VIEWS)


def _message(err: DomainError) -> str:
    return err.text(_)


def _show_error(form, err: DomainError) -> None:
    if not add_domain_error(form, err):
        flash(_message(err), "danger")


# --- the therapist side ------------------------------------------------------------------------


@bp.before_request
def _active_therapist_gate():
    """Approved therapists with a practice only; others see the waiting page."""
    if not current_user.is_authenticated:
        return None
    therapist = practices.get_active_therapist(get_session(), current_db_user())
    if therapist is None:
        return redirect(url_for("practice.awaiting"))
    g.therapist = therapist
    return None


@bp.route("/")
def index():
    """The practice's groups with enrolment counts and waitlists."""
    db = get_session()
    states = groups.group_states(db, clock.now(), groups.list_groups(db, g.therapist.practice_id))
    return render_template(
        "groups/index.html",
        states=states,
        therapist=g.therapist,
        decision_hours=groups.decision_hours(current_settings()),
    )


def _room_choices(form) -> None:
    form.room.choices = [(0, _("automatisch (eigener oder erster freier Raum)"))] + [
        (r.id, _("%(name)s (%(n)s Pers.)", name=r.name, n=r.capacity))
        for r in rooms.list_rooms(get_session(), g.therapist.practice_id)
    ]


@bp.route("/neu", methods=["GET", "POST"])
def new():
    """Create a group programme; the first offers go out at once."""
    form = GroupForm()
    _room_choices(form)
    if form.validate_on_submit():
        start = local_start(form.start_date.data, form.start_time, form.dst)
        if start is not None:
            try:
                group = groups.create_group(
                    get_session(),
                    clock.now(),
                    current_db_user(),
                    g.therapist,
                    title=form.title.data,
                    method=form.method.data,
                    problems=form.problems.data,
                    modality=form.modality.data,
                    first_session_at=start,
                    session_count=form.session_count.data,
                    minutes=form.minutes.data,
                    min_participants=form.min_participants.data,
                    max_participants=form.max_participants.data,
                    settings=current_settings(),
                    room_id=form.room.data or None,
                    self_enrol=form.self_enrol.data,
                )
            except DomainError as err:
                _show_error(form, err)
            else:
                flash(_("Die Gruppe ist angelegt; die ersten Angebote sind verschickt."), "success")
                if group.room is not None:
                    flash(_("Raum: %(room)s", room=group.room.name), "info")
                warning = calendar_rules.modality_warning(
                    get_session(),
                    g.therapist,
                    group.first_session_at,
                    group.minutes,
                    group.modality,
                )
                if warning:
                    flash(_(warning), "warning")
                return redirect(url_for("groups.detail", group_id=group.id))
    return render_template(
        "groups/new.html", form=form, decision_hours=groups.decision_hours(current_settings())
    )


def _own_group(group_id: int):
    try:
        return groups.get_group(get_session(), current_db_user(), group_id)
    except NotFound:
        abort(404)


@bp.route("/<int:group_id>")
def detail(group_id: int):
    """One group: state, participants, the waitlist in order, offers."""
    db, now = get_session(), clock.now()
    group = _own_group(group_id)
    (state,) = groups.group_states(db, now, [group])
    enrolled, waiting = groups.members(db, clock.now(), current_db_user(), group)
    return render_template(
        "groups/detail.html",
        group=group,
        state=state,
        enrolled=enrolled,
        waiting=waiting,
        decision_at=groups.decision_at(group, current_settings()),
        last_session=groups.last_session_at(group),
        now=now,
        can_withdraw=lambda e: groups.can_withdraw(group, e, now),
        can_cancel=groups.can_cancel_group(group, now),
        cancel_form=CancelGroupForm(formdata=None),
        seats_left=groups.seats_left(group),
    )


@bp.route("/<int:group_id>/absagen", methods=["POST"])
def cancel(group_id: int):
    """The "cancel group" button: confirmed, with a reason; everyone enrolled or waiting is told."""
    group = _own_group(group_id)
    form = CancelGroupForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(error, "danger")
        return redirect(url_for("groups.detail", group_id=group.id))
    try:
        groups.cancel_group(
            get_session(),
            clock.now(),
            current_db_user(),
            group,
            reason=form.reason.data,
            confirmed=form.confirm.data,
            settings=current_settings(),
        )
    except DomainError as err:
        flash(_message(err), "danger")
    else:
        flash(_("Die Gruppe ist abgesagt; alle Angemeldeten sind benachrichtigt."), "success")
    return redirect(url_for("groups.detail", group_id=group.id))


@bp.route("/<int:group_id>/selbstanmeldung", methods=["POST"])
def set_self_enrol(group_id: int):
    """Switch self-enrolment on or off (off: offers only)."""
    group = _own_group(group_id)
    on = request.form.get("on") == "1"
    groups.set_self_enrol(get_session(), clock.now(), current_db_user(), group, on)
    flash(
        _("Selbstanmeldung ist eingeschaltet.") if on else _("Nur noch Anmeldung über Angebote."),
        "success",
    )
    return redirect(url_for("groups.detail", group_id=group.id))


@bp.route("/<int:group_id>/angebote", methods=["POST"])
def send_wave(group_id: int):
    """Top the open offers up now instead of waiting for the sweep."""
    group = _own_group(group_id)
    sent = groups.send_group_wave(
        get_session(), clock.now(), group, current_settings(), actor=current_db_user()
    )
    flash(
        _("%(n)s Angebote verschickt.", n=sent)
        if sent
        else _("Zurzeit gibt es kein weiteres Angebot zu verschicken."),
        "info",
    )
    return redirect(url_for("groups.detail", group_id=group.id))


@bp.route("/<int:group_id>/teilnahme/<int:enrollment_id>/beenden", methods=["POST"])
def remove_member(group_id: int, enrollment_id: int):
    """A participant or waitlisted patient leaves (e.g. called the practice); a freed seat goes
    to the waitlist."""
    group = _own_group(group_id)
    enrollment = get_session().get(GroupEnrollment, enrollment_id)
    if enrollment is None or enrollment.group_id != group.id:
        abort(404)
    try:
        groups.withdraw(
            get_session(), clock.now(), current_db_user(), enrollment, current_settings()
        )
    except DomainError as err:
        flash(_message(err), "danger")
    else:
        flash(_("Die Anmeldung ist beendet."), "success")
    return redirect(url_for("groups.detail", group_id=group.id))


@bp.route("/kalenderregeln", methods=["GET", "POST"])
def calendar_rules_page():
    """Weekly blocks for video or in person: posting a slot inside one proposes its form."""
    form = BlockForm()
    _room_choices(form)
    form.room.choices[0] = (0, _("– kein Raum –"))
    if form.validate_on_submit():
        try:
            room_id = rooms.check_block_room(
                get_session(), g.therapist, form.room.data or None, form.modality.data
            )
            calendar_rules.add_block(
                get_session(),
                clock.now(),
                current_db_user(),
                g.therapist,
                weekday=form.weekday.data,
                start_min=form.start_time.data.hour * 60 + form.start_time.data.minute,
                end_min=form.end_time.data.hour * 60 + form.end_time.data.minute,
                modality=form.modality.data,
                room_id=room_id,
            )
        except DomainError as err:
            _show_error(form, err)
        else:
            flash(_("Der Block ist gespeichert."), "success")
            return redirect(url_for("groups.calendar_rules_page"))
    return render_template(
        "groups/calendar_rules.html",
        form=form,
        therapist=g.therapist,
        blocks=calendar_rules.list_blocks(get_session(), g.therapist),
        room_names={r.id: r.name for r in rooms.list_rooms(get_session(), g.therapist.practice_id)},
        weekdays=calendar_rules.WEEKDAYS,
        hhmm=calendar_rules.minutes_label,
    )


@bp.route("/kalenderregeln/<int:block_id>/loeschen", methods=["POST"])
def remove_block(block_id: int):
    try:
        calendar_rules.remove_block(
            get_session(), clock.now(), current_db_user(), g.therapist, block_id
        )
    except NotFound:
        abort(404)
    flash(_("Der Block ist gelöscht."), "success")
    return redirect(url_for("groups.calendar_rules_page"))


# --- the patient side: the mailed link -----------------------------------------------------------


@offers_bp.after_request
def _no_store(response):
    if request.endpoint in {f"group_offers.{name}" for name in TOKEN_VIEWS}:
        response.headers["Cache-Control"] = "no-store"
    return response


def _neutral():
    return render_template("groups/offer_invalid.html"), 404


def _token_offer(token: str):
    """(offer, actor) for a live token, or (None, None). Logged in as someone who may not answer
    for this patient (another patient, a stranger) counts as a foreign token."""
    db = get_session()
    offer = offers.get_offer_by_token(db, token)
    if (
        offer is None
        or offer.group_id is None
        or not groups.is_group_offer_answerable(db, offer, clock.now())
    ):
        return None, None
    user = current_db_user()
    patient = db.get(Patient, offer.patient_id)
    if user is None:
        return offer, patient.user  # the token is the credential: the patient answers
    if access.patient_access(db, user, patient, clock.now()).act and user.role in (
        Role.PATIENT,
        Role.SECRETARY,
    ):
        return offer, user
    return None, None


def _offer_page(offer, accept_url: str, decline_url: str, status: int = 200):
    db = get_session()
    group = offer.group
    enrollment = groups.get_enrollment(db, group.id, offer.patient_id)
    return render_template(
        "groups/offer.html",
        offer=offer,
        group=group,
        practice=group.practice,
        seat_offer=enrollment is not None and enrollment.status == EnrollmentStatus.WAITLISTED,
        enrollment=enrollment,
        free_seats=max(group.max_participants - group.enrolled_count, 0),
        can_answer=groups.is_group_offer_answerable(db, offer, clock.now()),
        accept_url=accept_url,
        decline_url=decline_url,
        last_session=groups.last_session_at(group),
    ), status


def _answer(offer, actor, accept: bool, then=None):
    """Answer; show the outcome, or on success redirect to `then` (Post/Redirect/Get)."""
    db, now = get_session(), clock.now()
    try:
        if accept:
            enrollment = groups.accept_group_offer(db, now, offer, actor)
        else:
            groups.decline_group_offer(db, now, offer, actor, current_settings())
            enrollment = groups.get_enrollment(db, offer.group_id, offer.patient_id)
    except SlotTaken as err:
        return render_template(
            "groups/offer_result.html", outcome="taken", message=_message(err), group=offer.group
        )
    except DomainError as err:
        return render_template(
            "groups/offer_result.html", outcome="closed", message=_message(err), group=offer.group
        )
    if then is not None:
        return redirect(then, code=303)
    outcome = "declined" if not accept else str(enrollment.status)
    return render_template(
        "groups/offer_result.html",
        outcome=outcome,
        enrollment=enrollment,
        group=offer.group,
        decision_hours=groups.decision_hours(current_settings()),
    )


def _answered_result(token: str):
    """The link opened again after an answer: the patient's place (or the decline), not a
    "no longer available" page. None when the token is not theirs or was never answered."""
    db = get_session()
    offer = offers.get_offer_by_token(db, token)
    if offer is None or offer.group_id is None:
        return None
    if offer.status not in (OfferStatus.ACCEPTED, OfferStatus.DECLINED):
        return None
    user = current_db_user()
    patient = db.get(Patient, offer.patient_id)
    if user is not None and not (
        access.patient_access(db, user, patient, clock.now()).act
        and user.role in (Role.PATIENT, Role.SECRETARY)
    ):
        return None
    enrollment = groups.get_enrollment(db, offer.group_id, offer.patient_id)
    if offer.status == OfferStatus.DECLINED or enrollment is None:
        outcome = "declined"
    else:
        outcome = str(enrollment.status)
        if outcome not in ("enrolled", "waitlisted"):
            return None
    return render_template(
        "groups/offer_result.html",
        outcome=outcome,
        enrollment=enrollment,
        group=offer.group,
        decision_hours=groups.decision_hours(current_settings()),
    )


@offers_bp.route("/g/<token>")
def show(token: str):
    """The group offer from the mail: the programme, and two buttons (POSTs); after the
    answer, the answer's outcome."""
    offer, _actor = _token_offer(token)
    if offer is None:
        return _answered_result(token) or _neutral()
    return _offer_page(
        offer,
        url_for("group_offers.accept", token=token),
        url_for("group_offers.decline", token=token),
    )


def _answer_and_show(token: str, accept: bool):
    """Answer, then redirect to the link itself (a reload must not land on a POST-only URL)."""
    offer, actor = _token_offer(token)
    if offer is None:
        return _neutral()
    return _answer(offer, actor, accept=accept, then=url_for("group_offers.show", token=token))


@offers_bp.route("/g/<token>/annehmen", methods=["POST"])
def accept(token: str):
    return _answer_and_show(token, accept=True)


@offers_bp.route("/g/<token>/ablehnen", methods=["POST"])
def decline(token: str):
    return _answer_and_show(token, accept=False)


# --- the patient side: logged in -----------------------------------------------------------------


def _own_patient() -> Patient:
    patient = get_session().scalar(select(Patient).where(Patient.user_id == current_db_user().id))
    if patient is None:
        abort(404)
    return patient


def _own_offer(offer_id: int):
    try:
        return groups.get_patient_group_offer(get_session(), current_db_user(), offer_id)
    except NotFound:
        abort(404)


@offers_bp.route("/patient/gruppen")
def mine():
    """The patient's open group offers and group places."""
    db, now = get_session(), clock.now()
    patient = _own_patient()
    open_offers, enrollments = groups.patient_groups(db, patient, now)
    return render_template(
        "groups/patient.html",
        open_groups=groups.open_groups_for(db, patient, now),
        open_offers=open_offers,
        enrollments=enrollments,
        can_withdraw=lambda e: groups.can_withdraw(e.group, e, now),
    )


@offers_bp.route("/patient/gruppen/angebot/<int:offer_id>")
def mine_offer(offer_id: int):
    offer = _own_offer(offer_id)
    return _offer_page(
        offer,
        url_for("group_offers.mine_accept", offer_id=offer.id),
        url_for("group_offers.mine_decline", offer_id=offer.id),
    )


@offers_bp.route("/patient/gruppen/angebot/<int:offer_id>/annehmen", methods=["POST"])
def mine_accept(offer_id: int):
    return _answer(_own_offer(offer_id), current_db_user(), accept=True)


@offers_bp.route("/patient/gruppen/angebot/<int:offer_id>/ablehnen", methods=["POST"])
def mine_decline(offer_id: int):
    return _answer(_own_offer(offer_id), current_db_user(), accept=False)


@offers_bp.route("/patient/gruppen/offen/<int:group_id>")
def open_group(group_id: int):
    """An open group's own page: what, when, where, seats left — no names."""
    db, now = get_session(), clock.now()
    try:
        group = groups.get_open_group(db, group_id, now)
    except NotFound:
        abort(404)
    patient = _own_patient()
    enrollment = groups.get_enrollment(db, group.id, patient.id)
    return render_template(
        "groups/open.html",
        group=group,
        practice=group.practice,
        seats_left=groups.seats_left(group),
        last_session=groups.last_session_at(group),
        enrollment=enrollment,
        can_enrol=groups.can_self_enrol(group, now)
        and (enrollment is None or enrollment.status not in groups.ACTIVE_ENROLMENT)
        and groups.fits(db, group, patient, now),
    )


@offers_bp.route("/patient/gruppen/offen/<int:group_id>/anmelden", methods=["POST"])
def enrol(group_id: int):
    """Enrol directly: a seat while one is free, else the group's waitlist."""
    db, now = get_session(), clock.now()
    try:
        group = groups.get_open_group(db, group_id, now)
    except NotFound:
        abort(404)
    try:
        enrollment = groups.self_enrol(
            db, now, current_db_user(), group, _own_patient(), current_settings()
        )
    except DomainError as err:
        flash(_message(err), "warning")
        return redirect(url_for("group_offers.open_group", group_id=group.id))
    if enrollment.status == EnrollmentStatus.ENROLLED:
        flash(_("Sie sind für die Gruppe angemeldet."), "success")
    else:
        flash(
            _(
                "Die Gruppe ist voll. Sie stehen auf Platz %(n)s der Warteliste.",
                n=enrollment.position,
            ),
            "info",
        )
    return redirect(url_for("group_offers.mine"))


@offers_bp.route("/patient/gruppen/<int:enrollment_id>/abmelden", methods=["POST"])
def withdraw(enrollment_id: int):
    """Leave a group (or its waitlist) before the start; the seat goes to the waitlist."""
    db = get_session()
    try:
        enrollment = groups.get_patient_enrollment(db, current_db_user(), enrollment_id)
    except NotFound:
        abort(404)
    try:
        groups.withdraw(db, clock.now(), current_db_user(), enrollment, current_settings())
    except DomainError as err:
        flash(_message(err), "danger")
    else:
        flash(_("Sie sind abgemeldet."), "success")
    return redirect(url_for("group_offers.mine"))
