"""`ptmatch backup --out DIR`, `ptmatch restore FILE --database-url URL`, `ptmatch backup-key`."""

from __future__ import annotations

import click


def _settings():
    from ptmatch import default_instance_path
    from ptmatch.config import load_settings

    return load_settings(default_instance_path())


def register(main: click.Group) -> None:
    @main.command("backup")
    @click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False),
        help="Folder for the backup (default: the BACKUP_DIR setting).",
    )
    @click.option("--database-url", help="Database to back up (default: DATABASE_URL).")
    @click.option(
        "--prune/--no-prune",
        default=True,
        help="Apply retention (BACKUP_KEEP_DAILY / BACKUP_KEEP_WEEKLY) afterwards.",
    )
    def backup_command(out_dir: str | None, database_url: str | None, prune: bool) -> None:
        """Back up the database: a consistent copy plus a manifest (revision, rows, checksum),
        encrypted when BACKUP_KEY is set."""
        from ptmatch import clock
        from ptmatch.ops import backup

        settings = _settings()
        folder = out_dir or settings.BACKUP_DIR
        if not folder:
            raise click.ClickException("Where to? Pass --out DIR or set BACKUP_DIR.")
        try:
            path, manifest = backup.backup(
                database_url or settings.DATABASE_URL, folder, clock.now(), key=settings.BACKUP_KEY
            )
        except backup.BackupError as err:
            raise click.ClickException(str(err)) from err
        rows = sum(manifest.tables.values())
        click.echo(
            f"backup: {path.parent / manifest.file}\nmanifest: {path}\n"
            f"revision {manifest.revision or 'none'}, {len(manifest.tables)} tables, {rows} rows"
            + (", encrypted" if manifest.encrypted else "")
        )
        if prune:
            for deleted in backup.prune(folder, settings):
                click.echo(f"retention: removed {deleted.name}")

    @main.command("restore")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--database-url", required=True, help="The database to restore into.")
    @click.option("--force", is_flag=True, help="Replace a database that already has tables.")
    def restore_command(file: str, database_url: str, force: bool) -> None:
        """Restore FILE (a backup or its manifest) into an empty database, then check the
        manifest: checksum, revision and rows per table."""
        from ptmatch.ops import backup

        settings = _settings()
        try:
            report = backup.restore(file, database_url, key=settings.BACKUP_KEY, force=force)
        except backup.BackupError as err:
            raise click.ClickException(str(err)) from err
        for line in report.lines():
            click.echo(line)
        if not report.ok:
            raise click.ClickException("the restored database does not match the manifest")
        click.echo("restore checked: ok")

    @main.command("backup-key")
    def backup_key() -> None:
        """Print a new key for BACKUP_KEY (keep a copy outside the server: without it the
        backups cannot be read)."""
        from cryptography.fernet import Fernet

        click.echo(Fernet.generate_key().decode("ascii"))

    @main.command("reapply-erasures")
    @click.option(
        "--from-database",
        "old_url",
        required=True,
        help="The database the backup was taken from (its audit log names the erasures).",
    )
    def reapply_erasures(old_url: str) -> None:
        """After a restore into DATABASE_URL: erase again every patient the old database
        erased (they are back if they were erased after the backup)."""
        from ptmatch import clock
        from ptmatch.db import make_engine, make_session_factory
        from ptmatch.ops import erasures

        settings = _settings()
        ids = erasures.erased_patient_ids(old_url)
        engine = make_engine(settings.DATABASE_URL)
        try:
            with make_session_factory(engine, settings)() as session:
                done = erasures.reapply(session, clock.now(), ids, settings)
                session.commit()
        finally:
            engine.dispose()
        click.echo(
            f"{len(ids)} erasures in the old database; {len(done)} made again here"
            + (f" (patient ids {', '.join(map(str, done))})" if done else "")
        )
