"""Settings: one frozen, typed object, built once at the edge (`create_app`, the scheduler, the
CLI) from the defaults below, then instance/settings.py, then PTMATCH_* environment variables,
then the caller's overrides — and validated there. The edge passes it inward; nothing reads
settings from a module-level variable.

Adding a setting is one line: a field of `Settings` with its type, default and a comment. The
field name is the key in instance/settings.py, the environment name without PTMATCH_ and the
key in Flask's `app.config` (which keeps a copy for Flask and its extensions).

ENV is exactly "development" or "production"; anything else (`prod`, `Production`,
"production ") refuses to start. Outside development the app refuses DEBUG on and a default,
short or low-entropy SECRET_KEY.
"""

import base64
import dataclasses
import difflib
import json
import logging
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SECRET = "dev-insecure-change-me"
ENVIRONMENTS = ("development", "production")
# A SECRET_KEY outside development: at least this long, this many distinct characters and
# this many bits by a per-character Shannon estimate
# (token_urlsafe(48) scores ~330, token_hex(16) ~110).
SECRET_MIN_LENGTH = 32
SECRET_MIN_DISTINCT = 10
SECRET_MIN_BITS = 96
ENV_PREFIX = "PTMATCH_"
# PTMATCH_* names that are not settings: read elsewhere, never warned about.
OTHER_ENV_NAMES = frozenset({"PTMATCH_INSTANCE_PATH", "PTMATCH_TEST_DATABASE_URL"})
SMTP_SECURITIES = ("none", "starttls", "tls")
SMS_SENDERS = ("none", "file", "http")

# Waves of offers: (lead time below this many hours | None = any, wave size, minutes to answer).
# The closer the slot, the more people at once and the shorter the deadline.
WaveRule = tuple[int | float | None, int, int]
DEFAULT_WAVE_RULES: tuple[WaveRule, ...] = (
    (24, 5, 60),
    (72, 4, 240),
    (168, 3, 720),
    (None, 2, 1440),
)

log = logging.getLogger("ptmatch.config")


class ConfigError(RuntimeError):
    """The settings are unsafe or incomplete."""


@dataclass(frozen=True)
class Settings:
    ENV: str = "development"  # exactly "development" or "production"
    DEBUG: bool = False
    TESTING: bool = False
    SECRET_KEY: str = DEFAULT_SECRET
    INSTANCE_PATH: str = ""  # set by load_settings; the folder of settings.py, the database, mails
    DATABASE_URL: str = ""  # "" = SQLite in the instance folder
    BASE_URL: str = "http://127.0.0.1:5000"  # mails and feeds link here, never to a request's Host
    HTTPS: bool = False
    # Sessions
    STAFF_IDLE_MINUTES: int = 30
    SESSION_ABSOLUTE_HOURS: int = 12
    # Login throttling
    # Password hashing (argon2id); the defaults are argon2-cffi's (RFC 9106, low memory)
    ARGON2_TIME_COST: int = 3
    ARGON2_MEMORY_KIB: int = 65536
    ARGON2_PARALLELISM: int = 4
    # Account lockout (all clients together): this many failed passwords or second-factor
    # codes within the window lock the account for LOCKOUT_MINUTES; a reset mail unlocks it.
    LOCKOUT_FAILURES: int = 20
    LOCKOUT_WINDOW_MINUTES: int = 15
    LOCKOUT_MINUTES: int = 15
    # --- Issue 16: throttles and rate limits (docs/deploying.md, "Limits") ---
    # Wrong second-factor codes per pending login; then the password is asked again.
    TOTP_ATTEMPTS: int = 5
    # Exponential delay per (login name, client address) and per client address: after the
    # free failures, the next attempt waits BASE * 2^(extra failures), at most MAX seconds.
    THROTTLE_PAIR_FREE_FAILURES: int = 5
    THROTTLE_CLIENT_FREE_FAILURES: int = 20
    THROTTLE_BASE_SECONDS: int = 15
    THROTTLE_MAX_SECONDS: int = 900
    THROTTLE_FORGET_HOURS: int = 24  # failures older than this are forgotten
    # Requests per client address and RATE_LIMIT_WINDOW_SECONDS (0 = no limit for that kind).
    RATE_LIMITS_ENABLED: bool = True
    RATE_LIMIT_WINDOW_SECONDS: int = 60
    RATE_LIMIT_REGISTER: int = 20  # registration forms sent
    RATE_LIMIT_LOGIN: int = 30  # password and second-factor forms sent
    RATE_LIMIT_RESET: int = 10  # reset requests and set-password forms sent
    RATE_LIMIT_LISTS: int = 30  # waitlist joins and leaves
    RATE_LIMIT_TOKEN_PAGES: int = 60  # offer, group-offer, verify and check-in link pages
    RATE_LIMIT_API: int = 120  # API calls per key; failed API logins count as logins
    # Behind a reverse proxy: how many proxies to trust for X-Forwarded-For (0 = none; the
    # client address is then the TCP peer). Rate limits and throttles key on this address.
    TRUSTED_PROXIES: int = 0
    # Mail
    MAIL_FROM: str = "ptmatch <no-reply@ptmatch.invalid>"
    SMTP_HOST: str = ""  # "" = write .eml files to MAIL_DIR instead of sending
    SMTP_PORT: int = 25
    SMTP_SECURITY: str = "none"  # none | starttls | tls
    SMTP_USER: str = ""
    SMTP_PASSWORD: str = ""
    MAIL_DIR: str = ""  # "" = instance/mail
    SMTP_TIMEOUT: int = 20
    SMTP_CA_FILE: str = ""
    # SMS to patients who chose it (offers, reminders, check-ins; a generic line and a link):
    # "none" = off (the choice is not offered), "file" = one .txt per SMS under SMS_DIR
    # (development), "http" = POST JSON {"to", "text", "id"} to SMS_GATEWAY_URL with
    # "Authorization: Bearer SMS_GATEWAY_TOKEN"
    SMS_SENDER: str = "none"
    SMS_DIR: str = ""  # "" = instance/sms
    SMS_GATEWAY_URL: str = ""
    SMS_GATEWAY_TOKEN: str = ""
    SMS_TIMEOUT: int = 10  # seconds per gateway request
    OUTBOX_MAX_ATTEMPTS: int = 8
    OUTBOX_BATCH: int = 20  # rows per claim
    OUTBOX_PER_RUN: int = 500  # rows per job run at most
    # The claim lease: a SENDING row whose claim is older than this is reclaimed by another
    # sender. The sender renews it every third of the lease while a batch is sending, so a
    # killed sender's mails move on within a minute. Keep it above 2 x SMTP_TIMEOUT.
    OUTBOX_CLAIM_TIMEOUT_SECONDS: int = 60
    OUTBOX_BACKOFF_SECONDS: int = 60  # first retry delay; doubles per attempt
    OUTBOX_BACKOFF_MAX_SECONDS: int = 6 * 3600
    # Scheduler
    SCHEDULER_LOCK_FILE: str = ""  # "" = instance/scheduler.lock
    # The active scheduler checks this often that its lock is still its own; on loss its jobs
    # stop at once and it stands by again.
    SCHEDULER_LOCK_CHECK_SECONDS: int = 3
    SWEEP_SECONDS: int = 30
    REMINDER_SECONDS: int = 60
    # The outbox sender: on PostgreSQL it wakes on NOTIFY at every commit that enqueued a
    # mail and polls every OUTBOX_SECONDS besides (the fallback for a lost notification);
    # SQLite has no NOTIFY, so the sender polls every OUTBOX_SQLITE_SECONDS.
    OUTBOX_SECONDS: int = 5
    OUTBOX_SQLITE_SECONDS: int = 1
    # On the 1st of a month, mail every admin a link to last month's region statistics
    # (a link only, no figure in the mail); the job looks hourly, the dedupe key sends once.
    STATS_REPORT_MAIL: bool = True
    # Operations: heartbeat, readiness, metrics, logs, backups (docs/deploying.md)
    HEARTBEAT_SECONDS: int = 5  # the active scheduler writes its heartbeat row this often
    HEARTBEAT_STALE_SECONDS: int = 60  # /readyz fails when the heartbeat is older than this
    METRICS_TOKEN: str = ""  # /metrics: loopback only, or "Authorization: Bearer <this>" (16+)
    LOG_JSON: bool = False  # one JSON line per request and per job run (no personal data)
    BACKUP_DIR: str = ""  # "" = no nightly backup; else the scheduler backs up here each night
    BACKUP_HOUR: int = 2  # the nightly backup runs after this hour (TIMEZONE), once a day
    BACKUP_KEY: str = ""  # Fernet key (44 chars, base64): "" = backups are not encrypted
    BACKUP_KEEP_DAILY: int = 7  # retention: the newest backup of each of the last N days ...
    BACKUP_KEEP_WEEKLY: int = 4  # ... and of each of the last M ISO weeks before those
    # Offers: a practice's own wave rules (Practice.wave_rules) win over these
    WAVE_RULES: tuple[WaveRule, ...] = DEFAULT_WAVE_RULES
    # A phone-only patient's offer (the secretariat calls) stays open this many times as long
    # (never past the slot's offer deadline)
    PHONE_ANSWER_FACTOR: int = 3
    # How long before a booked appointment the secretariat should have phoned the reminder
    REMINDER_CALL_HOURS: int = 4
    # Patients
    CHECKIN_DAYS: int = 30
    CHECKIN_ANSWER_DAYS: int = 14
    PURGE_AFTER_PAUSED_DAYS: int = 180
    REMINDER_HOURS: int = 24
    # A patient may reactivate themselves this many days after an appointment the practice
    # never marked (attended / no-show)
    UNMARKED_REACTIVATE_DAYS: int = 7
    # No-show policy: after this many appointments marked "not attended" the search pauses
    # (with a mail that says why); 0 = off
    NO_SHOW_PAUSE_AFTER: int = 2
    GROUP_DECISION_HOURS: int = 48
    # Practice API (/api/v1) and webhooks
    API_IDEMPOTENCY_HOURS: int = 24  # how long an Idempotency-Key's answer is kept
    WEBHOOK_SECONDS: int = 10  # how often the scheduler sends due webhook deliveries
    WEBHOOK_TIMEOUT: int = 10  # seconds per delivery attempt
    WEBHOOK_MAX_ATTEMPTS: int = 8  # then the delivery is dead (re-sendable in the settings)
    WEBHOOK_BACKOFF_SECONDS: int = 30  # first retry delay; doubles per attempt, capped at 6 h
    TIMEZONE: str = "Europe/Berlin"
    BABEL_DEFAULT_LOCALE: str = "de"
    BABEL_DEFAULT_TIMEZONE: str = "Europe/Berlin"
    LANGUAGES: tuple[str, ...] = ("de", "en")
    # The key of the pool pseudonyms (an HMAC of the patient id); "" = SECRET_KEY
    PSEUDONYM_SECRET: str = ""
    # A practice sees a patient's identity through a booking or group place while the
    # appointment is ahead and this many days after it (a group: after its last session);
    # then only the pseudonym. Patients on the practice's own list are always named.
    IDENTITY_ACCESS_DAYS: int = 90

    def __post_init__(self) -> None:
        check_settings(self)

    @property
    def mail_domain(self) -> str:
        """The domain of MAIL_FROM (for Message-IDs)."""
        addr = self.MAIL_FROM.rsplit("@", 1)
        return addr[1].strip(" >") if len(addr) == 2 else "ptmatch.invalid"

    def as_config(self) -> dict:
        """The settings as Flask config keys (app.config keeps a copy for Flask's extensions)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


_TYPES = typing.get_type_hints(Settings)
NAMES = tuple(f.name for f in dataclasses.fields(Settings))
# Fixed by the caller of load_settings, not by settings.py or the environment.
_FROM_CALLER = {"INSTANCE_PATH"}
_BOOL = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
    "": False,
}


def valid_wave_rules(rules) -> bool:
    """Rows of (max lead hours or None, wave size 1..50, minutes to answer 5..10080)."""
    try:
        for max_hours, size, ttl in rules:
            if max_hours is not None and not (isinstance(max_hours, int | float) and max_hours > 0):
                return False
            if not (
                isinstance(size, int)
                and 1 <= size <= 50
                and isinstance(ttl, int)
                and 5 <= ttl <= 10080
            ):
                return False
    except (TypeError, ValueError):
        return False
    return bool(rules)


def _is_type(value, kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    return isinstance(value, typing.get_origin(kind) or kind)


def _is_fernet_key(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32 and len(key) == 44
    except (ValueError, UnicodeEncodeError):
        return False


def check_settings(settings: Settings) -> None:
    """Refuse settings of the wrong type, out of range, or unsafe in production."""
    for name in NAMES:
        value, kind = getattr(settings, name), _TYPES[name]
        if not _is_type(value, kind):
            raise ConfigError(
                f"Setting {name}: expected {getattr(kind, '__name__', kind)}, got {value!r}."
            )
        if kind is int and value < 0:
            raise ConfigError(f"Setting {name}: must not be negative.")
    if settings.SMS_SENDER not in SMS_SENDERS:
        raise ConfigError(f"Setting SMS_SENDER: one of {', '.join(SMS_SENDERS)}.")
    if settings.SMS_SENDER == "http" and not settings.SMS_GATEWAY_URL.startswith(
        ("https://", "http://")
    ):
        raise ConfigError("Setting SMS_GATEWAY_URL: the gateway's http(s) URL (SMS_SENDER=http).")
    if settings.SMTP_SECURITY.lower() not in SMTP_SECURITIES:
        raise ConfigError(f"Setting SMTP_SECURITY: one of {', '.join(SMTP_SECURITIES)}.")
    if not 0 < settings.SMTP_PORT < 65536:
        raise ConfigError("Setting SMTP_PORT: a port number (1-65535).")
    if settings.SCHEDULER_LOCK_CHECK_SECONDS < 1:
        raise ConfigError("Setting SCHEDULER_LOCK_CHECK_SECONDS: at least 1.")
    if not valid_wave_rules(settings.WAVE_RULES):
        raise ConfigError(
            "Setting WAVE_RULES: rows of (max lead hours or None, wave size 1-50, "
            "minutes to answer 5-10080)."
        )
    if settings.RATE_LIMIT_WINDOW_SECONDS < 1 or settings.THROTTLE_BASE_SECONDS < 1:
        raise ConfigError("Settings RATE_LIMIT_WINDOW_SECONDS, THROTTLE_BASE_SECONDS: at least 1.")
    if settings.PHONE_ANSWER_FACTOR < 1:
        raise ConfigError("Setting PHONE_ANSWER_FACTOR: at least 1.")
    if settings.METRICS_TOKEN and len(settings.METRICS_TOKEN) < 16:
        raise ConfigError("Setting METRICS_TOKEN: at least 16 characters (or empty).")
    if settings.BACKUP_KEY and not _is_fernet_key(settings.BACKUP_KEY):
        raise ConfigError(
            "Setting BACKUP_KEY: a Fernet key (44 characters of url-safe base64, e.g. from "
            "`ptmatch backup-key`)."
        )
    if settings.HEARTBEAT_SECONDS < 1:
        raise ConfigError("Setting HEARTBEAT_SECONDS: at least 1.")
    if settings.BACKUP_HOUR > 23:
        raise ConfigError("Setting BACKUP_HOUR: an hour 0-23.")
    if settings.ENV not in ENVIRONMENTS:
        raise ConfigError(
            f"Refusing to start: ENV={settings.ENV!r}; it must be exactly "
            + " or ".join(repr(e) for e in ENVIRONMENTS)
            + "."
        )
    if settings.ENV != "development":
        if settings.DEBUG:
            raise ConfigError(f"Refusing to start: DEBUG is on in {settings.ENV}.")
        problem = secret_problem(settings.SECRET_KEY)
        if problem:
            raise ConfigError(
                f"Refusing to start: SECRET_KEY {problem}. Set a random one, for example "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'."
            )


def secret_problem(secret: str) -> str | None:
    """Why `secret` is unfit outside development (default, short, low entropy), or None."""
    if not secret or secret == DEFAULT_SECRET:
        return "is the public default"
    if len(secret) < SECRET_MIN_LENGTH:
        return f"is shorter than {SECRET_MIN_LENGTH} characters"
    counts = [secret.count(c) for c in set(secret)]
    bits = -sum(n * math.log2(n / len(secret)) for n in counts)
    if len(counts) < SECRET_MIN_DISTINCT or bits < SECRET_MIN_BITS:
        return "has too little entropy (repeated or too few distinct characters)"
    return None


def _nearest(name: str, known) -> str:
    return (difflib.get_close_matches(name, known, n=1, cutoff=0.0) or ["?"])[0]


def _tupled(value):
    """Lists (from settings.py or JSON) become tuples, so the settings stay immutable."""
    if isinstance(value, list | tuple):
        return tuple(_tupled(v) for v in value)
    return value


def _from_env(name: str, raw: str):
    kind = _TYPES[name]
    try:
        if kind is bool:
            return _BOOL[raw.strip().lower()]
        if kind is int:
            return int(raw)
        if kind is str:
            return raw
        if name == "LANGUAGES":
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return _tupled(json.loads(raw))
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"{ENV_PREFIX}{name}={raw!r}: not a valid {getattr(kind, '__name__', kind)}."
        ) from exc


def _settings_file(path: Path) -> dict:
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    values = {}
    for name, value in namespace.items():
        if not name.isupper():
            continue
        if name in NAMES and name not in _FROM_CALLER:
            values[name] = _tupled(value)
        else:
            log.warning(
                "%s: unknown setting %s ignored (did you mean %s?)",
                path,
                name,
                _nearest(name, NAMES),
            )
    return values


def _environment(environ: Mapping[str, str]) -> dict:
    values = {}
    known_env = [ENV_PREFIX + n for n in NAMES if n not in _FROM_CALLER] + sorted(OTHER_ENV_NAMES)
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX) or key in OTHER_ENV_NAMES:
            continue
        name = key[len(ENV_PREFIX) :]
        if name in NAMES and name not in _FROM_CALLER:
            values[name] = _from_env(name, environ[key])
        else:
            log.warning(
                "unknown environment variable %s ignored (did you mean %s?)",
                key,
                _nearest(key, known_env),
            )
    return values


def load_settings(
    instance_path: str,
    overrides: Mapping | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings: defaults < instance/settings.py < PTMATCH_* environment < overrides.

    Unknown names in settings.py or the environment are ignored with a warning that names
    the nearest known one; unknown override keys are a programming error (ConfigError).
    """
    values: dict = {}
    settings_file = Path(instance_path) / "settings.py"
    if settings_file.exists():
        values.update(_settings_file(settings_file))
    values.update(_environment(os.environ if environ is None else environ))
    unknown = sorted(set(overrides or ()) - set(NAMES))
    if unknown:
        raise ConfigError(
            f"Unknown setting {unknown[0]} (did you mean {_nearest(unknown[0], NAMES)}?)."
        )
    values.update({k: _tupled(v) for k, v in (overrides or {}).items()})
    values["INSTANCE_PATH"] = instance = str(values.get("INSTANCE_PATH") or instance_path)
    # Defaults that live in the instance folder.
    values["DATABASE_URL"] = values.get("DATABASE_URL") or "sqlite:///" + str(
        Path(instance) / "ptmatch.sqlite"
    )
    values["MAIL_DIR"] = values.get("MAIL_DIR") or str(Path(instance) / "mail")
    values["SMS_DIR"] = values.get("SMS_DIR") or str(Path(instance) / "sms")
    values["SCHEDULER_LOCK_FILE"] = values.get("SCHEDULER_LOCK_FILE") or str(
        Path(instance) / "scheduler.lock"
    )
    return Settings(**values)
