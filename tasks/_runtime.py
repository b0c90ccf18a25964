"""Small shared pieces of the task layer: the retry policy of I/O tasks, loggers.

I/O can fail transiently (network, S3, tracking server); training never retries. Retries are for
errors that a second attempt can fix: bad data, bad settings, a refused gate or a stale
promotion fail at once (:func:`is_transient`). How many and after how long come from the
settings tree:

- ``RECSYS_IO_RETRIES``: retries after the first attempt (default 3, at most ``MAX_IO_RETRIES``);
- ``RECSYS_IO_RETRY_DELAYS``: comma-separated seconds before each retry (default ``2,5,15``; the
  last one repeats).

Every retried task is declared with ``**IO_RETRY`` (the defaults) and called as
``retried(task)(...)``: :func:`retried` passes the settings to Prefect with
``Task.with_options``. A flow reads them once, at its start (:func:`configure_retries`), and
every I/O task of the run, nested ones included, gets that policy; outside a flow run the
settings are read when the task is called.
"""

from __future__ import annotations

import contextvars
from typing import Any, ParamSpec, TypeVar

from prefect import Task, get_run_logger

from recsys_core.exceptions import DataSourceError, RecsysError, TrackingError
from recsys_core.settings import get_settings

DEFAULT_RETRIES = 3
DEFAULT_DELAYS = (2.0, 5.0, 15.0)
MAX_IO_RETRIES = 10
"""The most retries ``RECSYS_IO_RETRIES`` may ask for."""


def io_retries() -> int:
    """Retries after the first attempt (``RECSYS_IO_RETRIES``, recsys_core.settings)."""
    return get_settings().retries.io_retries


def io_retry_delays() -> list[float]:
    """Seconds before each retry (``RECSYS_IO_RETRY_DELAYS``, recsys_core.settings)."""
    return list(get_settings().retries.io_retry_delays)


_POLICY: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "recsys_io_retry_policy", default=None
)


def io_retry_options() -> dict[str, Any]:
    """``Task.with_options`` arguments of the I/O tasks: the flow run's (set at its start), or
    the settings as they are now."""
    policy = _POLICY.get()
    if policy is not None:
        return policy
    return {"retries": io_retries(), "retry_delay_seconds": io_retry_delays()}


def configure_retries() -> contextvars.Token:
    """Read the retry settings once, at the start of a flow run, for all its I/O tasks; pass
    what it returns to :func:`release_retries` when the run ends."""
    return _POLICY.set({"retries": io_retries(), "retry_delay_seconds": io_retry_delays()})


def release_retries(token: contextvars.Token) -> None:
    """End the policy :func:`configure_retries` set (the next flow run reads its own)."""
    _POLICY.reset(token)


P = ParamSpec("P")
R = TypeVar("R")


def retried(task: Task[P, R]) -> Task[P, R]:
    """``task`` with the retries and delays of the settings (:func:`io_retry_options`)."""
    return task.with_options(**io_retry_options())


# errors of the caller, the data or the code: the same call fails the same way again
_PERMANENT = (
    TypeError,
    ValueError,
    AttributeError,
    KeyError,
    IndexError,
    NameError,
    NotImplementedError,
    AssertionError,
    ArithmeticError,
    MemoryError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
_PERMANENT_MLFLOW = {
    "INVALID_PARAMETER_VALUE",
    "RESOURCE_DOES_NOT_EXIST",
    "RESOURCE_ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
    "BAD_REQUEST",
    "INVALID_STATE",
    "ENDPOINT_NOT_FOUND",
    "NOT_FOUND",
}
_PERMANENT_S3 = {
    "NoSuchBucket",
    "NoSuchKey",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidBucketName",
    "403",
    "404",
}


def is_transient(exc: BaseException | None) -> bool:
    """Whether another attempt of the failed call could succeed."""
    if exc is None:
        return False
    if isinstance(exc, TrackingError):
        # the tracking server or the artifact store failed: transient unless its cause is not
        return exc.__cause__ is None or is_transient(exc.__cause__)
    if isinstance(exc, DataSourceError) and exc.__cause__ is not None:
        # a source that could not be reached: as transient as its cause, except S3, whose client
        # has already spent its own attempts and timeouts (RECSYS_S3_*): retrying the task
        # would multiply them, and a silent endpoint must fail the run within a minute
        if _is_botocore(exc.__cause__):
            return False
        return is_transient(exc.__cause__)
    if isinstance(exc, RecsysError):
        return False  # data, settings, gate, training: retrying changes nothing
    from mlflow.exceptions import MlflowException  # a dependency

    if isinstance(exc, MlflowException):
        return exc.error_code not in _PERMANENT_MLFLOW
    try:
        from botocore.exceptions import ClientError
    except ImportError:  # pragma: no cover
        ClientError = ()
    if ClientError and isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) not in _PERMANENT_S3
    if isinstance(exc, _PERMANENT):
        return False
    return isinstance(exc, Exception)  # network, timeouts, server errors, the unknown


def _is_botocore(exc: BaseException) -> bool:
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return False
    return isinstance(exc, BotoCoreError)


def retry_condition_fn(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: retry transient errors, up to ``RECSYS_IO_RETRIES``."""
    if task_run is not None and task_run.run_count > io_retries():
        return False
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            exc = state.result(raise_on_failure=False)
        except Exception:
            return False
    return isinstance(exc, BaseException) and is_transient(exc)


IO_RETRY: dict[str, Any] = dict(
    retries=DEFAULT_RETRIES,
    retry_delay_seconds=list(DEFAULT_DELAYS),
    retry_condition_fn=retry_condition_fn,
)
"""Decorator arguments of every task that retries I/O: ``@task(..., **IO_RETRY)``; called
through :func:`retried`, which sets the retries and delays of the settings."""


def logger():
    return get_run_logger()
