"""Free-text search on the clinical description: the database objects the ORM cannot declare.

- PostgreSQL: the ``pg_trgm`` extension and a GIN trigram index on
  ``patient_clinical.description``; ``description ILIKE '%term%'`` uses it.
- SQLite: an external-content FTS5 table with the ``trigram`` tokenizer
  (``patient_clinical_fts``, rowid = ``patient_id``), kept in step with
  ``patient_clinical`` by three triggers; ``patient_clinical_fts MATCH '"term"'`` finds the
  rows whose description contains the term (3 characters or more, case-insensitive).

The single initial migration creates them after the tables and drops them first (its
template calls `create` and `drop`); `include_object` keeps them out of autogenerate and
out of the models-versus-migrations comparison.
"""

from __future__ import annotations

from sqlalchemy import column, table

TRGM_INDEX = "ix_patient_clinical_description_trgm"
FTS_TABLE = "patient_clinical_fts"
FTS_MIN_TERM = 3  # the trigram tokenizer matches substrings of three characters or more

# The FTS table for queries: rowid is the patient id; the column named like the table is
# FTS5's hidden column that MATCH takes.
fts = table(FTS_TABLE, column("rowid"), column(FTS_TABLE))

_SQLITE_CREATE = [
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(description, content='patient_clinical', "
    "content_rowid='patient_id', tokenize='trigram')",
    f"CREATE TRIGGER {FTS_TABLE}_ai AFTER INSERT ON patient_clinical BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, description) VALUES (new.patient_id, new.description); "
    "END",
    f"CREATE TRIGGER {FTS_TABLE}_ad AFTER DELETE ON patient_clinical BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, description) "
    "VALUES ('delete', old.patient_id, old.description); END",
    f"CREATE TRIGGER {FTS_TABLE}_au AFTER UPDATE OF patient_id, description ON patient_clinical "
    f"BEGIN INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, description) "
    "VALUES ('delete', old.patient_id, old.description); "
    f"INSERT INTO {FTS_TABLE}(rowid, description) VALUES (new.patient_id, new.description); "
    "END",
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
]
_SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_au",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_ad",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_ai",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
]
_PG_EXTENSION = "CREATE EXTENSION IF NOT EXISTS pg_trgm"
_PG_EXTENSION_SCHEMA = (
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
    "WHERE e.extname = 'pg_trgm'"
)
_PG_DROP = [f"DROP INDEX IF EXISTS {TRGM_INDEX}"]  # the extension stays: others may use it


def _run(bind, statements: list[str]) -> None:
    for statement in statements:
        bind.exec_driver_sql(statement)


def create(bind) -> None:
    """Create the search objects on a connection (after the tables exist)."""
    name = bind.dialect.name
    if name == "sqlite":
        _run(bind, _SQLITE_CREATE)
    elif name == "postgresql":
        # The operator class lives in the extension's schema, which need not be on the
        # search_path (the extension is installed once per database).
        bind.exec_driver_sql(_PG_EXTENSION)
        schema = bind.exec_driver_sql(_PG_EXTENSION_SCHEMA).scalar()
        opclass = f'"{schema}".gin_trgm_ops' if schema else "gin_trgm_ops"
        bind.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {TRGM_INDEX} ON patient_clinical "
            f"USING gin (description {opclass})"
        )


def drop(bind) -> None:
    name = bind.dialect.name
    _run(bind, _PG_DROP if name == "postgresql" else _SQLITE_DROP if name == "sqlite" else [])


def is_search_object(name: str | None, type_: str) -> bool:
    if not name:
        return False
    return (type_ == "index" and name == TRGM_INDEX) or (
        type_ == "table" and (name == FTS_TABLE or name.startswith(FTS_TABLE + "_"))
    )


def include_object(_obj, name, type_, _reflected, _compare_to) -> bool:
    """Alembic's filter: the search objects are the migration template's, not autogenerate's."""
    return not is_search_object(name, type_)


def fts_phrase(term: str) -> str:
    """An FTS5 query matching `term` as it is (a quoted phrase)."""
    return '"' + term.replace('"', '""') + '"'
