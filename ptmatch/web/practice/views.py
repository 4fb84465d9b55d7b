"""Practice area for therapists: profile, waitlist workbench, slots. (Filled in by later issues.)"""

from flask import Blueprint, render_template

from ptmatch.models import Role
from ptmatch.web.security import require_roles

bp = Blueprint("practice", __name__)
require_roles(bp, Role.THERAPIST)


@bp.route("/")
def home():
    """The therapist's start page."""
    return render_template("practice/home.html")
