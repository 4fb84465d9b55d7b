"""Login sessions, revocation, timeouts, role gates and security headers.

Flask's cookie session cannot be revoked, so the Flask-Login id carries the user's
session version ("<id>:<version>"): bumping `User.session_version` (logout, password
change, 2FA reset, deactivation) makes every older cookie load no user.
A staff member is never logged in before TOTP: the password step only leaves a
short-lived "pending second factor" marker in the session.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, current_app, g, redirect, request, session, url_for
from flask_login import LoginManager, current_user, login_user, logout_user

from ptmatch import clock
from ptmatch.db import get_session
from ptmatch.models import Role, User

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = None
login_manager.session_protection = "basic"


class SessionUser:
    """Flask-Login's view of a User: the id includes the session version."""

    def __init__(self, user: User):
        self.user = user

    def __getattr__(self, name):
        return getattr(self.user, name)

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.user.id}:{self.user.session_version}"


@login_manager.user_loader
def _load_user(user_id: str):
    try:
        uid, version = (int(part) for part in user_id.split(":", 1))
    except (ValueError, AttributeError):
        return None
    user = get_session().get(User, uid)
    if user is None or not user.is_enabled or user.session_version != version:
        return None
    if user.is_staff and not user.has_totp:
        return None
    return SessionUser(user)


def start_session(user: User) -> None:
    """A fresh session on login: old keys (and any fixation) are dropped."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    login_user(SessionUser(user), remember=False, fresh=True)
    now = clock.timestamp()
    session["login_at"] = now
    session["seen_at"] = now
    session.permanent = False


def end_session() -> None:
    lang = session.get("lang")
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang


def is_safe_next(target: str | None) -> bool:
    """Only same-site absolute paths: '/x', never '//host', 'http://', or backslash tricks."""
    if not target or len(target) > 500:
        return False
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and not any(ord(c) < 32 for c in target)


def safe_next(default_endpoint: str = "public.home") -> str:
    target = request.values.get("next")
    return target if is_safe_next(target) else url_for(default_endpoint)


def current_db_user() -> User | None:
    if getattr(current_user, "is_authenticated", False):
        return current_user.user
    return None


def home_for(user: User) -> str:
    return {
        Role.PATIENT: "patient.dashboard",
        Role.THERAPIST: "practice.home",
        Role.SECRETARY: "secretariat.home",
        Role.ADMIN: "admin.home",
    }.get(user.role, "public.home")


def require_roles(bp: Blueprint, *roles: Role, exempt: tuple[str, ...] = ()) -> None:
    """Deny by default: every view of `bp` needs a logged-in user of one of `roles`."""

    @bp.before_request
    def _gate():
        if request.endpoint in {f"{bp.name}.{name}" for name in exempt}:
            return None
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        if current_user.role not in roles:
            abort(403)
        return None


def roles_required(*roles: Role):
    """Decorator form of the role gate for single views."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    settings = app.extensions["settings"]

    @app.before_request
    def _timeouts():
        if not current_user.is_authenticated:
            return None
        now = clock.timestamp()
        login_at = session.get("login_at", 0)
        seen_at = session.get("seen_at", 0)
        idle_limit = settings.STAFF_IDLE_MINUTES * 60 if current_user.is_staff else None
        absolute = settings.SESSION_ABSOLUTE_HOURS * 3600
        if now - login_at > absolute or (idle_limit and now - seen_at > idle_limit):
            end_session()
            return redirect(url_for("auth.login", next=request.path, expired=1))
        session["seen_at"] = now
        g.authenticated = True
        return None

    @app.after_request
    def _headers(response):
        csp = (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; "
            "base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
        )
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        # No product or version: replaces Werkzeug's; gunicorn.conf.py drops gunicorn's own.
        response.headers["Server"] = "ptmatch"
        if g.get("authenticated") or request.path.startswith(("/auth", "/o/", "/offer")):
            response.headers["Cache-Control"] = "no-store"
        if settings.HTTPS:
            response.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        return response
