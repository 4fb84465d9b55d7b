"""ptmatch: waitlist matching for psychotherapy practices."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask


def default_instance_path() -> str:
    return os.environ.get("PTMATCH_INSTANCE_PATH") or str(Path(__file__).resolve().parent.parent / "instance")


def create_app(settings: dict | None = None) -> Flask:
    """Build the web app. `settings` override instance/settings.py and the environment."""
    from ptmatch import db
    from ptmatch.config import apply_process_settings, load_settings
    from ptmatch.notifications import outbox
    from ptmatch.web import init_web

    instance_path = (settings or {}).get("INSTANCE_PATH") or default_instance_path()
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    config = load_settings(instance_path, settings)
    app.config.update(config)
    apply_process_settings(config)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(config["HTTPS"]),
        REMEMBER_COOKIE_DURATION=0,
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,
        BOOTSTRAP_SERVE_LOCAL=True,
        BOOTSTRAP_BOOTSWATCH_THEME=None,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_I18N_ENABLED=False,  # see ptmatch.web.forms.BaseForm.Meta: cached per locale
        PREFERRED_URL_SCHEME="https" if config["HTTPS"] else "http",
    )
    os.makedirs(instance_path, exist_ok=True)
    db.init_app(app)
    outbox.configure(app.config)
    init_web(app)
    return app
