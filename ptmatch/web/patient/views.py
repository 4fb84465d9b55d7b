"""Patient area: registration, email verification, check-in answers, the dashboard, profile,
lists and the practice finder, pause / reactivate, export and deletion.

A second, public blueprint `practice_link` serves a practice's own registration link `/p/<slug>`.
"""

from __future__ import annotations

import json
from functools import partial

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.domain import access, groups, patients, waitlist
from ptmatch.domain.accounts import consume_user_token, peek_user_token
from ptmatch.domain.errors import DomainError, InvalidInput, NotAllowed
from ptmatch.models import EntryStatus, Patient, Practice, Role, TokenPurpose, User
from ptmatch.ops import backup
from ptmatch.web import current_settings
from ptmatch.web.forms import add_domain_error
from ptmatch.web.patient.forms import (
    DeleteForm,
    FinderForm,
    IntakeForm,
    PauseForm,
    ProfileForm,
    RegistrationForm,
)
from ptmatch.web.security import current_db_user, end_session, home_for, require_roles

bp = Blueprint("patient", __name__)
require_roles(
    bp, Role.PATIENT, exempt=("register", "registered", "verify_email", "checkin", "deleted")
)

# Public: a practice's own link lives at the root (/p/<slug>), outside the /patient prefix.
link_bp = Blueprint("practice_link", __name__)


# --- helpers ------------------------------------------------------------------------------


@bp.context_processor
def _grid():
    return {"patients_grid_blocks": patients.GRID_BLOCKS, "patients_grid_days": patients.GRID_DAYS}


def _me() -> tuple[User, Patient]:
    """The logged-in patient's own record (the policy module confirms it is theirs)."""
    user = current_db_user()
    db = get_session()
    patient = patients.get_patient_for_user(db, user)
    if patient is None or not access.patient_access(db, user, patient, clock.now()).identity:
        abort(404)
    return user, patient


def _form_error(form, err: DomainError) -> None:
    if not add_domain_error(form, err):
        flash(err.text(_), "danger")


def _checked_cells(form, patient: Patient | None = None) -> tuple[set[str], bool]:
    if request.method == "POST":
        cells = set(form.availability.data or [])
        for day in form.whole_days.data or []:
            cells |= {f"{day}-{start}" for start, _end in patients.GRID_BLOCKS}
        return cells, True
    if patient is not None:
        return patients.grid_from_windows(patient.availability)
    return set(), True


# --- public: registration, verification, check-in --------------------------------------------


@bp.route("/registrieren", methods=["GET", "POST"])
def register():
    """Self-service registration, optionally for one practice (`?praxis=<slug>`)."""
    if current_db_user() is not None:
        return redirect(url_for(home_for(current_db_user())))
    form = RegistrationForm()
    if request.method == "GET":
        form.praxis.data = request.args.get("praxis", "")[:80]
    db = get_session()
    practice = waitlist.get_practice_by_slug(db, form.praxis.data or "")

    def problems(profile):
        return patients.registration_problems(db, clock.now(), **form.registration(profile))

    if (windows := form.checked_windows(problems)) is not None:
        try:
            patients.register_patient(
                db,
                clock.now(),
                **form.registration(form.profile(windows)),
                practice=practice,
                locale=str(get_locale() or "de"),
            )
        except DomainError as err:
            _form_error(form, err)
        else:
            return redirect(url_for("patient.registered"))
    form.keep_passwords()
    cells, _exact = _checked_cells(form)
    response = make_response(
        render_template("patient/register.html", form=form, practice=practice, cells=cells)
    )
    if request.method == "POST":
        response.headers["Cache-Control"] = "no-store"  # it may hold the password
    return response


@bp.route("/registriert")
def registered():
    """The same page whether or not the address already had an account."""
    return render_template("patient/registered.html")


@bp.route("/verify/<token>", methods=["GET", "POST"])
def verify_email(token: str):
    """GET shows a button; the POST spends the token (mail scanners only GET)."""
    db = get_session()
    now = clock.now()
    if peek_user_token(db, now, token, TokenPurpose.VERIFY_EMAIL) is None:
        return render_template("patient/link_invalid.html"), 404
    if request.method == "POST":
        user = patients.verify_email(db, now, token)
        if user is None:
            return render_template("patient/link_invalid.html"), 404
        flash(_("Ihre E-Mail-Adresse ist bestätigt."), "success")
        current = current_db_user()
        if current is not None and current.id == user.id:
            return redirect(url_for("patient.dashboard"))
        return redirect(url_for("auth.login"))
    return render_template("patient/verify.html")


@bp.route("/checkin/<token>", methods=["GET", "POST"])
def checkin(token: str):
    """The one-click answer to "still looking?": GET shows the buttons, POST records it."""
    db = get_session()
    now = clock.now()
    if peek_user_token(db, now, token, TokenPurpose.CHECKIN) is None:
        return render_template("patient/link_invalid.html"), 404
    if request.method == "POST":
        user = consume_user_token(db, now, token, TokenPurpose.CHECKIN)
        patient = patients.get_patient_for_user(db, user) if user is not None else None
        if patient is None:
            return render_template("patient/link_invalid.html"), 404
        if user.email_verified_at is None:
            user.email_verified_at = now  # the link reached the mailbox: that is the proof
        pausing = request.form.get("answer") == "pause"
        try:
            if pausing:
                patients.pause(db, now, patient, None, user, settings=current_settings())
            else:
                patients.confirm_still_looking(db, now, patient, user)
        except DomainError as err:
            flash(err.text(_), "warning")
        return render_template("patient/checkin_done.html", paused=pausing)
    return render_template("patient/checkin.html")


@bp.route("/geloescht")
def deleted():
    """Shown after the account was deleted."""
    return render_template("patient/deleted.html")


# --- the dashboard ------------------------------------------------------------------------------


@bp.route("/")
def dashboard():
    """Status, lists with join dates, pending offers, bookings and what to do next."""
    user, patient = _me()
    db = get_session()
    now = clock.now()
    entries = waitlist.list_entries(db, patient)
    return render_template(
        "patient/dashboard.html",
        user=user,
        patient=patient,
        now=now,
        active_entries=[e for e in entries if e.status == EntryStatus.ACTIVE],
        past_entries=[e for e in entries if e.status != "active"],
        in_pool=any(e.is_pool and e.status == EntryStatus.ACTIVE for e in entries),
        offers=patients.pending_offers(db, now, patient),
        open_groups=groups.open_groups_for(db, patient, now, limit=5),
        bookings=patients.bookings(db, patient),
        can_reactivate=patients.can_reactivate(db, now, patient),
        matchable=patients.is_matchable(patient, user, now.date()),
        location=patients.location_of(db, patient),
        pause_form=PauseForm(),
        record_views=access.record_views_for_patient(db, patient),
    )


@bp.route("/bestaetigung", methods=["POST"])
def resend_verification():
    """Mail a fresh verification link."""
    user = current_db_user()
    patients.send_verification(get_session(), clock.now(), user)
    flash(_("Wir haben Ihnen einen neuen Bestätigungslink geschickt."), "info")
    return redirect(url_for("patient.dashboard"))


@bp.route("/profil", methods=["GET", "POST"])
def edit_profile():
    """Edit the profile, preferences and weekly availability."""
    user, patient = _me()
    db = get_session()
    form = ProfileForm(obj=None if request.method == "POST" else _ProfileObj(patient))
    problems = partial(patients.profile_problems, db, clock.now().date())
    if (windows := form.checked_windows(problems)) is not None:
        try:
            patients.update_profile(db, clock.now(), patient, form.profile(windows), user)
        except DomainError as err:
            _form_error(form, err)
        else:
            flash(_("Ihre Angaben wurden gespeichert."), "success")
            return redirect(url_for("patient.dashboard"))
    cells, exact = _checked_cells(form, patient)
    return render_template("patient/profile.html", form=form, cells=cells, grid_exact=exact)


class _ProfileObj:
    """The patient's profile in the shape the form reads (`obj=`)."""

    def __init__(self, patient: Patient):
        profile = patients.profile_of(patient)
        self.__dict__.update(vars(profile))
        self.phone = patients.display_phone(profile.phone)


@bp.route("/angaben", methods=["GET", "POST"])
def edit_intake():
    """Edit the clinical intake (shown only to the clinicians of the patient's practices)."""
    user, patient = _me()
    db = get_session()
    now = clock.now()
    clinical = access.load_clinical(db, user, patient, now, purpose="edit")
    form = IntakeForm(obj=None if request.method == "POST" else patients.intake_of(clinical))
    if form.validate_on_submit():
        try:
            patients.update_intake(db, now, patient, form.intake(), user)
        except DomainError as err:
            _form_error(form, err)
        else:
            flash(_("Ihre Angaben wurden gespeichert."), "success")
            return redirect(url_for("patient.dashboard"))
    return render_template("patient/intake.html", form=form)


# --- where to wait ------------------------------------------------------------------------------


@bp.route("/praxen")
def finder():
    """Practices that fit, nearest first, with join buttons; the regional pool on top."""
    user, patient = _me()
    db = get_session()
    now = clock.now()
    form = FinderForm(request.args)
    if not request.args.get("distance_km"):
        form.distance_km.data = patient.max_distance_km
    filters = waitlist.FinderFilters(distance_km=patient.max_distance_km)
    if form.validate():
        filters = waitlist.FinderFilters(
            distance_km=form.distance_km.data or patient.max_distance_km,
            method=form.method.data,
            specialty=form.specialty.data,
            language=form.language.data,
            therapist_gender=form.therapist_gender.data,
            video=form.video.data,
            group=form.group.data,
        )
    clinical = access.load_clinical(db, user, patient, now, purpose="finder")
    hits = waitlist.find_practices(
        db, patient, clinical.problems_mask if clinical else 0, filters, now.date()
    )
    pool = waitlist.get_entry(db, patient, None)
    return render_template(
        "patient/finder.html",
        form=form,
        hits=hits,
        patient=patient,
        in_pool=pool is not None and pool.status == EntryStatus.ACTIVE,
        location=patients.location_of(db, patient),
    )


@bp.route("/listen/praxis/<int:practice_id>", methods=["POST"])
def join(practice_id: int):
    """Join one practice's waitlist."""
    user, patient = _me()
    db = get_session()
    practice = db.get(Practice, practice_id)
    if practice is None:
        abort(404)
    try:
        waitlist.join_list(db, clock.now(), patient, practice, actor=user)
    except DomainError as err:
        flash(err.text(_), "warning")
    else:
        flash(_("Sie stehen jetzt auf der Warteliste dieser Praxis."), "success")
    back = "patient.finder" if request.form.get("back") == "finder" else "patient.dashboard"
    return redirect(url_for(back))


@bp.route("/listen/pool", methods=["POST"])
def join_pool():
    """Join the regional pool: any fitting practice within the patient's distance."""
    user, patient = _me()
    waitlist.join_list(get_session(), clock.now(), patient, None, actor=user)
    flash(_("Sie sind jetzt im regionalen Pool."), "success")
    return redirect(url_for("patient.dashboard"))


@bp.route("/listen/<int:entry_id>/verlassen", methods=["POST"])
def leave(entry_id: int):
    """Leave one list (the entry is kept with the reason, for the patient's history)."""
    user, patient = _me()
    db = get_session()
    try:
        entry = waitlist.get_own_entry(db, patient, entry_id)
        waitlist.leave_list(db, clock.now(), patient, entry, actor=user)
    except (InvalidInput, NotAllowed):
        abort(404)
    flash(_("Sie haben die Warteliste verlassen."), "info")
    return redirect(url_for("patient.dashboard"))


# --- status ---------------------------------------------------------------------------------------


@bp.route("/pause", methods=["GET", "POST"])
def pause():
    """Pause the search, optionally until a date."""
    user, patient = _me()
    form = PauseForm()
    if form.validate_on_submit():
        try:
            patients.pause(
                get_session(),
                clock.now(),
                patient,
                form.until.data,
                user,
                settings=current_settings(),
            )
        except DomainError as err:
            _form_error(form, err)
        else:
            flash(_("Ihre Suche ist pausiert. Sie erhalten keine Angebote."), "info")
            return redirect(url_for("patient.dashboard"))
    return render_template("patient/pause.html", form=form)


@bp.route("/reaktivieren", methods=["POST"])
def reactivate():
    """Search again; the lists a released booking took come back."""
    user, patient = _me()
    try:
        restored = patients.reactivate(get_session(), clock.now(), patient, user)
    except DomainError as err:
        flash(err.text(_), "warning")
    else:
        flash(
            _("Ihre Suche ist wieder aktiv.")
            + (" " + _("Ihre Wartelisten wurden wiederhergestellt.") if restored else ""),
            "success",
        )
    return redirect(url_for("patient.dashboard"))


# --- privacy --------------------------------------------------------------------------------------


@bp.route("/export.json")
def export():
    """All own data as a JSON download."""
    user, patient = _me()
    data = patients.export_data(get_session(), clock.now(), patient, user)
    body = json.dumps(data, ensure_ascii=False, indent=2)
    return Response(
        body,
        mimetype="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="ptmatch-daten.json"',
            "Cache-Control": "no-store",
        },
    )


@bp.route("/loeschen", methods=["GET", "POST"])
def delete():
    """Delete the account and erase all personal and clinical data."""
    user, patient = _me()
    form = DeleteForm()
    if form.validate_on_submit():
        try:
            patients.delete_account(
                get_session(),
                clock.now(),
                user,
                patient,
                form.password.data,
                settings=current_settings(),
            )
        except DomainError as err:
            _form_error(form, err)
        else:
            end_session()
            return redirect(url_for("patient.deleted"))
    return render_template(
        "patient/delete.html",
        form=form,
        backup_days=backup.retention_days(current_settings()),
    )


# --- a practice's own link: /p/<slug> -------------------------------------------------------------


@link_bp.route("/p/<slug>")
def landing(slug: str):
    """A practice's registration link: register for its list, or join it when logged in."""
    practice = waitlist.get_practice_by_slug(get_session(), slug)
    if practice is None:
        abort(404)
    user = current_db_user()
    entry = None
    if user is not None and user.role == Role.PATIENT:
        patient = patients.get_patient_for_user(get_session(), user)
        entry = waitlist.get_entry(get_session(), patient, practice) if patient else None
    return render_template(
        "patient/practice_link.html",
        practice=practice,
        user=user,
        on_list=entry is not None and entry.status == EntryStatus.ACTIVE,
    )


@link_bp.route("/p/<slug>/gruppen")
def practice_groups(slug: str):
    """A practice's open groups, public and pseudonymous: what, when, seats left, no names."""
    db, now = get_session(), clock.now()
    practice = waitlist.get_practice_by_slug(db, slug)
    if practice is None:
        abort(404)
    user = current_db_user()
    return render_template(
        "patient/practice_groups.html",
        practice=practice,
        open_groups=groups.public_groups(db, practice.id, now),
        seats_left=groups.seats_left,
        is_patient=user is not None and user.role == Role.PATIENT,
    )


@bp.route("/p/<slug>/beitreten", methods=["POST"])
def join_via_link(slug: str):
    """A logged-in patient joins the list of the practice whose link they followed (flagged)."""
    user, patient = _me()
    db = get_session()
    practice = waitlist.get_practice_by_slug(db, slug)
    if practice is None:
        abort(404)
    try:
        waitlist.join_list(db, clock.now(), patient, practice, via_practice_link=True, actor=user)
    except DomainError as err:
        flash(err.text(_), "warning")
    else:
        flash(_("Sie stehen jetzt auf der Warteliste dieser Praxis."), "success")
    return redirect(url_for("patient.dashboard"))
