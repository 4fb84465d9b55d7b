"""Settings: defaults, overridden by instance/settings.py, then by PTMATCH_* environment variables.

Production (PTMATCH_ENV=production) refuses to start with DEBUG on or a default secret.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SECRET = "dev-insecure-change-me"


class ConfigError(RuntimeError):
    """The settings are unsafe or incomplete."""


def default_settings(instance_path: str) -> dict:
    return {
        "ENV": "development",
        "DEBUG": False,
        "TESTING": False,
        "SECRET_KEY": DEFAULT_SECRET,
        "DATABASE_URL": "sqlite:///" + str(Path(instance_path) / "ptmatch.sqlite"),
        "BASE_URL": "http://127.0.0.1:5000",
        "HTTPS": False,
        # Sessions
        "STAFF_IDLE_MINUTES": 30,
        "SESSION_ABSOLUTE_HOURS": 12,
        # Password hashing (argon2id); the defaults are argon2-cffi's (RFC 9106, low memory)
        "ARGON2_TIME_COST": 3,
        "ARGON2_MEMORY_KIB": 65536,
        "ARGON2_PARALLELISM": 4,
        # Login throttling
        "LOCKOUT_FAILURES": 5,
        "LOCKOUT_WINDOW_MINUTES": 15,
        "LOCKOUT_MINUTES": 15,
        # Mail
        "MAIL_FROM": "ptmatch <no-reply@ptmatch.invalid>",
        "SMTP_HOST": "",
        "SMTP_PORT": 25,
        "SMTP_SECURITY": "none",  # none | starttls | tls
        "SMTP_USER": "",
        "SMTP_PASSWORD": "",
        "MAIL_DIR": str(Path(instance_path) / "mail"),
        "SMTP_TIMEOUT": 20,
        "SMTP_CA_FILE": "",
        "OUTBOX_MAX_ATTEMPTS": 8,
        "OUTBOX_BATCH": 20,
        "OUTBOX_PER_RUN": 500,
        "OUTBOX_CLAIM_TIMEOUT_SECONDS": 600,
        "OUTBOX_BACKOFF_SECONDS": 60,
        "OUTBOX_BACKOFF_MAX_SECONDS": 6 * 3600,
        # Scheduler
        "SCHEDULER_LOCK_FILE": str(Path(instance_path) / "scheduler.lock"),
        "SWEEP_SECONDS": 30,
        "REMINDER_SECONDS": 60,
        "OUTBOX_SECONDS": 5,
        # Patients
        "CHECKIN_DAYS": 30,
        "CHECKIN_ANSWER_DAYS": 14,
        "PURGE_AFTER_PAUSED_DAYS": 180,
        "REMINDER_HOURS": 24,
        "GROUP_DECISION_HOURS": 48,
        "TIMEZONE": "Europe/Berlin",
        "BABEL_DEFAULT_LOCALE": "de",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Berlin",
        "LANGUAGES": ["de", "en"],
    }


_BOOL = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False, "": False}


def _coerce(current, raw: str):
    if isinstance(current, bool):
        return _BOOL.get(raw.strip().lower(), False)
    if isinstance(current, int):
        return int(raw)
    return raw


def load_settings(instance_path: str, overrides: dict | None = None) -> dict:
    """Build the settings dict: defaults < instance/settings.py < environment < overrides."""
    settings = default_settings(instance_path)
    settings_file = Path(instance_path) / "settings.py"
    if settings_file.exists():
        namespace: dict = {}
        exec(compile(settings_file.read_text(), str(settings_file), "exec"), namespace)
        settings.update({k: v for k, v in namespace.items() if k.isupper()})
    for key, current in list(settings.items()):
        env_value = os.environ.get("PTMATCH_" + key)
        if env_value is not None:
            settings[key] = _coerce(current, env_value)
    if overrides:
        settings.update(overrides)
    check_settings(settings)
    return settings


def apply_process_settings(settings: dict) -> None:
    """Settings that shape process-wide helpers (the password hasher)."""
    from ptmatch.domain import passwords

    passwords.set_parameters(time_cost=settings["ARGON2_TIME_COST"], memory_kib=settings["ARGON2_MEMORY_KIB"],
                             parallelism=settings["ARGON2_PARALLELISM"])


def check_settings(settings: dict) -> None:
    """Refuse unsafe production settings."""
    if settings.get("ENV") == "production":
        if settings.get("DEBUG"):
            raise ConfigError("Refusing to start: DEBUG is on in production.")
        secret = settings.get("SECRET_KEY") or ""
        if secret == DEFAULT_SECRET or len(secret) < 32:
            raise ConfigError("Refusing to start: set a random SECRET_KEY (32+ chars) in production.")
