"""Practice area for therapists: sign-up, waiting-for-approval page, waitlist workbench
(own list and regional pool), patient file with its actions, therapist and practice profiles.

Every view except the public sign-up needs a therapist (role gate); every view except
sign-up and the waiting page needs an approved therapist with a practice (second gate).
"""

from __future__ import annotations

import datetime as dt
import io

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from ptmatch import clock
from ptmatch.catalog import INSURANCES, LANGUAGES, METHODS, POPULATIONS, PROBLEM_AREAS
from ptmatch.db import get_session
from ptmatch.domain import practices, rooms, stats, workbench
from ptmatch.domain.errors import DomainError, InvalidInput, NotAllowed, NotFound
from ptmatch.models import Role
from ptmatch.web import current_settings, statistics
from ptmatch.web.bounds import page_arg
from ptmatch.web.forms import add_domain_error
from ptmatch.web.practice.forms import (
    DefaultRoomForm,
    FilterForm,
    NoteForm,
    PoolFilterForm,
    PracticeForm,
    PriorityForm,
    ReferForm,
    RemoveForm,
    RoomForm,
    SignupForm,
    TherapistProfileForm,
)
from ptmatch.web.security import current_db_user, home_for, require_roles

bp = Blueprint("practice", __name__)
require_roles(bp, Role.THERAPIST, exempt=("signup",))

UNGATED = {"practice.signup", "practice.awaiting"}
PROFILE_FIELDS = (
    "title",
    "gender",
    "methods",
    "specialties",
    "exclusions",
    "populations",
    "languages",
    "insurances",
    "offers_in_person",
    "offers_video",
    "offers_group",
    "session_minutes",
    "buffer_minutes",
    "switch_buffer_minutes",
)
PRACTICE_FIELDS = (
    "name",
    "street",
    "postcode",
    "city",
    "phone",
    "website",
    "booking_info",
    "cancellation_policy",
    "video_link_template",
    "accepts_pool",
)


@bp.before_request
def _active_therapist_gate():
    """Approved and assigned therapists only; others see the waiting page."""
    if request.endpoint in UNGATED or not current_user.is_authenticated:
        return None
    therapist = practices.get_active_therapist(get_session(), current_db_user())
    if therapist is None:
        return redirect(url_for("practice.awaiting"))
    g.therapist = therapist
    return None


def _flash_unplaced(form, err: DomainError) -> None:
    if not add_domain_error(form, err):
        flash(err.text(_), "danger")


# --- sign-up and approval -------------------------------------------------------------------


@bp.route("/registrieren", methods=["GET", "POST"])
def signup():
    """Public: request a therapist account with licence details."""
    if current_user.is_authenticated:
        return redirect(url_for(home_for(current_user.user)))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            practices.request_therapist_account(
                get_session(),
                clock.now(),
                email=form.email.data,
                password=form.password.data,
                display_name=form.display_name.data,
                approbation=form.approbation.data,
                lanr=form.lanr.data,
                title=form.title.data,
                gender=form.gender.data,
                locale=str(get_locale() or "de"),
            )
        except InvalidInput as err:
            _flash_unplaced(form, err)
        else:
            return render_template("practice/signup_done.html")
    return render_template("practice/signup.html", form=form)


@bp.route("/freigabe")
def awaiting():
    """Shown until an admin has approved the account and assigned a practice."""
    db = get_session()
    if practices.get_active_therapist(db, current_db_user()) is not None:
        return redirect(url_for("practice.home"))
    therapist = practices.get_therapist(db, current_db_user())
    return render_template("practice/awaiting.html", therapist=therapist)


# --- workbench ------------------------------------------------------------------------------


def _filters(form) -> workbench.Filters:
    """Filters from the valid fields of a GET form (invalid ones are shown and ignored)."""
    form.validate()
    values = {}
    for name in (
        "age_min",
        "age_max",
        "gender",
        "problems",
        "fits_profile",
        "q",
        "group",
        "video",
        "urgent",
        "insurance",
        "via_link",
        "waiting_from",
        "waiting_to",
        "kind",
        "deadline_days",
        "sort",
    ):
        fld = getattr(form, name, None)
        if fld is None or fld.errors or fld.data in (None, ""):
            continue
        values[name] = tuple(fld.data) if name == "problems" else fld.data
    try:
        return workbench.Filters(**values)
    except InvalidInput as err:
        add_domain_error(form, err)
        return workbench.Filters()


def _page_url(endpoint: str):
    args = request.args.to_dict(flat=False)
    return lambda n: url_for(endpoint, **{**args, "page": n})


@bp.route("/")
def home():
    """The waitlist workbench: the practice's own list."""
    form = FilterForm(formdata=request.args)
    page = workbench.list_waitlist(
        get_session(),
        clock.now(),
        g.therapist,
        _filters(form),
        page=page_arg(),
    )
    return render_template(
        "practice/workbench.html",
        tab="list",
        form=form,
        page=page,
        page_url=_page_url("practice.home"),
    )


@bp.route("/pool")
def pool():
    """The regional pool: fitting patients within reach, pseudonymous."""
    form = PoolFilterForm(formdata=request.args)
    page = workbench.list_pool(
        get_session(),
        clock.now(),
        g.therapist,
        _filters(form),
        page=page_arg(),
    )
    return render_template(
        "practice/workbench.html",
        tab="pool",
        form=form,
        page=page,
        pool_available=workbench.pool_available(g.therapist),
        page_url=_page_url("practice.pool"),
    )


# --- patient file and actions ---------------------------------------------------------------


def _render_patient(patient_id: int, **forms):
    db = get_session()
    try:
        record = workbench.load_patient_file(db, clock.now(), current_db_user(), patient_id)
    except NotFound:
        abort(404)
    except NotAllowed:
        abort(403)
    refer = forms.get("refer_form") or ReferForm(formdata=None)
    refer.target.choices = workbench.referral_targets(db, g.therapist)
    priority = forms.get("priority_form") or PriorityForm(
        formdata=None, priority=record.active_entry.priority if record.active_entry else 0
    )
    return render_template(
        "practice/patient.html",
        record=record,
        refer_form=refer,
        priority_form=priority,
        note_form=forms.get("note_form") or NoteForm(formdata=None),
        remove_form=forms.get("remove_form") or RemoveForm(formdata=None),
    )


@bp.route("/patient/<int:patient_id>")
def patient(patient_id: int):
    """The full record of a patient on this practice's list (clinical load audited)."""
    return _render_patient(patient_id)


def _entry_action(entry_id: int, form, form_key: str, act, done: str):
    """Shared flow of the entry actions: validate, call the domain, redirect or re-render."""
    db = get_session()
    try:
        _therapist, entry = workbench.get_own_entry(db, current_db_user(), entry_id)
    except NotFound:
        abort(404)
    if form.validate_on_submit():
        try:
            act(db, entry)
        except InvalidInput as err:
            _flash_unplaced(form, err)
        else:
            flash(_(done), "success")
            return redirect(
                url_for("practice.patient", patient_id=entry.patient_id)
                if form_key == "priority_form"
                else url_for("practice.home")
            )
    return _render_patient(entry.patient_id, **{form_key: form})


@bp.route("/eintrag/<int:entry_id>/prioritaet", methods=["POST"])
def set_priority(entry_id: int):
    """Set the practice's priority for an entry."""
    form = PriorityForm()
    return _entry_action(
        entry_id,
        form,
        "priority_form",
        lambda db, e: workbench.set_priority(
            db, clock.now(), current_db_user(), e.id, form.priority.data
        ),
        "Die Priorität ist gespeichert.",
    )


@bp.route("/eintrag/<int:entry_id>/ueberweisen", methods=["POST"])
def refer(entry_id: int):
    """Refer the patient to another practice (the entry moves; a generic mail goes out)."""
    form = ReferForm()
    form.target.choices = workbench.referral_targets(get_session(), g.therapist)
    return _entry_action(
        entry_id,
        form,
        "refer_form",
        lambda db, e: workbench.refer_entry(
            db, clock.now(), current_db_user(), e.id, form.target.data
        ),
        "Die Patientin / der Patient wurde überwiesen.",
    )


@bp.route("/eintrag/<int:entry_id>/entfernen", methods=["POST"])
def remove(entry_id: int):
    """Take the patient off the list with a reason (a generic mail goes out)."""
    form = RemoveForm()
    return _entry_action(
        entry_id,
        form,
        "remove_form",
        lambda db, e: workbench.remove_entry(
            db, clock.now(), current_db_user(), e.id, form.reason.data
        ),
        "Der Eintrag wurde von der Liste genommen.",
    )


@bp.route("/patient/<int:patient_id>/notiz", methods=["POST"])
def add_note(patient_id: int):
    """Add a clinical note to a patient the practice may see."""
    form = NoteForm()
    if form.validate_on_submit():
        try:
            workbench.add_clinical_note(
                get_session(), clock.now(), current_db_user(), patient_id, form.text.data
            )
        except NotFound:
            abort(404)
        except InvalidInput as err:
            _flash_unplaced(form, err)
        else:
            flash(_("Die Notiz ist gespeichert."), "success")
            return redirect(url_for("practice.patient", patient_id=patient_id))
    return _render_patient(patient_id, note_form=form)


# --- profiles ---------------------------------------------------------------------------------


@bp.route("/profil", methods=["GET", "POST"])
def profile():
    """The therapist's own profile."""
    therapist = g.therapist
    form = TherapistProfileForm(
        data=None if request.method == "POST" else _therapist_data(therapist)
    )
    if form.validate_on_submit():
        try:
            practices.update_therapist_profile(
                get_session(),
                clock.now(),
                current_db_user(),
                therapist,
                **{name: getattr(form, name).data for name in PROFILE_FIELDS},
            )
        except InvalidInput as err:
            _flash_unplaced(form, err)
        else:
            flash(_("Ihr Profil ist gespeichert."), "success")
            return redirect(url_for("practice.profile"))
    return render_template("practice/profile.html", form=form)


def _therapist_data(therapist) -> dict:
    return dict(
        title=therapist.title,
        gender=therapist.gender,
        methods=METHODS.from_mask(therapist.methods_mask),
        specialties=PROBLEM_AREAS.from_mask(therapist.specialties_mask),
        exclusions=PROBLEM_AREAS.from_mask(therapist.exclusions_mask),
        populations=POPULATIONS.from_mask(therapist.populations_mask),
        languages=LANGUAGES.from_mask(therapist.languages_mask),
        insurances=INSURANCES.from_mask(therapist.insurances_mask),
        offers_in_person=therapist.offers_in_person,
        offers_video=therapist.offers_video,
        offers_group=therapist.offers_group,
        session_minutes=therapist.session_minutes,
        buffer_minutes=therapist.buffer_minutes,
        switch_buffer_minutes=therapist.switch_buffer_minutes,
    )


def _practice_values(form) -> dict:
    values = {
        name: getattr(form, name).data or "" for name in PRACTICE_FIELDS if name != "accepts_pool"
    }
    return {**values, "accepts_pool": bool(form.accepts_pool.data)}


def _registration_link(practice) -> str:
    return current_settings().BASE_URL.rstrip("/") + f"/p/{practice.slug}"


def _qr(practice):
    return segno.make(_registration_link(practice), error="m")


@bp.route("/praxisprofil", methods=["GET", "POST"])
def practice_profile():
    """The practice profile with its registration link and QR code."""
    practice = g.therapist.practice
    form = PracticeForm(obj=None if request.method == "POST" else practice)
    if form.validate_on_submit():
        try:
            practices.update_practice_profile(
                get_session(), clock.now(), current_db_user(), practice, **_practice_values(form)
            )
        except (InvalidInput, NotAllowed) as err:
            _flash_unplaced(form, err)
        else:
            flash(_("Das Praxisprofil ist gespeichert."), "success")
            if practice.postcode and practice.lat is None:
                flash(
                    _(
                        "Die Postleitzahl ist uns nicht bekannt; ohne Koordinaten gibt es keinen "
                        "Pool."
                    ),
                    "warning",
                )
            return redirect(url_for("practice.practice_profile"))
    svg = Markup(
        _qr(practice).svg_inline(
            scale=4, dark="#000", light="#fff", title=_("QR-Code zur Anmeldung bei Ihrer Praxis")
        )
    )
    return render_template(
        "practice/practice.html",
        form=form,
        practice=practice,
        qr_svg=svg,
        link=_registration_link(practice),
    )


@bp.route("/praxisprofil/qr")
def qr_print():
    """A printable page with the registration link and a large QR code."""
    practice = g.therapist.practice
    svg = Markup(
        _qr(practice).svg_inline(
            scale=10, dark="#000", light="#fff", title=_("QR-Code zur Anmeldung bei Ihrer Praxis")
        )
    )
    return render_template(
        "practice/qr_print.html", practice=practice, qr_svg=svg, link=_registration_link(practice)
    )


@bp.route("/praxisprofil/qr.svg")
def qr_svg():
    """The QR code as an SVG file (for flyers)."""
    practice = g.therapist.practice
    buf = io.BytesIO()
    _qr(practice).save(buf, kind="svg", scale=10, dark="#000", light="#fff")
    return Response(
        buf.getvalue(),
        mimetype="image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="anmeldung-{practice.slug}.svg"'},
    )


# --- rooms (issue 19) --------------------------------------------------------------------------


def _room_message(err: DomainError) -> str:
    params = getattr(err, "params", None)
    return _(err.msgid, **params) if params else _(err.message)


@bp.route("/raeume", methods=["GET", "POST"])
def rooms_page():
    """The practice's rooms: add one, choose your own default room."""
    db = get_session()
    form = RoomForm()
    if form.validate_on_submit():
        try:
            rooms.add_room(
                db,
                clock.now(),
                current_db_user(),
                g.therapist.practice_id,
                name=form.name.data,
                capacity=form.capacity.data,
                accessible=form.accessible.data,
                note=form.note.data or "",
            )
        except DomainError as err:
            _flash_unplaced(form, err)
        else:
            flash(_("Der Raum ist gespeichert."), "success")
            return redirect(url_for("practice.rooms_page"))
    all_rooms = rooms.list_rooms(db, g.therapist.practice_id, active_only=False)
    default_form = DefaultRoomForm(formdata=None, room=g.therapist.default_room_id or 0)
    default_form.room.choices = [(0, _("– der erste freie –"))] + [
        (r.id, r.name) for r in all_rooms if r.is_active
    ]
    return render_template(
        "practice/rooms.html", form=form, rooms=all_rooms, default_form=default_form
    )


@bp.route("/raeume/standard", methods=["POST"])
def set_default_room():
    """The therapist's own default room."""
    form = DefaultRoomForm()
    form.room.choices = [(0, "")] + [
        (r.id, r.name) for r in rooms.list_rooms(get_session(), g.therapist.practice_id)
    ]
    if form.validate_on_submit():
        try:
            rooms.set_default_room(
                get_session(), clock.now(), current_db_user(), g.therapist, form.room.data or None
            )
        except DomainError as err:
            flash(_(err.message), "danger")
        else:
            flash(_("Ihr Raum ist gespeichert."), "success")
    else:
        flash(_("Bitte eine Angabe aus der Liste wählen."), "danger")
    return redirect(url_for("practice.rooms_page"))


@bp.route("/raeume/<int:room_id>", methods=["GET", "POST"])
def room_edit(room_id: int):
    """Rename a room, change its capacity, accessibility or note, or take it out of use."""
    db = get_session()
    try:
        room = rooms.get_room(db, current_db_user(), room_id)
    except NotFound:
        abort(404)
    form = RoomForm(obj=room)
    if form.validate_on_submit():
        try:
            rooms.update_room(
                db,
                clock.now(),
                current_db_user(),
                room,
                name=form.name.data,
                capacity=form.capacity.data,
                accessible=form.accessible.data,
                note=form.note.data or "",
                is_active=form.is_active.data,
            )
        except DomainError as err:
            _flash_unplaced(form, err)
        else:
            flash(_("Der Raum ist gespeichert."), "success")
            return redirect(url_for("practice.rooms_page"))
    return render_template("practice/room_edit.html", form=form, room=room)


@bp.route("/raeume/plan")
def room_plan():
    """A day per room: who (initials) and what kind, nothing more."""
    db, now = get_session(), clock.now()
    today = now.astimezone(rooms.BERLIN).date()
    try:
        day = (
            dt.date.fromisoformat(request.args.get("tag", "")) if request.args.get("tag") else today
        )
    except ValueError:
        day = today
    return render_template(
        "practice/room_plan.html",
        day=day,
        plan=rooms.room_day(db, g.therapist.practice_id, day),
        prev_day=day - dt.timedelta(days=1),
        next_day=day + dt.timedelta(days=1),
        today=today,
    )


# --- statistics ---------------------------------------------------------------------------------


def _stats_board():
    db = get_session()
    now = clock.now()
    form = statistics.PeriodForm(formdata=request.args)
    period = statistics.period_from(form, now.astimezone(stats.BERLIN).date())
    scope = stats.Scope(g.therapist.practice_id)
    board = statistics.build(db, current_db_user(), now, period, scope)
    if board is None:
        abort(403)
    return form, board


@bp.route("/statistik")
def statistics_page():
    """The practice's own outcome figures and charts (full counts: its own view)."""
    form, board = _stats_board()
    args = request.args.to_dict(flat=True)
    return render_template(
        "practice/statistics.html",
        form=form,
        board=board,
        places=statistics.places_rows(board.figures),
        urgency=statistics.urgency_rows(board.figures),
        csv_url=lambda which: url_for("practice.statistics_csv", **{**args, "tabelle": which}),
    )


@bp.route("/statistik.csv")
def statistics_csv():
    """One table of the practice statistics as CSV (``?tabelle=``)."""
    _form, board = _stats_board()
    response = statistics.csv_response(
        board, request.args.get("tabelle", "kennzahlen"), "praxis-statistik"
    )
    if response is None:
        abort(404)
    return response
