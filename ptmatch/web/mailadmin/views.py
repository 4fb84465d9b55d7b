"""Mail-Ausgang. (Filled in by its issue.)"""

from flask import Blueprint, render_template

from ptmatch.models import Role
from ptmatch.web.security import require_roles

bp = Blueprint("mailadmin", __name__)
require_roles(bp, Role.ADMIN)


@bp.route("/")
def index():
    """Overview."""
    return render_template("mailadmin/index.html")
