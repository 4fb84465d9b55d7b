"""Secretariat console: find or register callers, their card (never clinical data), the
write-only intake, call notes, lists, answering offers for a caller, the day's slots."""

from __future__ import annotations

import datetime as dt
from functools import partial

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.domain import calls, deadlines, patients, secretariat
from ptmatch.domain.errors import (
    DomainError,
    InvalidInput,
    NotAllowed,
    NotFound,
    OfferClosed,
    OfferExpired,
    SlotTaken,
)
from ptmatch.models import EnrollmentStatus, GroupEnrollment, Offer, Role, SlotStatus
from ptmatch.web import current_settings
from ptmatch.web.bounds import date_arg
from ptmatch.web.forms import add_domain_error
from ptmatch.web.secretariat.forms import (
    CallerProfileForm,
    CallNoteForm,
    CallOutcomeForm,
    IntakeForm,
    ListForm,
    RegisterCallerForm,
    SearchForm,
)
from ptmatch.web.security import current_db_user, require_roles

bp = Blueprint("secretariat", __name__)
require_roles(bp, Role.SECRETARY)

POOL = "pool"


def _caller_or_404(patient_id: int):
    try:
        return secretariat.get_caller(get_session(), clock.now(), current_db_user(), patient_id)
    except NotFound:
        abort(404)


def _show_error(form, err: DomainError) -> None:
    if form is None or not add_domain_error(form, err):
        flash(err.text(_), "danger")


def _list_form(patient, formdata=None) -> ListForm:
    form = ListForm(formdata=formdata)
    db = get_session()
    on = secretariat.active_entry_practice_ids(db, patient)
    choices = [] if None in on else [(POOL, _("Regionaler Pool"))]
    choices += [
        (str(p.id), p.name)
        for p in secretariat.served_practices(db, current_db_user())
        if p.id not in on
    ]
    form.practice.choices = choices
    return form


def _render_card(patient, **forms):
    db = get_session()
    card = secretariat.caller_card(db, clock.now(), current_db_user(), patient)
    return render_template(
        "secretariat/caller.html",
        card=card,
        note_form=forms.get("note_form") or CallNoteForm(formdata=None),
        list_form=forms.get("list_form") or _list_form(patient),
        practice_names={p.id: p.name for p in secretariat.served_practices(db, current_db_user())},
    )


@bp.route("/")
def home():
    """Search callers; today's slots of the served practices at a glance."""
    form = SearchForm(formdata=request.args)
    db, now = get_session(), clock.now()
    hits = None
    if form.q.data and form.validate():
        hits = secretariat.search_callers(db, clock.now(), current_db_user(), form.q.data)
    start, end = secretariat.berlin_day_bounds(secretariat.berlin_today(now))
    today = secretariat.slots_overview(db, now, current_db_user(), start=start, end=end)
    return render_template(
        "secretariat/home.html",
        form=form,
        hits=hits,
        today=today,
        practices=secretariat.served_practices(db, current_db_user()),
    )


def _cells(form, patient=None) -> tuple[set[str], bool]:
    if request.method == "POST":
        cells = set(form.availability.data or [])
        for day in form.whole_days.data or []:
            cells |= {f"{day}-{start}" for start, _end in patients.GRID_BLOCKS}
        return cells, True
    return (
        patients.grid_from_windows(patient.availability) if patient is not None else (set(), True)
    )


def _grid(**context) -> dict:
    return {
        "patients_grid_blocks": patients.GRID_BLOCKS,
        "patients_grid_days": patients.GRID_DAYS,
        **context,
    }


@bp.route("/anrufer/neu", methods=["GET", "POST"])
def register():
    """Register a caller by phone: verbal consent recorded with who and when."""
    form = RegisterCallerForm()
    db = get_session()

    def problems(profile):
        return secretariat.caller_problems(db, clock.now(), **form.caller(profile))

    if (windows := form.checked_windows(problems)) is not None:
        try:
            patient = secretariat.register_caller(
                db, clock.now(), current_db_user(), **form.caller(form.profile(windows))
            )
        except DomainError as err:
            _show_error(form, err)
        else:
            flash(
                _("Registriert. Die Person kann jetzt auf Wartelisten gesetzt werden."), "success"
            )
            return redirect(url_for("secretariat.caller", patient_id=patient.id))
    cells, _exact = _cells(form)
    return render_template("secretariat/register.html", **_grid(form=form, cells=cells))


@bp.route("/anrufer/<int:patient_id>/profil", methods=["GET", "POST"])
def edit_profile(patient_id: int):
    """Change a caller's contact, preferences and weekly times on their behalf."""
    patient = _caller_or_404(patient_id)
    form = CallerProfileForm(obj=None if request.method == "POST" else _ProfileObj(patient))
    db = get_session()
    problems = partial(patients.profile_problems, db, clock.now().date())
    if (windows := form.checked_windows(problems)) is not None:
        try:
            secretariat.update_caller_profile(
                get_session(), clock.now(), current_db_user(), patient, form.profile(windows)
            )
        except DomainError as err:
            _show_error(form, err)
        else:
            flash(_("Gespeichert."), "success")
            return redirect(url_for("secretariat.caller", patient_id=patient.id))
    cells, exact = _cells(form, patient)
    return render_template(
        "secretariat/profile.html",
        **_grid(form=form, cells=cells, grid_exact=exact, patient=patient),
    )


class _ProfileObj:
    """The caller's profile in the shape the form reads (`obj=`); no clinical data."""

    def __init__(self, patient):
        profile = patients.profile_of(patient)
        self.__dict__.update(vars(profile))
        self.phone = patients.display_phone(profile.phone)


@bp.route("/anrufer/<int:patient_id>")
def caller(patient_id: int):
    """The caller card: identity, contact, availability, lists, offers, bookings, notes."""
    return _render_card(_caller_or_404(patient_id))


@bp.route("/anrufer/<int:patient_id>/aufnahme", methods=["GET", "POST"])
def intake(patient_id: int):
    """Record the clinical intake, write-only: the form is never pre-filled."""
    patient = _caller_or_404(patient_id)
    form = IntakeForm()
    if form.validate_on_submit():
        try:
            secretariat.record_intake(
                get_session(), clock.now(), current_db_user(), patient, form.intake()
            )
        except DomainError as err:
            _show_error(form, err)
        else:
            return render_template("secretariat/intake_done.html", patient=patient)
    return render_template("secretariat/intake.html", form=form, patient=patient)


@bp.route("/anrufer/<int:patient_id>/notiz", methods=["POST"])
def add_note(patient_id: int):
    """Add a non-clinical call note."""
    patient = _caller_or_404(patient_id)
    form = CallNoteForm()
    if form.validate_on_submit():
        try:
            secretariat.add_call_note(
                get_session(), clock.now(), current_db_user(), patient, form.text.data
            )
        except DomainError as err:
            _show_error(form, err)
        else:
            flash(_("Notiz gespeichert."), "success")
            return redirect(url_for("secretariat.caller", patient_id=patient.id))
    return _render_card(patient, note_form=form), 400


@bp.route("/anrufer/<int:patient_id>/liste", methods=["POST"])
def join_list(patient_id: int):
    """Put the caller on a served practice's list or in the regional pool."""
    patient = _caller_or_404(patient_id)
    form = _list_form(patient, request.form)
    if form.validate_on_submit():
        choice = form.practice.data
        try:
            secretariat.put_on_list(
                get_session(),
                clock.now(),
                current_db_user(),
                patient,
                None if choice == POOL else int(choice),
            )
        except DomainError as err:
            _show_error(form, err)
        else:
            flash(_("Auf die Warteliste gesetzt."), "success")
            return redirect(url_for("secretariat.caller", patient_id=patient.id))
    return _render_card(patient, list_form=form), 400


@bp.route("/anrufer/<int:patient_id>/liste/<int:entry_id>/austragen", methods=["POST"])
def leave_list(patient_id: int, entry_id: int):
    """Take the caller off one list at their request."""
    patient = _caller_or_404(patient_id)
    try:
        secretariat.take_off_list(get_session(), clock.now(), current_db_user(), patient, entry_id)
    except NotFound:
        abort(404)
    except NotAllowed as err:
        flash(err.text(_), "danger")
    else:
        flash(_("Von der Warteliste genommen."), "success")
    return redirect(url_for("secretariat.caller", patient_id=patient.id))


@bp.route("/angebote/<int:offer_id>/<any(annehmen, ablehnen):answer>", methods=["POST"])
def answer_offer(offer_id: int, answer: str):
    """Accept or decline an offer on the caller's behalf (audited with the secretary as actor)."""
    db = get_session()
    offer = db.get(Offer, offer_id)
    if offer is None:
        abort(404)
    patient = _caller_or_404(offer.patient_id)
    try:
        secretariat.answer_offer(
            db,
            clock.now(),
            current_db_user(),
            offer,
            accept=answer == "annehmen",
            settings=current_settings(),
        )
    except (SlotTaken, OfferExpired, OfferClosed, InvalidInput, NotAllowed) as err:
        flash(err.text(_) if err.message else _("Das Angebot ist nicht mehr verfügbar."), "warning")
    else:
        if answer != "annehmen":
            flash(_("Angebot abgelehnt."), "success")
        elif offer.slot_id is None:
            flash(_("Angebot für die Gruppe angenommen."), "success")
        else:
            flash(_("Termin gebucht."), "success")
    return redirect(url_for("secretariat.caller", patient_id=patient.id))


@bp.route("/anrufer/<int:patient_id>/gruppe", methods=["POST"])
def enrol_group(patient_id: int):
    """Enrol a caller into an open group of a served practice (a seat, else its waitlist)."""
    patient = _caller_or_404(patient_id)
    group_id = request.form.get("group_id", type=int)
    try:
        enrollment = secretariat.enrol_caller(
            get_session(),
            clock.now(),
            current_db_user(),
            patient,
            group_id or 0,
            current_settings(),
        )
    except NotFound:
        flash(_("Diese Gruppe gibt es nicht (mehr)."), "warning")
    except DomainError as err:
        params = getattr(err, "params", None)
        flash(_(err.msgid, **params) if params else _(err.message), "warning")
    else:
        flash(
            _("Angemeldet.")
            if enrollment.status == EnrollmentStatus.ENROLLED
            else _("Die Gruppe ist voll: auf Platz %(n)s der Warteliste.", n=enrollment.position),
            "success",
        )
    return redirect(url_for("secretariat.caller", patient_id=patient.id))


@bp.route("/termine")
def slots():
    """Open slots and outcomes of the served practices for one day (default today)."""
    db, now = get_session(), clock.now()
    today = secretariat.berlin_today(now)
    day, valid = date_arg("tag", today)
    if not valid:
        flash(_("Bitte ein gültiges Datum zwischen 1900 und 2199 angeben."), "warning")
    start, end = secretariat.berlin_day_bounds(day)
    lines = secretariat.slots_overview(db, now, current_db_user(), start=start, end=end)
    upcoming = secretariat.slots_overview(
        db,
        now,
        current_db_user(),
        start=now,
        end=now + dt.timedelta(days=14),
        statuses=(SlotStatus.OFFERING,),
    )
    return render_template(
        "secretariat/slots.html",
        day=day,
        lines=lines,
        upcoming=upcoming,
        prev_day=day - dt.timedelta(days=1),
        next_day=day + dt.timedelta(days=1),
        today=today,
    )


@bp.route("/anrufe")
def call_queue():
    """The call queue: phone-only callers to ring about offers, reminders and check-ins."""
    db, now = get_session(), clock.now()
    rows = secretariat.call_queue(db, now, current_db_user())
    return render_template("secretariat/calls.html", rows=rows, form=CallOutcomeForm())


@bp.route("/anrufe/<int:task_id>", methods=["POST"])
def call_outcome(task_id: int):
    """Record what came of a call ("not reached" passes an offered place on at once)."""
    try:
        calls.get_task(get_session(), clock.now(), current_db_user(), task_id)
    except NotFound:
        abort(404)
    form = CallOutcomeForm()
    if not form.validate_on_submit():
        flash(_("Bitte ein Ergebnis wählen."), "danger")
        return redirect(url_for("secretariat.call_queue"))
    try:
        booking = secretariat.record_call_outcome(
            get_session(),
            clock.now(),
            current_db_user(),
            task_id,
            form.outcome.data,
            settings=current_settings(),
        )
    except NotFound:
        abort(404)
    except (SlotTaken, OfferExpired, OfferClosed, InvalidInput, NotAllowed) as err:
        flash(_(err.message) if err.message else _("Das Angebot ist nicht mehr offen."), "warning")
    else:
        flash(_call_done(booking), "success")
    return redirect(url_for("secretariat.call_queue"))


def _call_done(result) -> str:
    """What an accepted call booked: a slot, a group seat, or a place on a group's waitlist."""
    if isinstance(result, GroupEnrollment):
        if result.status == EnrollmentStatus.WAITLISTED:
            return _("Auf die Warteliste der Gruppe gesetzt.")
        return _("Gruppenplatz angenommen.")
    return _("Termin gebucht.") if result is not None else _("Gespeichert.")


@bp.route("/fristen")
def at_risk():
    """Urgent callers whose PTV 11 deadline is within a week (or passed): to phone first."""
    db, now = get_session(), clock.now()
    rows = deadlines.at_risk(db, now, current_db_user())
    return render_template("secretariat/at_risk.html", rows=rows, days=deadlines.AT_RISK_DAYS)
