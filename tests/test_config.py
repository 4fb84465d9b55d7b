"""Settings: production refuses unsafe configuration; environment overrides."""

import pytest

from ptmatch.config import DEFAULT_SECRET, ConfigError, load_settings


def test_production_refuses_debug(tmp_path):
    with pytest.raises(ConfigError):
        load_settings(str(tmp_path), {"ENV": "production", "DEBUG": True, "SECRET_KEY": "x" * 40})


def test_production_refuses_default_or_short_secret(tmp_path):
    for secret in (DEFAULT_SECRET, "short"):
        with pytest.raises(ConfigError):
            load_settings(str(tmp_path), {"ENV": "production", "SECRET_KEY": secret})


def test_production_accepts_safe_settings(tmp_path):
    s = load_settings(str(tmp_path), {"ENV": "production", "SECRET_KEY": "k" * 48})
    assert s["ENV"] == "production" and not s["DEBUG"]


def test_environment_and_instance_file(tmp_path, monkeypatch):
    (tmp_path / "settings.py").write_text('BASE_URL = "https://from-file.example"\nLOCKOUT_FAILURES = 7\n')
    monkeypatch.setenv("PTMATCH_DATABASE_URL", "sqlite:///x.sqlite")
    monkeypatch.setenv("PTMATCH_HTTPS", "1")
    s = load_settings(str(tmp_path))
    assert s["BASE_URL"] == "https://from-file.example" and s["LOCKOUT_FAILURES"] == 7
    assert s["DATABASE_URL"] == "sqlite:///x.sqlite" and s["HTTPS"] is True


def test_default_database_is_sqlite_in_instance(tmp_path):
    assert load_settings(str(tmp_path))["DATABASE_URL"] == f"sqlite:///{tmp_path}/ptmatch.sqlite"
