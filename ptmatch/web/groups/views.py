"""Gruppen. (Filled in by its issue.)"""

from flask import Blueprint, render_template

from ptmatch.models import Role
from ptmatch.web.security import require_roles

bp = Blueprint("groups", __name__)
require_roles(bp, Role.THERAPIST)


@bp.route("/")
def index():
    """Overview."""
    return render_template("groups/index.html")
