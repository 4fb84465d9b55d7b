"""Alembic environment: the URL comes from the Config (set by ptmatch.migrate)."""

from alembic import context

import ptmatch.models  # noqa: F401 - fills the metadata
from ptmatch.db import Base, make_engine
from ptmatch.models import search

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=search.include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
