"""`ptmatch scheduler`: the job process (one active, others stand by)."""

import click


def register(main: click.Group) -> None:
    @main.command("scheduler")
    @click.option("--once", is_flag=True, help="Run every job once and exit.")
    def scheduler(once: bool) -> None:
        """Run the scheduler: offer sweep, outbox delivery, reminders, check-ins, groups."""
        from ptmatch import default_instance_path
        from ptmatch.config import load_settings
        from ptmatch.scheduler.runner import run, run_once

        settings = load_settings(default_instance_path())
        if once:
            for name, count in run_once(settings).items():
                click.echo(f"{name}: {count}")
        else:
            run(settings)
