"""Databases for the tests of the event store and of collection: SQLite (a file per test) and the
PostgreSQL at 127.0.0.1:5432 (a database per test, dropped after it)."""

from __future__ import annotations

import os
import uuid

import psycopg2
import pytest

PG = os.environ.get("RECSYS_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def _admin():
    conn = psycopg2.connect(f"{PG}/postgres", connect_timeout=3)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def pg_server():
    """The PostgreSQL server's base URL; the tests that need it are skipped without one."""
    try:
        _admin().close()
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG}: {exc}")
    return PG


@pytest.fixture
def pg_url(pg_server):
    """A new, empty PostgreSQL database (dropped after the test)."""
    prefix = os.environ.get("RECSYS_TEST_DB_PREFIX", "recsys_test")
    name = f"{prefix}_ev_{uuid.uuid4().hex[:10]}"
    conn = _admin()
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_server}/{name}"
    finally:
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request):
    """An empty database of each kind."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
