"""ptmatch: waitlist matching for psychotherapy practices."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from ptmatch.config import Settings


def default_instance_path() -> str:
    return os.environ.get("PTMATCH_INSTANCE_PATH") or str(
        Path(__file__).resolve().parent.parent / "instance"
    )


def create_app(settings: Settings | Mapping | None = None) -> Flask:
    """Build the web app. `settings`: a finished Settings object, or overrides applied on top
    of instance/settings.py and the environment. The settings are built and validated once,
    here; views read them with `ptmatch.web.current_settings()`."""
    from ptmatch import db
    from ptmatch.config import Settings, load_settings
    from ptmatch.domain.passwords import use_settings as apply_process_settings
    from ptmatch.web import init_web

    if not isinstance(settings, Settings):
        overrides = dict(settings or {})
        settings = load_settings(
            overrides.get("INSTANCE_PATH") or default_instance_path(), overrides
        )
    app = Flask(__name__, instance_path=settings.INSTANCE_PATH, instance_relative_config=True)
    app.config.update(settings.as_config())  # Flask and its extensions read app.config
    apply_process_settings(settings)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.HTTPS,
        REMEMBER_COOKIE_DURATION=0,
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,
        BOOTSTRAP_SERVE_LOCAL=True,
        BOOTSTRAP_BOOTSWATCH_THEME=None,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_I18N_ENABLED=False,  # see ptmatch.web.forms.BaseForm.Meta: cached per locale
        PREFERRED_URL_SCHEME="https" if settings.HTTPS else "http",
    )
    app.extensions["settings"] = settings
    os.makedirs(settings.INSTANCE_PATH, exist_ok=True)
    db.init_app(app, settings)
    init_web(app)
    return app
