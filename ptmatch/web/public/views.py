"""Public pages: start page, health check, language switch, crisis notice."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import current_user

from ptmatch.db import get_session
from ptmatch.web.security import home_for, is_safe_next

bp = Blueprint("public", __name__)


@bp.route("/")
def home():
    """Start page; logged-in users go to their own home."""
    if current_user.is_authenticated:
        return redirect(url_for(home_for(current_user.user)))
    return render_template("public/home.html")


@bp.route("/healthz")
def healthz():
    """Trivial endpoint for load balancers (and the throughput baseline)."""
    return {"status": "ok"}


@bp.route("/lang", methods=["POST"])
def set_language():
    """Switch the UI language (stored on the account when logged in)."""
    lang = request.form.get("lang")
    if lang in ("de", "en"):
        session["lang"] = lang
        if current_user.is_authenticated:
            current_user.user.locale = lang
            get_session().add(current_user.user)
    target = request.form.get("next")
    return redirect(target if is_safe_next(target) else url_for("public.home"))


@bp.route("/hilfe")
def crisis():
    """Where to get help now: ptmatch is not a crisis service."""
    return render_template("public/crisis.html")
