"""Administration: therapist approval, practices and their therapists, which practices a
secretariat serves, accounts (deactivate, 2FA reset, invitations), the audit log and the
region's statistics.
The mail outbox is its own blueprint (/admin/mail). No page here shows clinical data."""

from __future__ import annotations

import csv
import io
import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ptmatch import clock
from ptmatch.catalog import N_
from ptmatch.db import get_session
from ptmatch.domain import admin, practices, stats
from ptmatch.domain.errors import DomainError
from ptmatch.models import Practice, Role, Therapist, User
from ptmatch.web import statistics
from ptmatch.web.admin.forms import (
    AssignForm,
    AuditFilterForm,
    InviteForm,
    ServedForm,
    UserFilterForm,
)
from ptmatch.web.bounds import page_arg
from ptmatch.web.forms import add_domain_error
from ptmatch.web.practice.forms import PracticeForm
from ptmatch.web.security import current_db_user, is_safe_next, require_roles

bp = Blueprint("admin", __name__)
require_roles(bp, Role.ADMIN)

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
)
AUDIT_CSV_MAX = 10_000


def _get_or_404(model, object_id: int):
    obj = get_session().get(model, object_id)
    if obj is None:
        abort(404)
    return obj


def _show_error(form, err: DomainError) -> None:
    if form is None or not add_domain_error(form, err):
        flash(err.text(_), "danger")


def _practice_values(form) -> dict:
    values = {name: getattr(form, name).data or "" for name in PRACTICE_FIELDS}
    return {**values, "accepts_pool": bool(form.accepts_pool.data)}


def _page_url(endpoint: str):
    args = request.args.to_dict(flat=True)
    return lambda n: url_for(endpoint, **{**args, "page": n})


@bp.route("/")
def home():
    """The admin's start page: what is waiting."""
    db = get_session()
    return render_template(
        "admin/home.html",
        pending=len(admin.pending_therapists(db)),
        practices=len(admin.list_practices(db)),
    )


# --- therapists ---------------------------------------------------------------------------------


@bp.route("/therapeuten")
def therapists():
    """Therapist accounts: waiting for approval first, then every therapist with a practice."""
    db = get_session()
    all_therapists = db.execute(
        select(Therapist, User)
        .join(User, User.id == Therapist.user_id)
        .order_by(User.display_name, User.id)
    ).all()
    active = [p for p, _n in admin.list_practices(db) if p.is_active]
    choices = [(0, _("– keine –"))] + [(p.id, p.name) for p in active]
    return render_template(
        "admin/therapists.html",
        pending=admin.pending_therapists(db),
        rows=all_therapists,
        practice_choices=choices,
    )


@bp.route("/therapeuten/<int:therapist_id>/freigeben", methods=["POST"])
def approve_therapist(therapist_id: int):
    """Approve a therapist account."""
    therapist = _get_or_404(Therapist, therapist_id)
    practices.approve_therapist(get_session(), clock.now(), current_db_user(), therapist)
    flash(_("Freigeschaltet."), "success")
    return redirect(url_for("admin.therapists"))


@bp.route("/therapeuten/<int:therapist_id>/praxis", methods=["POST"])
def assign_therapist(therapist_id: int):
    """Assign a therapist to a practice (0 = none)."""
    db = get_session()
    therapist = _get_or_404(Therapist, therapist_id)
    form = AssignForm()
    form.practice.choices = [(0, "")] + [(p.id, p.name) for p, _n in admin.list_practices(db)]
    if not form.validate_on_submit():
        flash(_("Bitte eine Praxis wählen."), "danger")
        return redirect(url_for("admin.therapists"))
    practice = db.get(Practice, form.practice.data) if form.practice.data else None
    try:
        practices.assign_therapist(db, clock.now(), current_db_user(), therapist, practice)
    except DomainError as err:
        flash(err.text(_), "danger")
    else:
        flash(_("Zugeordnet."), "success")
    return redirect(url_for("admin.therapists"))


# --- practices ----------------------------------------------------------------------------------


@bp.route("/praxen")
def practice_list():
    """Every practice with its number of therapists."""
    return render_template("admin/practices.html", rows=admin.list_practices(get_session()))


@bp.route("/praxen/neu", methods=["GET", "POST"])
def practice_new():
    """Create a practice."""
    form = PracticeForm()
    if form.validate_on_submit():
        try:
            practice = practices.create_practice(
                get_session(), clock.now(), current_db_user(), **_practice_values(form)
            )
        except DomainError as err:
            _show_error(form, err)
        else:
            flash(_("Die Praxis ist angelegt."), "success")
            return redirect(url_for("admin.practice_edit", practice_id=practice.id))
    return render_template("admin/practice_form.html", form=form, practice=None)


@bp.route("/praxen/<int:practice_id>", methods=["GET", "POST"])
def practice_edit(practice_id: int):
    """Edit a practice's basics; shows its therapists."""
    db = get_session()
    practice = _get_or_404(Practice, practice_id)
    form = PracticeForm(obj=None if request.method == "POST" else practice)
    if form.validate_on_submit():
        try:
            practices.update_practice_profile(
                db, clock.now(), current_db_user(), practice, **_practice_values(form)
            )
        except DomainError as err:
            _show_error(form, err)
        else:
            flash(_("Gespeichert."), "success")
            return redirect(url_for("admin.practice_edit", practice_id=practice.id))
    members = db.execute(
        select(Therapist, User)
        .join(User, User.id == Therapist.user_id)
        .where(Therapist.practice_id == practice.id)
        .order_by(User.display_name)
    ).all()
    return render_template(
        "admin/practice_form.html", form=form, practice=practice, members=members
    )


@bp.route("/praxen/<int:practice_id>/<any(aktivieren, deaktivieren):switch>", methods=["POST"])
def practice_switch(practice_id: int, switch: str):
    """Switch a practice on or off."""
    practice = _get_or_404(Practice, practice_id)
    admin.set_practice_active(
        get_session(), clock.now(), current_db_user(), practice, switch == "aktivieren"
    )
    flash(_("Gespeichert."), "success")
    return redirect(url_for("admin.practice_edit", practice_id=practice.id))


# --- secretariats --------------------------------------------------------------------------------


@bp.route("/sekretariate")
def secretariats():
    """Secretariat accounts and the practices each serves."""
    db = get_session()
    rows = admin.list_secretaries(db)
    choices = [(p.id, p.name) for p, _n in admin.list_practices(db)]
    forms = {}
    for user, served in rows:
        form = ServedForm(formdata=None, prefix=f"s{user.id}", practices=[p.id for p in served])
        form.practices.choices = choices
        forms[user.id] = form
    return render_template("admin/secretariats.html", rows=rows, forms=forms)


@bp.route("/sekretariate/<int:user_id>", methods=["POST"])
def secretariat_practices(user_id: int):
    """Set which practices a secretariat account serves."""
    db = get_session()
    user = _get_or_404(User, user_id)
    form = ServedForm(prefix=f"s{user.id}")
    form.practices.choices = [(p.id, p.name) for p, _n in admin.list_practices(db)]
    if form.validate_on_submit():
        try:
            admin.set_served_practices(
                db, clock.now(), current_db_user(), user, set(form.practices.data or [])
            )
        except DomainError as err:
            flash(err.text(_), "danger")
        else:
            flash(_("Gespeichert."), "success")
    else:
        flash(_("Bitte nur Praxen aus der Liste wählen."), "danger")
    return redirect(url_for("admin.secretariats"))


# --- accounts ----------------------------------------------------------------------------------


@bp.route("/konten")
def users():
    """Accounts with search and role filter, paginated."""
    form = UserFilterForm(formdata=request.args)
    form.validate()
    role = Role(form.role.data) if form.role.data and not form.role.errors else None
    page = admin.list_users(
        get_session(),
        role=role,
        q=(form.q.data or "") if not form.q.errors else "",
        page=page_arg(),
    )
    return render_template(
        "admin/users.html",
        form=form,
        page=page,
        page_url=_page_url("admin.users"),
        me=current_db_user(),
    )


@bp.route("/konten/neu", methods=["GET", "POST"])
def invite():
    """Invite a secretariat or admin account (the person sets a password and enrols 2FA)."""
    form = InviteForm()
    if form.validate_on_submit():
        try:
            admin.invite_staff(
                get_session(),
                clock.now(),
                current_db_user(),
                email=form.email.data,
                role=Role(form.role.data),
                display_name=form.display_name.data,
            )
        except DomainError as err:
            _show_error(form, err)
        else:
            flash(_("Eingeladen. Die Person bekommt eine E-Mail mit einem Link."), "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/invite.html", form=form)


_ACCOUNT_ACTIONS = {
    "deaktivieren": (
        admin.deactivate_user,
        N_("Das Konto ist deaktiviert; alle Sitzungen sind beendet."),
    ),
    "aktivieren": (admin.reactivate_user, N_("Das Konto ist wieder aktiv.")),
    "2fa-zuruecksetzen": (
        admin.reset_two_factor,
        N_(
            "Die Zwei-Faktor-Anmeldung ist zurückgesetzt; bei der nächsten Anmeldung wird sie neu "
            "eingerichtet."
        ),
    ),
}


@bp.route(
    "/konten/<int:user_id>/<any(deaktivieren, aktivieren, '2fa-zuruecksetzen'):action>",
    methods=["POST"],
)
def account_action(user_id: int, action: str):
    """Deactivate (sessions end at once), reactivate, or reset 2FA."""
    user = _get_or_404(User, user_id)
    act, done = _ACCOUNT_ACTIONS[action]
    try:
        act(get_session(), clock.now(), current_db_user(), user)
    except DomainError as err:
        flash(err.text(_), "danger")
    else:
        flash(_(done), "success")
    back = request.form.get("back")
    return redirect(
        back if is_safe_next(back) and back.startswith("/admin/") else url_for("admin.users")
    )


# --- audit log ---------------------------------------------------------------------------------


def _audit_filters(form: AuditFilterForm) -> dict:
    form.validate()
    values = {}
    for name in ("actor", "action", "patient_id", "date_from", "date_to"):
        fld = getattr(form, name)
        if not fld.errors and fld.data not in (None, ""):
            values[name] = fld.data
    return values


@bp.route("/audit")
def audit_log():
    """The audit log, newest first, with filters; paginated."""
    form = AuditFilterForm(formdata=request.args)
    page = admin.audit_log(get_session(), **_audit_filters(form), page=page_arg())
    return render_template(
        "admin/audit.html",
        form=form,
        page=page,
        page_url=_page_url("admin.audit_log"),
        csv_url=url_for("admin.audit_csv", **request.args.to_dict(flat=True)),
    )


@bp.route("/audit.csv")
def audit_csv():
    """The filtered audit log as CSV (ids and codes only, like the log itself)."""
    form = AuditFilterForm(formdata=request.args)
    page = admin.audit_log(get_session(), **_audit_filters(form), per_page=AUDIT_CSV_MAX)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "id",
            "at_utc",
            "actor_id",
            "actor_email",
            "actor_role",
            "action",
            "patient_id",
            "subject_user_id",
            "subject_email",
            "practice_id",
            "details",
        ]
    )
    for row in page.items:
        e = row.event
        details = json.dumps(e.details, ensure_ascii=False, sort_keys=True) if e.details else ""
        writer.writerow(
            [
                _csv_cell(v)
                for v in (
                    e.id,
                    e.at.isoformat(),
                    e.actor_id,
                    row.actor_email,
                    e.actor_role,
                    e.action,
                    e.patient_id,
                    e.subject_user_id,
                    row.subject_email,
                    e.practice_id,
                    details,
                )
            ]
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=audit.csv"},
    )


def _csv_cell(value) -> str:
    """A CSV cell guarded against spreadsheet formula injection."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- statistics ---------------------------------------------------------------------------------


def _stats_board():
    """The region (or one practice, ``?praxis=<id>``) for the period picked."""
    db = get_session()
    now = clock.now()
    form = statistics.PeriodForm(formdata=request.args)
    period = statistics.period_from(form, now.astimezone(stats.BERLIN).date())
    practice_id = request.args.get("praxis", type=int) or None
    if practice_id is not None and db.get(Practice, practice_id) is None:
        abort(404)
    board = statistics.build(db, current_db_user(), now, period, stats.Scope(practice_id))
    if board is None:
        abort(403)
    return form, board, practice_id


@bp.route("/statistik")
def statistics_page():
    """Outcome figures and charts for the region or one practice (small counts hidden)."""
    form, board, practice_id = _stats_board()
    args = request.args.to_dict(flat=True)
    return render_template(
        "admin/statistics.html",
        form=form,
        board=board,
        practice_id=practice_id,
        practices=[p for p, _n in admin.list_practices(get_session())],
        places=statistics.places_rows(board.figures),
        urgency=statistics.urgency_rows(board.figures),
        csv_url=lambda which: url_for("admin.statistics_csv", **{**args, "tabelle": which}),
    )


@bp.route("/statistik/monat/<month>")
def statistics_month(month: str):
    """One month of the region statistics (the link in the monthly report mail)."""
    try:
        period = stats.Period.parse_month(month)
    except ValueError:
        abort(404)
    return redirect(url_for("admin.statistics_page", von=period.first_day, bis=period.last_day))


@bp.route("/statistik.csv")
def statistics_csv():
    """One table of the statistics page as CSV (``?tabelle=``)."""
    _form, board, _practice_id = _stats_board()
    response = statistics.csv_response(
        board, request.args.get("tabelle", "kennzahlen"), "statistik"
    )
    if response is None:
        abort(404)
    return response
