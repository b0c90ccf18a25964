"""Alembic migrations of the event store, shipped with the package (``recsys db upgrade``)."""
