"""Issue 16: the production guard can't be mistyped. ENV is exactly development or production;
outside development a default, short or low-entropy secret and DEBUG refuse to start; the dev
mailbox exists only in development; demo-data refuses outside development."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from ptmatch import create_app
from ptmatch.config import DEFAULT_SECRET, ConfigError, load_settings

GOOD_SECRET = "Zq3v_8RkLw-2mN7pXc4TjH9sYb6FgD1aUe5oKi0"
TYPOS = [
    "prod",
    "Production",
    "production ",
    " production",
    "PRODUCTION",
    "dev",
    "Development",
    "development ",
    "staging",
    "test",
    "",
]


@pytest.mark.parametrize("env", TYPOS)
def test_each_env_typo_refuses_to_start(tmp_path, env):
    environ = {"PTMATCH_ENV": env, "PTMATCH_SECRET_KEY": GOOD_SECRET}
    with pytest.raises(ConfigError, match="ENV="):
        load_settings(str(tmp_path), environ=environ)
    with pytest.raises(ConfigError, match="ENV="):
        create_app({"INSTANCE_PATH": str(tmp_path), "ENV": env, "SECRET_KEY": GOOD_SECRET})


@pytest.mark.parametrize("env", ["development", "production"])
def test_the_two_exact_names_start(tmp_path, env):
    s = load_settings(
        str(tmp_path), environ={"PTMATCH_ENV": env, "PTMATCH_SECRET_KEY": GOOD_SECRET}
    )
    assert s.ENV == env


@pytest.mark.parametrize(
    "secret",
    [
        DEFAULT_SECRET,
        "",
        "short-but-random-Xy7",
        "k" * 48,
        "passwordpasswordpasswordpassword",
        "abababababababababababababababababab",
    ],
)
def test_production_refuses_default_short_or_low_entropy_secret(tmp_path, secret):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings(
            str(tmp_path), environ={"PTMATCH_ENV": "production", "PTMATCH_SECRET_KEY": secret}
        )


def test_generated_secrets_are_accepted(tmp_path):
    import secrets

    for secret in (secrets.token_urlsafe(48), secrets.token_hex(16), secrets.token_hex()):
        environ = {"PTMATCH_ENV": "production", "PTMATCH_SECRET_KEY": secret}
        assert load_settings(str(tmp_path), environ=environ).SECRET_KEY == secret


def test_production_refuses_debug_from_the_environment(tmp_path):
    environ = {"PTMATCH_ENV": "production", "PTMATCH_SECRET_KEY": GOOD_SECRET, "PTMATCH_DEBUG": "1"}
    with pytest.raises(ConfigError, match="DEBUG"):
        load_settings(str(tmp_path), environ=environ)


def test_dev_mail_is_registered_only_in_development(settings, engine):
    dev = create_app(dataclasses.replace(settings, DEBUG=True))
    assert "dev.mailbox" in dev.view_functions or any(
        r.rule.startswith("/dev/") for r in dev.url_map.iter_rules()
    )
    prod = create_app(dataclasses.replace(settings, ENV="production", SECRET_KEY=GOOD_SECRET))
    assert not [r.rule for r in prod.url_map.iter_rules() if r.rule.startswith("/dev")]
    assert prod.test_client().get("/dev/mail/1").status_code == 404
    for app in (dev, prod):
        app.extensions["ptmatch_engine"].dispose()


def test_demo_data_refuses_outside_development(tmp_path, monkeypatch):
    from ptmatch.cli import main

    db_file = tmp_path / "demo.sqlite"
    monkeypatch.setenv("PTMATCH_INSTANCE_PATH", str(tmp_path))
    env = {
        "PTMATCH_ENV": "production",
        "PTMATCH_SECRET_KEY": GOOD_SECRET,
        "PTMATCH_DATABASE_URL": f"sqlite:///{db_file}",
    }
    result = CliRunner().invoke(main, ["demo-data"], env=env)
    assert result.exit_code != 0
    assert "development" in result.output
    assert not db_file.exists()
