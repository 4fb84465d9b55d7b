"""Patient area: registration, dashboard, profile, lists, privacy. (Filled in by the patient issue.)"""

from flask import Blueprint, render_template

from ptmatch.models import Role
from ptmatch.web.security import require_roles

bp = Blueprint("patient", __name__)
require_roles(bp, Role.PATIENT, exempt=())


@bp.route("/")
def dashboard():
    """The patient's overview."""
    return render_template("patient/dashboard.html")
