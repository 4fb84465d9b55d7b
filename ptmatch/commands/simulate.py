"""`ptmatch simulate`: compare offer policies on a simulated region (see SIMULATION.md)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click


def register(main: click.Group) -> None:
    @main.command("simulate")
    @click.option(
        "--preset",
        type=click.Choice(["bonn", "city", "tiny"]),
        default="bonn",
        show_default=True,
        help="A preset region.",
    )
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="A TOML file overriding the preset's fields.",
    )
    @click.option("--months", default=6.0, show_default=True, type=click.FloatRange(0.1, 24))
    @click.option("--seed", default=1, show_default=True, type=int)
    @click.option(
        "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON."
    )
    @click.option(
        "--check",
        is_flag=True,
        help="Also re-check every offer against the hard filters (slower).",
    )
    @click.option(
        "--jobs",
        default=1,
        show_default=True,
        type=click.IntRange(1, 8),
        help="Run this many policies at once, each in its own process (same results).",
    )
    @click.option(
        "--workdir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where the scratch databases go (default: a temporary directory, removed).",
    )
    def simulate(
        preset: str,
        config_path: Path | None,
        months: float,
        seed: int,
        json_path: Path | None,
        check: bool,
        jobs: int,
        workdir: Path | None,
    ) -> None:
        """Run every offer policy on the same simulated region and print the figures."""
        from ptmatch.sim import engine, model

        try:
            region = model.load_region(preset, config_path)
        except (ValueError, TypeError) as err:
            raise click.BadParameter(str(err), param_hint="--config") from err
        bars: dict = {}

        def progress(policy: str, fraction: float) -> None:
            # one bar per policy in turn; one bar for all of them when they run at once
            key, label = (policy, f"{policy:<11}") if jobs == 1 else ("all", "all policies")
            bar = bars.get(key)
            if bar is None:
                length = 1000 if jobs == 1 else 1000 * len(model.POLICIES)
                bar = bars[key] = click.progressbar(
                    length=length, label=label, show_percent=True, file=None
                )
                bar.__enter__()
            bar.update(round(fraction * 1000))

        with tempfile.TemporaryDirectory(prefix="ptmatch-sim-") as tmp:
            where = workdir or Path(tmp)
            where.mkdir(parents=True, exist_ok=True)
            doc = engine.simulate(
                region,
                seed=seed,
                months=months,
                workdir=where,
                check=check,
                progress=progress,
                jobs=jobs,
            )
        for bar in bars.values():
            bar.__exit__(None, None, None)
        click.echo("")
        click.echo(
            f"{region.name}: {doc['postings']} slots posted, {doc['arrivals']} arrivals, "
            f"{months:g} months, seed {seed}"
        )
        click.echo(engine.table(doc))
        if json_path:
            json_path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
            click.echo(f"JSON written to {json_path}")
