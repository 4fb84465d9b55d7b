"""`ptmatch api-key`: create a practice API key from the command line (as a therapist of the
practice would in Praxis → Schnittstelle). Prints the key once."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    @main.command("api-key")
    @click.option("--practice", "slug", required=True, help="The practice's slug, e.g. sommer")
    @click.option("--name", default="Praxissoftware", show_default=True)
    @click.option(
        "--scope",
        "scopes",
        multiple=True,
        help="Repeat for several; default: all scopes.",
    )
    def api_key(slug: str, name: str, scopes: tuple[str, ...]) -> None:
        """Create an API key for the practice SLUG, on behalf of its first therapist with
        two-factor login, and print it (it is shown only this once)."""
        from sqlalchemy import select

        from ptmatch import clock, default_instance_path
        from ptmatch.config import load_settings
        from ptmatch.db import make_engine, make_session_factory
        from ptmatch.domain import access, api
        from ptmatch.domain.errors import DomainError
        from ptmatch.models import Practice, Therapist, User

        settings = load_settings(default_instance_path())
        engine = make_engine(settings.DATABASE_URL)
        try:
            with make_session_factory(engine, settings)() as session:
                practice = session.scalar(select(Practice).where(Practice.slug == slug))
                if practice is None:
                    raise click.ClickException(f"no practice with the slug {slug!r}")
                actor = next(
                    (
                        user
                        for user in session.scalars(
                            select(User)
                            .join(Therapist, Therapist.user_id == User.id)
                            .where(Therapist.practice_id == practice.id)
                            .order_by(Therapist.id)
                        )
                        if access.api_admin_practice_id(session, user) == practice.id
                    ),
                    None,
                )
                if actor is None:
                    raise click.ClickException(
                        "the practice has no approved therapist with two-factor login"
                    )
                try:
                    _key, raw = api.create_key(
                        session, clock.now(), actor, name, scopes or api.SCOPES
                    )
                except DomainError as err:
                    raise click.ClickException(err.message) from err
                session.commit()
        finally:
            engine.dispose()
        click.echo(raw)
