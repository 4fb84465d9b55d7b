"""Backups with a manifest, optional encryption at rest, retention, and a checked restore.

A backup is two files in the backup folder:

- the payload `ptmatch-<UTC time>.sqlite` (SQLite's online backup API: a consistent copy
  while the app writes in WAL mode) or `.pgdump` (`pg_dump --format=custom`), with `.enc`
  appended when BACKUP_KEY is set (Fernet, in authenticated chunks);
- its manifest `<payload>.manifest.json`: time, Alembic revision, rows per table, the
  SHA-256 of the payload file as stored.

The row counts and the revision are read from the very snapshot that was backed up (the
copy itself on SQLite; on PostgreSQL the transaction whose exported snapshot pg_dump uses).

`restore` refuses a database that already has tables unless `force`, refuses a payload
whose checksum does not match, and afterwards compares revision and row counts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import zoneinfo
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url

from ptmatch.config import Settings
from ptmatch.db import is_sqlite

FORMAT = 1
PREFIX = "ptmatch-"
MANIFEST_SUFFIX = ".manifest.json"
ENC_SUFFIX = ".enc"
MAGIC = b"PTMATCH-BACKUP-1\n"
CHUNK = 4 * 1024 * 1024
_CHUNK_HEAD = struct.Struct(">QB")  # chunk index, last chunk flag (inside the encrypted text)


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass
class Manifest:
    created_at: str  # ISO 8601, UTC
    engine: str  # sqlite | postgresql
    revision: str  # Alembic revision ("" if none)
    tables: dict[str, int]  # rows per table
    file: str  # the payload's file name, beside the manifest
    sha256: str  # of the payload file as stored (encrypted or not)
    encrypted: bool = False
    format: int = FORMAT
    tool: str = ""  # pg_dump version, or the SQLite library version

    @property
    def when(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.created_at)

    def write(self, folder: Path) -> Path:
        path = folder / (self.file + MANIFEST_SUFFIX)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text())
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise BackupError(f"{path}: not a readable backup manifest ({err}).") from err


@dataclass
class RestoreReport:
    manifest: Manifest
    revision_ok: bool
    checksum_ok: bool
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (want, got)

    @property
    def counts_ok(self) -> bool:
        return all(want == got for want, got in self.tables.values())

    @property
    def ok(self) -> bool:
        return self.revision_ok and self.checksum_ok and self.counts_ok

    def lines(self) -> list[str]:
        out = [
            f"backup of {self.manifest.created_at} ({self.manifest.engine}, "
            f"revision {self.manifest.revision or 'none'})",
            f"checksum: {'ok' if self.checksum_ok else 'MISMATCH'}",
            f"revision: {'ok' if self.revision_ok else 'MISMATCH'}",
        ]
        bad = {n: c for n, c in self.tables.items() if c[0] != c[1]}
        out.append(
            f"row counts: {'ok' if not bad else 'MISMATCH'} "
            f"({len(self.tables)} tables, {sum(w for w, _ in self.tables.values())} rows)"
        )
        out += [f"  {name}: manifest {w}, restored {g}" for name, (w, g) in sorted(bad.items())]
        return out


# --- helpers --------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _fernet(key: str):
    from cryptography.fernet import Fernet

    return Fernet(key.encode("ascii"))


def encrypt_file(src: Path, dst: Path, key: str) -> None:
    """Fernet in chunks (memory stays flat): each chunk's index and a last-chunk flag are
    inside its authenticated text, so chunks cannot be reordered, dropped or cut off."""
    fernet = _fernet(key)
    size = src.stat().st_size
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(MAGIC)
        index, done = 0, 0
        while True:
            data = fin.read(CHUNK)
            done += len(data)
            last = done >= size
            token = fernet.encrypt(_CHUNK_HEAD.pack(index, last) + data)
            fout.write(struct.pack(">I", len(token)) + token)
            index += 1
            if last:
                break


def decrypt_file(src: Path, dst: Path, key: str) -> None:
    from cryptography.fernet import InvalidToken

    if not key:
        raise BackupError("This backup is encrypted: set BACKUP_KEY to the key it was made with.")
    fernet = _fernet(key)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        if fin.read(len(MAGIC)) != MAGIC:
            raise BackupError(f"{src}: not an encrypted ptmatch backup.")
        index = 0
        while True:
            head = fin.read(4)
            if len(head) != 4:
                raise BackupError(f"{src}: the encrypted backup is cut off.")
            token = fin.read(struct.unpack(">I", head)[0])
            try:
                plain = fernet.decrypt(token)
            except InvalidToken as err:
                raise BackupError(
                    f"{src}: cannot decrypt (wrong BACKUP_KEY, or the file is damaged)."
                ) from err
            got, last = _CHUNK_HEAD.unpack_from(plain)
            if got != index:
                raise BackupError(f"{src}: encrypted chunks out of order.")
            fout.write(plain[_CHUNK_HEAD.size :])
            index += 1
            if last:
                break
        if fin.read(1):
            raise BackupError(f"{src}: data after the last encrypted chunk.")


def table_names(conn: Connection) -> list[str]:
    if conn.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = (
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
    return sorted(conn.execute(text(sql)).scalars())


def row_counts(conn: Connection) -> dict[str, int]:
    return {
        name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
        for name in table_names(conn)
    }


def revision_of(conn: Connection) -> str:
    if "alembic_version" not in table_names(conn):
        return ""
    return ",".join(sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()))


def _stamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url}: a SQLite backup needs a database file.")
    return Path(database)


# --- PostgreSQL tools -------------------------------------------------------------------------


def _libpq(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump / pg_restore, the password in the environment."""
    u = make_url(url)
    args = []
    if u.host:
        args += ["--host", u.host]
    if u.port:
        args += ["--port", str(u.port)]
    if u.username:
        args += ["--username", u.username]
    env = dict(os.environ)
    if u.password is not None:
        env["PGPASSWORD"] = str(u.password)
    return args + ["--dbname", u.database or ""], env


def tool_major(tool: str) -> tuple[int, str]:
    """The major version of `pg_dump` / `pg_restore` on PATH, or a BackupError saying so."""
    path = shutil.which(tool)
    if path is None:
        raise BackupError(
            f"{tool} was not found on PATH: install the PostgreSQL client tools of the "
            "server's major version (Debian: postgresql-client-NN)."
        )
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    if not match:
        raise BackupError(f"{tool}: cannot read its version from {out.strip()!r}.")
    return int(match.group(1)), out.strip()


def check_tool(tool: str, conn: Connection) -> str:
    server = int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    major, version = tool_major(tool)
    if major != server:
        raise BackupError(
            f"{tool} is major version {major} but the server is {server}: use the "
            f"{tool} of PostgreSQL {server} (Debian: postgresql-client-{server})."
        )
    return version


# --- backup ---------------------------------------------------------------------------------


def backup(
    database_url: str, out_dir: str | Path, now: dt.datetime, *, key: str = ""
) -> tuple[Path, Manifest]:
    """Back up the database into `out_dir`; returns the manifest's path and the manifest."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    base = PREFIX + _stamp(now)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".partial-") as tmp:
        if is_sqlite(database_url):
            plain = Path(tmp) / (base + ".sqlite")
            engine, counts, revision, tool = "sqlite", *_backup_sqlite(database_url, plain)
        else:
            plain = Path(tmp) / (base + ".pgdump")
            engine, counts, revision, tool = "postgresql", *_backup_postgres(database_url, plain)
        stored = plain
        if key:
            stored = Path(tmp) / (plain.name + ENC_SUFFIX)
            encrypt_file(plain, stored, key)
            plain.unlink()
        final = folder / stored.name
        os.replace(stored, final)
    manifest = Manifest(
        created_at=now.astimezone(dt.UTC).isoformat(),
        engine=engine,
        revision=revision,
        tables=counts,
        file=final.name,
        sha256=sha256_of(final),
        encrypted=bool(key),
        tool=tool,
    )
    return manifest.write(folder), manifest


def _backup_sqlite(database_url: str, dest: Path) -> tuple[dict[str, int], str, str]:
    source = sqlite3.connect(_sqlite_path(database_url), timeout=30)
    try:
        copy = sqlite3.connect(dest)
        try:
            source.backup(copy)  # one step: a consistent snapshot, writers keep going (WAL)
            copy.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        finally:
            copy.close()
    finally:
        source.close()
    engine = create_engine(f"sqlite:///{dest}")
    try:
        with engine.connect() as conn:
            return row_counts(conn), revision_of(conn), f"SQLite {sqlite3.sqlite_version}"
    finally:
        engine.dispose()


def _backup_postgres(database_url: str, dest: Path) -> tuple[dict[str, int], str, str]:
    engine = create_engine(database_url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            version = check_tool("pg_dump", conn)
            # Counts, revision and the dump all come from this one snapshot.
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            counts, revision = row_counts(conn), revision_of(conn)
            args, env = _libpq(database_url)
            done = subprocess.run(
                ["pg_dump", "--format=custom", "--no-owner", "--snapshot", snapshot]
                + ["--file", str(dest)]
                + args,
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            conn.rollback()
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
        return counts, revision, version
    finally:
        engine.dispose()


# --- restore --------------------------------------------------------------------------------


def find_manifest(file: str | Path) -> tuple[Path, Manifest]:
    """The manifest of a backup, given its payload or its manifest."""
    path = Path(file)
    manifest_path = (
        path if path.name.endswith(MANIFEST_SUFFIX) else Path(str(path) + MANIFEST_SUFFIX)
    )
    if not manifest_path.exists():
        raise BackupError(f"{manifest_path}: manifest not found (it lies beside the backup).")
    manifest = Manifest.read(manifest_path)
    if manifest.format != FORMAT:
        raise BackupError(f"{manifest_path}: backup format {manifest.format} is not supported.")
    return manifest_path, manifest


def verify_file(file: str | Path) -> tuple[Path, Manifest]:
    """Refuse a backup whose payload is missing or whose checksum does not match."""
    manifest_path, manifest = find_manifest(file)
    payload = manifest_path.parent / manifest.file
    if not payload.exists():
        raise BackupError(f"{payload}: the backup file is missing.")
    if sha256_of(payload) != manifest.sha256:
        raise BackupError(
            f"{payload}: checksum mismatch: the backup is damaged or was changed; "
            "nothing was restored."
        )
    return payload, manifest


def restore(
    file: str | Path, database_url: str, *, key: str = "", force: bool = False
) -> RestoreReport:
    payload, manifest = verify_file(file)
    target_engine = "sqlite" if is_sqlite(database_url) else "postgresql"
    if manifest.engine != target_engine:
        raise BackupError(
            f"This is a {manifest.engine} backup; restore it into a {manifest.engine} database."
        )
    existing = _existing_tables(database_url)
    if existing and not force:
        raise BackupError(
            f"The target database already has {len(existing)} tables: restore only into an "
            "empty database, or pass --force to replace its contents."
        )
    with tempfile.TemporaryDirectory(prefix="ptmatch-restore-") as tmp:
        plain = payload
        if manifest.encrypted:
            plain = Path(tmp) / payload.name.removesuffix(ENC_SUFFIX)
            decrypt_file(payload, plain, key)
        if target_engine == "sqlite":
            _restore_sqlite(plain, database_url)
        else:
            _restore_postgres(plain, database_url, clean=bool(existing))
    return check_restored(manifest, database_url)


def _existing_tables(database_url: str) -> list[str]:
    if is_sqlite(database_url) and not _sqlite_path(database_url).exists():
        return []
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return table_names(conn)
    finally:
        engine.dispose()


def _restore_sqlite(plain: Path, database_url: str) -> None:
    target = _sqlite_path(database_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(plain)
    try:
        dest = sqlite3.connect(target, timeout=30)
        try:
            source.backup(dest)  # replaces every page of the target, in one transaction
        finally:
            dest.close()
    finally:
        source.close()


def _restore_postgres(plain: Path, database_url: str, *, clean: bool) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            check_tool("pg_restore", conn)
    finally:
        engine.dispose()
    args, env = _libpq(database_url)
    options = ["--no-owner", "--exit-on-error", "--single-transaction"]
    if clean:
        options += ["--clean", "--if-exists"]
    done = subprocess.run(
        ["pg_restore", *options, *args, str(plain)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()[:500]}")


def check_restored(manifest: Manifest, database_url: str) -> RestoreReport:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            counts, revision = row_counts(conn), revision_of(conn)
    finally:
        engine.dispose()
    names = set(manifest.tables) | set(counts)
    return RestoreReport(
        manifest=manifest,
        revision_ok=revision == manifest.revision,
        checksum_ok=True,  # verify_file refused a mismatch before anything was restored
        tables={n: (manifest.tables.get(n, -1), counts.get(n, -1)) for n in sorted(names)},
    )


# --- retention ------------------------------------------------------------------------------


def list_backups(folder: str | Path) -> list[tuple[Path, Manifest]]:
    """Backups in `folder` (by manifest), newest first."""
    found = []
    for path in Path(folder).glob(PREFIX + "*" + MANIFEST_SUFFIX):
        try:
            found.append((path, Manifest.read(path)))
        except BackupError:
            continue
    return sorted(found, key=lambda item: item[1].created_at, reverse=True)


def to_keep(whens: list[dt.datetime], daily: int, weekly: int, tz: str) -> set[int]:
    """Indexes (into `whens`, newest first) to keep: the newest backup of each of the last
    `daily` days that have one, and of each of the last `weekly` ISO weeks that have one
    (restic's --keep-daily / --keep-weekly). Days and weeks in the practices' time zone."""
    zone = zoneinfo.ZoneInfo(tz)
    keep: set[int] = set()
    for count, bucket in (
        (daily, lambda d: d.date()),
        (weekly, lambda d: d.isocalendar()[:2]),
    ):
        seen: list = []
        for index, when in enumerate(whens):
            b = bucket(when.astimezone(zone))
            if b in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(b)
            keep.add(index)
    return keep


def retention_days(settings: Settings) -> int:
    """At most this many days old is the oldest backup retention keeps (nightly backups; a
    week of margin). The patients' delete page names it."""
    return max(settings.BACKUP_KEEP_DAILY, 7 * settings.BACKUP_KEEP_WEEKLY) + 7


def prune(folder: str | Path, settings: Settings) -> list[Path]:
    """Delete the backups retention does not keep; returns the deleted manifests."""
    backups = list_backups(folder)
    keep = to_keep(
        [m.when for _p, m in backups],
        settings.BACKUP_KEEP_DAILY,
        settings.BACKUP_KEEP_WEEKLY,
        settings.TIMEZONE,
    )
    deleted = []
    for index, (path, manifest) in enumerate(backups):
        if index in keep:
            continue
        (path.parent / manifest.file).unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        deleted.append(path)
    return deleted


def backed_up_today(folder: str | Path, now: dt.datetime, tz: str) -> bool:
    zone = zoneinfo.ZoneInfo(tz)
    today = now.astimezone(zone).date()
    return any(m.when.astimezone(zone).date() == today for _p, m in list_backups(folder))


def nightly(
    settings: Settings, now: dt.datetime, log: Callable[[str], None] | None = None
) -> Path | None:
    """The scheduler's nightly run: once a day after BACKUP_HOUR (TIMEZONE), back up into
    BACKUP_DIR and prune. None when there is nothing to do."""
    if not settings.BACKUP_DIR:
        return None
    local = now.astimezone(zoneinfo.ZoneInfo(settings.TIMEZONE))
    if local.hour < settings.BACKUP_HOUR:
        return None
    if backed_up_today(settings.BACKUP_DIR, now, settings.TIMEZONE):
        return None
    path, _manifest = backup(
        settings.DATABASE_URL, settings.BACKUP_DIR, now, key=settings.BACKUP_KEY
    )
    deleted = prune(settings.BACKUP_DIR, settings)
    if log:
        log(f"backup written: {path.name}; {len(deleted)} old backups removed")
    return path
