"""`ptmatch bench`: generate a synthetic region and measure the figures of issue 9."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click


def _sizes(value: str | None) -> list[int] | None:
    if not value:
        return None
    sizes = []
    for part in value.split(","):
        part = part.strip().lower().replace("_", "")
        factor = 1
        if part.endswith("k"):
            part, factor = part[:-1], 1_000
        elif part.endswith("m"):
            part, factor = part[:-1], 1_000_000
        try:
            n = int(float(part) * factor)
        except ValueError as err:
            raise click.BadParameter(f"not a size: {part!r} (use e.g. 10k,100k,1m)") from err
        if n < 100:
            raise click.BadParameter("sizes start at 100 patients")
        sizes.append(n)
    return sizes


def register(main: click.Group) -> None:
    @main.command("bench")
    @click.option("--quick", is_flag=True, help="10k only and fewer repetitions: a few minutes.")
    @click.option("--sizes", help="Active patients per run, e.g. 10k,100k,1m (1m: PostgreSQL).")
    @click.option(
        "--database-url", help="Database to fill (WIPED). Default: a SQLite file under /tmp."
    )
    @click.option(
        "--json",
        "json_path",
        type=click.Path(dir_okay=False),
        help="Also write the report as JSON.",
    )
    @click.option(
        "--seed", default=2026, show_default=True, type=int, help="Seed of the synthetic region."
    )
    @click.option(
        "--force", is_flag=True, help="Wipe the database even if it holds non-benchmark users."
    )
    @click.option(
        "--postcodes",
        type=click.Path(dir_okay=False, path_type=Path),
        help=(
            "GeoNames postcode file (default: ../shared/data/postcodes-DE.txt; a grid if missing)."
        ),
    )
    @click.option(
        "--worker-class",
        type=click.Choice(["gthread", "sync"]),
        default="gthread",
        show_default=True,
        help="gunicorn worker class for figures 3-5 (4 workers; gthread: 4 threads each).",
    )
    def bench(
        quick: bool,
        sizes: str | None,
        database_url: str | None,
        json_path: str | None,
        seed: int,
        force: bool,
        postcodes: Path | None,
        worker_class: str,
    ) -> None:
        """Benchmark matching, post -> mail, contention, throughput and memory.

        The database is wiped and refilled for every size. Prints a table; --json writes
        the full report.
        """
        from ptmatch.bench import report, runner
        from ptmatch.bench.generate import NotABenchDatabase

        plan = runner.Plan.make(
            database_url,
            _sizes(sizes),
            quick,
            seed,
            force=force,
            postcodes=postcodes,
            worker_class=worker_class,
        )
        if 1_000_000 in plan.sizes and plan.database_url.startswith("sqlite"):
            click.echo("note: the 1M size is meant for PostgreSQL", err=True)

        @contextlib.contextmanager
        def progress(total: int, label: str):
            with click.progressbar(
                length=total, label=label, show_eta=True, show_percent=True
            ) as bar:
                yield bar

        try:
            doc = runner.run(plan, click.echo, progress)
        except NotABenchDatabase as err:
            raise click.ClickException(str(err)) from err
        click.echo("")
        click.echo(report.table(doc))
        if json_path:
            report.write_json(doc, json_path)
            click.echo(f"\nJSON report: {json_path}")
