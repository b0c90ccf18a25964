"""Alembic environment of the event store: migrations run on the connection that
``recsys_core.events.migrate.upgrade`` passes in ``config.attributes["connection"]``.

Alembic executes this file under its own module name; imported as
``recsys_core.events.migrations.env`` (a walk over the package's modules) it does nothing.
"""

from __future__ import annotations

from alembic import context

from recsys_core.events.tables import VERSION_TABLE, metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # pragma: no cover - only reached through the alembic command line
        from sqlalchemy import create_engine

        url = context.config.get_main_option("sqlalchemy.url")
        connection = create_engine(str(url)).connect()
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if __name__ != "recsys_core.events.migrations.env":
    run_migrations()
