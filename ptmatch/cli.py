"""The `ptmatch` command line."""

from __future__ import annotations

import sys

import click

from ptmatch import default_instance_path
from ptmatch.config import Settings, load_settings
from ptmatch.domain.passwords import use_settings as apply_process_settings


def cli_settings() -> Settings:
    settings = load_settings(default_instance_path())
    apply_process_settings(settings)
    return settings


def cli_sessions(settings: Settings):
    from ptmatch.db import make_engine, make_session_factory

    engine = make_engine(settings.DATABASE_URL)
    return engine, make_session_factory(engine, settings)


@click.group()
def main() -> None:
    """ptmatch: waitlist matching for psychotherapy practices."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database to the newest schema (or REVISION)."""
    from ptmatch.migrate import upgrade

    settings = cli_settings()
    upgrade(settings.DATABASE_URL, revision)
    click.echo("database is at " + revision)


@main.command("init-db")
def init_db() -> None:
    """Alias of `db upgrade`."""
    from ptmatch.migrate import upgrade

    upgrade(cli_settings().DATABASE_URL)
    click.echo("database is at head")


@main.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--name", default="Admin")
@click.password_option()
def create_admin(email: str, name: str, password: str) -> None:
    """Create an admin account (2FA is set up at first login)."""
    from ptmatch import clock
    from ptmatch.domain import accounts
    from ptmatch.domain.errors import InvalidInput
    from ptmatch.models import Role

    engine, sessions = cli_sessions(cli_settings())
    with sessions() as session:
        try:
            accounts.create_user(
                session,
                clock.now(),
                email=email,
                password=password,
                role=Role.ADMIN,
                display_name=name,
            )
        except InvalidInput as err:
            raise click.ClickException(str(err)) from err
        session.commit()
    click.echo("admin created; set up two-factor login at the first sign-in")


@main.command("demo-data")
@click.option("--if-empty", is_flag=True, help="Only load when the database has no users yet.")
def demo_data(if_empty: bool) -> None:
    """Load a small demo network and print its logins."""
    from ptmatch import clock, demo

    settings = cli_settings()
    if settings.ENV != "development":
        # The demo admin's password and TOTP secret are published: never outside development.
        raise click.ClickException(
            f"demo-data refuses to run with ENV={settings.ENV}: it creates accounts whose "
            "passwords are public. Only in development."
        )
    engine, sessions = cli_sessions(settings)
    with sessions() as session:
        if if_empty and demo.has_users(session):
            click.echo("database already has users; demo data not loaded")
            return
        demo.load(session, clock.now())
        session.commit()
    click.echo(demo.logins_text())


@main.command("demo-logins")
def demo_logins() -> None:
    """Print the demo logins again, with the current TOTP codes."""
    from ptmatch import demo

    click.echo(demo.logins_text(with_codes=True))


@main.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def serve(host: str, port: int) -> None:
    """Development web server (use gunicorn with wsgi:app in production)."""
    from werkzeug.serving import run_simple

    from ptmatch import create_app

    run_simple(host, port, create_app(), use_reloader=False, threaded=True)


def _register_optional_commands() -> None:
    """Areas add their commands in ptmatch/commands/*.py (each defines `register(main)`)."""
    import importlib
    import pkgutil

    import ptmatch.commands as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"ptmatch.commands.{info.name}")
        module.register(main)


_register_optional_commands()

if __name__ == "__main__":
    sys.exit(main())
