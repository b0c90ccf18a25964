"""Task-level tests run the real tasks through Prefect's engine (retries happen there) against
the embedded MLflow store; retries and delays come from the settings."""

import pytest


@pytest.fixture
def workspace(prefect_server, embedded_store, monkeypatch):
    """A fresh working directory with the embedded MLflow store; retries without delay."""
    monkeypatch.setenv("RECSYS_IO_RETRY_DELAYS", "0")
    return embedded_store


class Faults:
    """Wrap a real function so that its first ``n`` calls raise ``exc``; counts every call."""

    def __init__(self, real, exc: BaseException | None, n: int = 10**6):
        self.real, self.exc, self.n, self.calls = real, exc, n, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.exc is not None and self.calls <= self.n:
            raise self.exc
        return self.real(*args, **kwargs)


@pytest.fixture
def faults():
    return Faults
