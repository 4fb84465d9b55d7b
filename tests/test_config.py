"""Settings: one frozen, typed object; production refuses unsafe configuration; instance file
and environment override the defaults; unknown names are reported with the nearest known one."""

import dataclasses
import logging

import pytest

from ptmatch.config import DEFAULT_SECRET, DEFAULT_WAVE_RULES, ConfigError, Settings, load_settings

GOOD_SECRET = "Zq3v_8RkLw-2mN7pXc4TjH9sYb6FgD1aUe5oKi0"


def test_production_refuses_debug(tmp_path):
    with pytest.raises(ConfigError):
        load_settings(str(tmp_path), {"ENV": "production", "DEBUG": True, "SECRET_KEY": "x" * 40})


def test_production_refuses_default_or_short_secret(tmp_path):
    for secret in (DEFAULT_SECRET, "short"):
        with pytest.raises(ConfigError):
            load_settings(str(tmp_path), {"ENV": "production", "SECRET_KEY": secret})


def test_production_accepts_safe_settings(tmp_path):
    s = load_settings(str(tmp_path), {"ENV": "production", "SECRET_KEY": GOOD_SECRET})
    assert s.ENV == "production" and not s.DEBUG


def test_environment_and_instance_file(tmp_path, monkeypatch):
    (tmp_path / "settings.py").write_text(
        'BASE_URL = "https://from-file.example"\nLOCKOUT_FAILURES = 7\n'
    )
    monkeypatch.setenv("PTMATCH_DATABASE_URL", "sqlite:///x.sqlite")
    monkeypatch.setenv("PTMATCH_HTTPS", "1")
    s = load_settings(str(tmp_path))
    assert s.BASE_URL == "https://from-file.example" and s.LOCKOUT_FAILURES == 7
    assert s.DATABASE_URL == "sqlite:///x.sqlite" and s.HTTPS is True


def test_default_paths_are_in_the_instance_folder(tmp_path):
    s = load_settings(str(tmp_path), environ={})
    assert s.DATABASE_URL == f"sqlite:///{tmp_path}/ptmatch.sqlite"
    assert s.MAIL_DIR == str(tmp_path / "mail") and s.SCHEDULER_LOCK_FILE == str(
        tmp_path / "scheduler.lock"
    )
    assert s.INSTANCE_PATH == str(tmp_path)


def test_settings_are_frozen(tmp_path):
    s = load_settings(str(tmp_path), environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.SMTP_HOST = "elsewhere"  # type: ignore[misc]
    assert dataclasses.replace(s, SMTP_HOST="elsewhere").SMTP_HOST == "elsewhere"
    assert s.SMTP_HOST == ""


def test_every_setting_reaches_the_flask_config(tmp_path):
    s = load_settings(str(tmp_path), {"REMINDER_HOURS": 30}, environ={})
    config = s.as_config()
    assert config["REMINDER_HOURS"] == 30
    assert set(config) == {f.name for f in dataclasses.fields(Settings)}


def test_environment_values_are_typed(tmp_path):
    s = load_settings(
        str(tmp_path),
        environ={
            "PTMATCH_SMTP_PORT": "587",
            "PTMATCH_DEBUG": "off",
            "PTMATCH_LANGUAGES": "de, en",
            "PTMATCH_WAVE_RULES": "[[48, 3, 120], [null, 1, 600]]",
        },
    )
    assert s.SMTP_PORT == 587 and s.DEBUG is False and s.LANGUAGES == ("de", "en")
    assert s.WAVE_RULES == ((48, 3, 120), (None, 1, 600))


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("PTMATCH_SMTP_PORT", "twenty-five"),
        ("PTMATCH_HTTPS", "maybe"),
        ("PTMATCH_WAVE_RULES", "[[1, 2]]"),
        ("PTMATCH_WAVE_RULES", "not json"),
        ("PTMATCH_SMTP_SECURITY", "ssl3"),
        ("PTMATCH_OUTBOX_BATCH", "-1"),
    ],
)
def test_bad_environment_values_refuse_to_start(tmp_path, name, raw):
    with pytest.raises(ConfigError, match=name.removeprefix("PTMATCH_")):
        load_settings(str(tmp_path), environ={name: raw})


def test_wrong_types_are_refused_wherever_they_come_from(tmp_path):
    (tmp_path / "settings.py").write_text('SMTP_PORT = "587"\n')
    with pytest.raises(ConfigError, match="SMTP_PORT"):
        load_settings(str(tmp_path), environ={})
    with pytest.raises(ConfigError, match="REMINDER_HOURS"):
        Settings(REMINDER_HOURS="24")  # type: ignore[arg-type]


def test_unknown_environment_name_warns_with_the_nearest_known_one(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="ptmatch.config"):
        s = load_settings(
            str(tmp_path),
            environ={
                "PTMATCH_SMTP_HSOT": "mail.example",
                "PTMATCH_TEST_DATABASE_URL": "sqlite://",
                "PTMATCH_INSTANCE_PATH": str(tmp_path),
            },
        )
    assert s.SMTP_HOST == ""
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert "PTMATCH_SMTP_HSOT" in warnings[0] and "PTMATCH_SMTP_HOST" in warnings[0]


def test_unknown_name_in_the_instance_file_warns(tmp_path, caplog):
    (tmp_path / "settings.py").write_text("REMINDER_HOUR = 12\n")
    with caplog.at_level(logging.WARNING, logger="ptmatch.config"):
        s = load_settings(str(tmp_path), environ={})
    assert s.REMINDER_HOURS == 24
    assert any(
        "REMINDER_HOUR " in r.getMessage() and "REMINDER_HOURS?" in r.getMessage()
        for r in caplog.records
    )


def test_unknown_override_is_a_programming_error(tmp_path):
    with pytest.raises(ConfigError, match="did you mean REMINDER_HOURS"):
        load_settings(str(tmp_path), {"REMINDER_HOUR": 12}, environ={})


def test_wave_rules_default_and_instance_file(tmp_path):
    assert load_settings(str(tmp_path), environ={}).WAVE_RULES == DEFAULT_WAVE_RULES
    (tmp_path / "settings.py").write_text("WAVE_RULES = [[12, 6, 30], [None, 2, 600]]\n")
    assert load_settings(str(tmp_path), environ={}).WAVE_RULES == ((12, 6, 30), (None, 2, 600))
