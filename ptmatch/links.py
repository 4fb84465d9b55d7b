"""Every URL path built outside a request: the links in mails, written by the domain and the jobs.

Views use ``url_for``; code without a request (domain functions, scheduler jobs, the bench)
calls these builders instead of spelling paths. Each returns a path; the outbox puts
BASE_URL in front (``outbox.absolute_link``). Flask-free, so the domain may import it.

``tests/test_links.py`` calls every public function of this module with sample arguments and
resolves the path against the app's URL map (GET, the way a mail link is opened), so renaming
a route without its builder fails the suite. A new builder is checked without further ado;
its parameters need a sample value there.
"""

from __future__ import annotations

from urllib.parse import quote


def _part(value: str | int) -> str:
    return quote(str(value), safe="")


# --- public and account ----------------------------------------------------------------------


def home() -> str:
    """The start page."""
    return "/"


def login() -> str:
    return "/auth/login"


def set_password(token: str) -> str:
    """Choose a password from an invitation or a reset mail."""
    return f"/auth/set-password/{_part(token)}"


# --- patients --------------------------------------------------------------------------------


def patient_home() -> str:
    """The patient's overview: status, offers, bookings, lists."""
    return "/patient/"


def verify_email(token: str) -> str:
    return f"/patient/verify/{_part(token)}"


def checkin(token: str) -> str:
    """ "Still looking?" from the periodic check-in mail."""
    return f"/patient/checkin/{_part(token)}"


def offer(token: str) -> str:
    """A slot offer, answered by its token (no login)."""
    return f"/o/{_part(token)}"


def booking(booking_id: int) -> str:
    """The patient's page of one booking."""
    return f"/patient/termin/{_part(booking_id)}"


def group_offer(token: str) -> str:
    """A group seat offer, answered by its token (no login)."""
    return f"/g/{_part(token)}"


def patient_groups() -> str:
    """The patient's group enrolments and group offers."""
    return "/patient/gruppen"


# --- practices -------------------------------------------------------------------------------


def practice_group(group_id: int) -> str:
    """A group programme as its practice sees it."""
    return f"/praxis/gruppen/{_part(group_id)}"


def slot(slot_id: int) -> str:
    """A posted slot as the practice sees it."""
    return f"/termine/{_part(slot_id)}"


# --- administration --------------------------------------------------------------------------


def admin_statistics_month(month: str) -> str:
    """The region statistics of one month (``YYYY-MM``): the monthly report mail."""
    return f"/admin/statistik/monat/{_part(month)}"
