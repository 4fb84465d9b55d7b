"""`ptmatch import-postcodes FILE`: load a GeoNames postal-code file (replaces the table)."""

from __future__ import annotations

import time

import click


def register(main: click.Group) -> None:
    @main.command("import-postcodes")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option(
        "--fill-coordinates/--no-fill-coordinates",
        default=True,
        help="Give practices and patients without coordinates those of their postcode.",
    )
    def import_postcodes(path: str, fill_coordinates: bool) -> None:
        """Replace the postcode table with the rows of PATH (GeoNames format, tab separated)."""
        from ptmatch import default_instance_path
        from ptmatch.config import load_settings
        from ptmatch.db import make_engine, make_session_factory
        from ptmatch.domain import geo

        settings = load_settings(default_instance_path())
        engine = make_engine(settings.DATABASE_URL)
        started = time.monotonic()
        try:
            with make_session_factory(engine, settings)() as session:
                with click.progressbar(length=geo.count_lines(path), label="postcodes") as bar:
                    count = geo.import_postcodes(session, path, progress=bar.update)
                filled = geo.fill_missing_coordinates(session) if fill_coordinates else 0
                session.commit()
        finally:
            engine.dispose()
        click.echo(
            f"imported {count} postcodes in {time.monotonic() - started:.1f} s"
            + (f"; coordinates filled for {filled} practices/patients" if filled else "")
        )
