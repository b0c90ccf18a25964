"""Alembic environment of the event store: migrations run on the connection that
``recsys_core.events.migrate.upgrade`` passes in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context

from recsys_core.events.tables import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached through the alembic command line
    from sqlalchemy import create_engine

    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(str(url))
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
