"""Each flow test gets its own MLflow store in tmp (one Prefect test server: tests/conftest.py)."""

import pytest


@pytest.fixture
def workspace(prefect_server, embedded_store):
    """A fresh working directory with the embedded MLflow store (a copy of the empty one: the
    schema migration of a new database takes seconds)."""
    return embedded_store
