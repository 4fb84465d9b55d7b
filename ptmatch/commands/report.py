"""`ptmatch report`: the monthly statistics as one printable HTML file (no external files)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click


def render_report(app, session, now: dt.datetime, period, scope, title: str) -> str:
    """The report page: the dashboard's figures and charts for ``period`` against the one
    before, rendered by the system (``actor`` None: the region suppresses small counts, a
    practice's own report does not)."""
    from flask import render_template

    from ptmatch.web import statistics

    with app.test_request_context("/"):
        board = statistics.build(session, None, now, period, scope)
        return render_template(
            "stats/report.html",
            board=board,
            title=title,
            generated=now,
            places=statistics.places_rows(board.figures),
            urgency=statistics.urgency_rows(board.figures),
        )


def register(main: click.Group) -> None:
    @main.command("report")
    @click.option("--month", required=True, help="The month, YYYY-MM (Berlin time).")
    @click.option("--practice", "slug", help="One practice (its slug); default the region.")
    @click.option(
        "--out",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The HTML file to write.",
    )
    def report(month: str, slug: str | None, out: Path) -> None:
        """Write the monthly statistics report (compared with the month before)."""
        from sqlalchemy import select

        from ptmatch import clock, create_app
        from ptmatch.cli import cli_settings
        from ptmatch.domain.stats import Period, Scope
        from ptmatch.models import Practice

        try:
            period = Period.parse_month(month)
        except ValueError as err:
            raise click.BadParameter(
                "expected YYYY-MM, e.g. 2026-11", param_hint="--month"
            ) from err
        settings = cli_settings()
        app = create_app(settings)
        try:
            with app.extensions["ptmatch_sessions"]() as session:
                if slug:
                    practice = session.scalar(select(Practice).where(Practice.slug == slug))
                    if practice is None:
                        raise click.BadParameter(f"no practice {slug!r}", param_hint="--practice")
                    scope, title = Scope(practice.id), practice.name
                else:
                    scope, title = Scope(), "Region"
                html = render_report(app, session, clock.now(), period, scope, title)
        finally:
            app.extensions["ptmatch_engine"].dispose()
        out.write_text(html, encoding="utf-8")
        click.echo(f"report written to {out}")
