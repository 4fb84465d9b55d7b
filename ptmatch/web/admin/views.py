"""Administration. (Filled in by the secretariat/admin issue.)"""

from flask import Blueprint, render_template

from ptmatch.models import Role
from ptmatch.web.security import require_roles

bp = Blueprint("admin", __name__)
require_roles(bp, Role.ADMIN)


@bp.route("/")
def home():
    """The admin's start page."""
    return render_template("admin/home.html")
