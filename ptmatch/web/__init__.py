"""The web layer: extensions, security plumbing, template helpers and the blueprints."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_wtf.csrf import CSRFError, CSRFProtect

from ptmatch.config import Settings
from ptmatch.web import bounds, pagecache, ratelimit, security, templating
from ptmatch.web.ops import hooks as ops_hooks

csrf = CSRFProtect()
babel = Babel()
bootstrap = Bootstrap5()


def current_settings() -> Settings:
    """The app's settings (built once by create_app)."""
    return current_app.extensions["settings"]


def select_locale() -> str:
    from flask import session
    from flask_login import current_user

    if getattr(current_user, "is_authenticated", False) and current_user.locale in ("de", "en"):
        return current_user.locale
    if session.get("lang") in ("de", "en"):
        return session["lang"]
    return request.accept_languages.best_match(["de", "en"]) or "de"


def init_web(app: Flask) -> None:
    bounds.install(app)  # before anything adds a rule with <int:...>
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    bootstrap.init_app(app)
    security.init_app(app)
    ratelimit.init_app(app)
    templating.init_app(app)
    pagecache.init_app(app)
    ops_hooks.init_app(app)

    from ptmatch.web import blueprints

    blueprints.register(app)

    @app.errorhandler(CSRFError)
    def _csrf_error(_err):
        return render_template("errors/error.html", code=400, message="csrf"), 400

    for code in (400, 403, 404, 405, 413, 429):
        app.register_error_handler(code, _make_error_handler(code))

    @app.errorhandler(500)
    def _server_error(_err):
        if request.path.startswith("/api/"):
            from ptmatch.web.api.views import problem

            return problem(500, "Internal Server Error")
        return render_template("errors/error.html", code=500, message=None), 500


def _make_error_handler(code: int):
    def handler(err):
        if request.path.startswith("/api/"):  # the API answers in problem+json, also here
            from ptmatch.web.api.views import problem

            return problem(code, getattr(err, "name", "Error"))
        return render_template("errors/error.html", code=code, message=None), code

    return handler
