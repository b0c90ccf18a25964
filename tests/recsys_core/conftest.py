"""Databases for the tests of the event store and of collection: SQLite (a file per test) and the
PostgreSQL at 127.0.0.1:5432 (``pg_url``, tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request):
    """An empty database of each kind."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
