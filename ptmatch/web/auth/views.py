"""Login, second factor, TOTP enrolment, logout, password change and reset."""

from __future__ import annotations

import segno
from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.domain import accounts, audit
from ptmatch.domain.errors import AccountLocked, InvalidInput, LoginRestart
from ptmatch.domain.passwords import check_password_policy
from ptmatch.models import TokenPurpose, User
from ptmatch.web import current_settings
from ptmatch.web.auth.forms import (
    CodeForm,
    EmailForm,
    LoginForm,
    PasswordChangeForm,
    SetPasswordForm,
)
from ptmatch.web.forms import add_domain_error
from ptmatch.web.ratelimit import client_address
from ptmatch.web.security import current_db_user, end_session, home_for, is_safe_next, start_session

bp = Blueprint("auth", __name__)

PENDING_SECONDS = 300


def _pending_user() -> User | None:
    """The user who passed the password step and still owes the second factor."""
    pending = session.get("pending_2fa")
    if not pending or clock.timestamp() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    user = get_session().get(User, pending.get("uid"))
    if user is None or user.session_version != pending.get("ver") or not user.is_enabled:
        return None
    if user.has_totp and user.login_generation != pending.get("gen"):
        return None  # dropped: codes spent, locked, or a newer login started
    return user


def _finish_login(user: User):
    target = session.get("pending_next")
    audit.record(get_session(), clock.now(), "account.login", user, subject_user_id=user.id)
    start_session(user)
    return redirect(target if is_safe_next(target) else url_for(home_for(user)))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Password step; staff continue to the second factor (or to enrolment)."""
    if current_user.is_authenticated:
        return redirect(url_for(home_for(current_user.user)))
    form = LoginForm()
    if form.validate_on_submit():
        db = get_session()
        try:
            user = accounts.authenticate(
                db,
                clock.now(),
                form.email.data,
                form.password.data,
                current_settings(),
                client_address(),
            )
        except AccountLocked:
            user = None
        if user is None:  # one answer for a wrong address or password, a lock or a throttle
            form.password.errors = [_(accounts.MSG_LOGIN_FAILED)]
        db.commit()  # failure counters are security records: kept even though login fails
        if user is not None:
            return _after_password(user)
    elif request.method == "GET" and request.args.get("expired"):
        flash(_("Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an."), "info")
    return render_template("auth/login.html", form=form)


def _after_password(user: User):
    nxt = request.values.get("next")
    if not user.has_totp and not user.is_staff:
        if is_safe_next(nxt):
            session["pending_next"] = nxt
        return _finish_login(user)
    session.clear()
    session["pending_2fa"] = {
        "uid": user.id,
        "ver": user.session_version,
        "gen": user.login_generation,
        "at": clock.timestamp(),
    }
    if is_safe_next(nxt):
        session["pending_next"] = nxt
    return redirect(url_for("auth.second_factor" if user.has_totp else "auth.enrol"))


@bp.route("/2fa", methods=["GET", "POST"])
def second_factor():
    """TOTP code or a recovery code."""
    user = _pending_user()
    if user is None or not user.has_totp:
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if form.validate_on_submit():
        db = get_session()
        try:
            ok = accounts.check_second_factor(
                db,
                clock.now(),
                user,
                session["pending_2fa"].get("gen"),
                form.code.data,
                current_settings(),
                client_address(),
            )
        except InvalidInput as err:
            add_domain_error(form, err)  # no code at all: not evaluated, not counted
            return render_template("auth/second_factor.html", form=form)
        except LoginRestart:
            db.commit()  # the failures are security records
            session.pop("pending_2fa", None)
            flash(_("Zu viele ungültige Codes. Bitte melden Sie sich erneut an."), "warning")
            return redirect(url_for("auth.login"))
        db.commit()
        if ok:
            return _finish_login(user)
        form.code.errors = [_("Der Code ist ungültig oder wurde schon verwendet.")]
    return render_template("auth/second_factor.html", form=form)


@bp.route("/2fa/setup", methods=["GET", "POST"])
def enrol():
    """TOTP enrolment: mandatory for staff before any other page, optional for patients."""
    user = _pending_user() or current_db_user()
    if user is None:
        return redirect(url_for("auth.login"))
    if user.has_totp:
        return redirect(url_for(home_for(user)))
    db = get_session()
    accounts.start_totp_enrolment(user)
    form = CodeForm()
    if form.validate_on_submit():
        codes = accounts.confirm_totp(db, clock.now(), user, form.code.data)
        if codes is not None:
            db.commit()
            logged_in = current_db_user() is not None
            if logged_in:
                accounts.end_all_sessions(db, user)
                db.commit()
            start_session(user)
            return render_template(
                "auth/recovery_codes.html", codes=codes, next_url=url_for(home_for(user))
            )
        form.code.errors = [_("Der Code ist ungültig. Prüfen Sie die Uhrzeit Ihres Geräts.")]
    qr = segno.make(accounts.totp_uri(user), error="m")
    svg = Markup(
        qr.svg_inline(
            scale=4, dark="#000", light="#fff", title=_("QR-Code für die Authenticator-App")
        )
    )
    return render_template("auth/enrol.html", form=form, qr_svg=svg, secret=user.totp_secret)


@bp.route("/logout", methods=["POST"])
def logout():
    """Ends this and every other session of the user."""
    user = current_db_user()
    if user is not None:
        accounts.end_all_sessions(get_session(), user)
    end_session()
    flash(_("Sie sind abgemeldet."), "info")
    return redirect(url_for("public.home"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change the password; every session (this one included) ends, then a new one starts."""
    form = PasswordChangeForm()
    user = current_db_user()
    if form.validate_on_submit():
        try:
            accounts.change_password(
                get_session(), clock.now(), user, form.current_password.data, form.new_password.data
            )
        except InvalidInput as err:
            add_domain_error(form, err)
        else:
            start_session(user)
            flash(_("Ihr Passwort wurde geändert. Andere Sitzungen wurden beendet."), "success")
            return redirect(url_for(home_for(user)))
    return render_template("auth/password.html", form=form)


@bp.route("/reset", methods=["GET", "POST"])
def request_reset():
    """Ask for a reset link; the answer is the same whether or not the address has an account."""
    form = EmailForm()
    if form.validate_on_submit():
        # The same small write for every address; the scheduler looks the address up and
        # mails the link (accounts.send_reset_mails), so the timing tells nothing.
        accounts.request_password_reset(
            get_session(), clock.now(), form.email.data, str(get_locale() or "de")
        )
        flash(
            _("Wenn ein Konto zu dieser Adresse besteht, haben wir einen Link geschickt."), "info"
        )
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form)


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str):
    """Set a password from a mailed link (reset, or a caller the secretariat registered)."""
    db = get_session()
    now = clock.now()
    if accounts.peek_user_token(db, now, token, TokenPurpose.SET_PASSWORD) is None:
        return render_template("auth/link_invalid.html"), 404
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            check_password_policy(form.new_password.data, "new_password")
        except InvalidInput as err:
            add_domain_error(form, err)
        else:
            user = accounts.consume_user_token(db, now, token, TokenPurpose.SET_PASSWORD)
            if user is None:
                abort(404)
            accounts.set_password(db, now, user, form.new_password.data)
            if user.email_verified_at is None:
                user.email_verified_at = now
            end_session()
            flash(_("Ihr Passwort ist gesetzt. Bitte melden Sie sich an."), "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/set_password.html", form=form)
