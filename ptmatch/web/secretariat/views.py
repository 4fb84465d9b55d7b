"""Secretariat console. (Filled in by the secretariat issue.)"""

from flask import Blueprint, render_template

from ptmatch.models import Role
from ptmatch.web.security import require_roles

bp = Blueprint("secretariat", __name__)
require_roles(bp, Role.SECRETARY)


@bp.route("/")
def home():
    """The secretariat's start page."""
    return render_template("secretariat/home.html")
