"""Small shared pieces of the task layer: the retry policy of I/O tasks, loggers.

I/O can fail transiently (network, S3, tracking server); training never retries. Retries are for
errors that a second attempt can fix: bad data, bad settings, a refused gate or a stale
promotion fail at once (:func:`is_transient`). The number of retries and their delays are read
from the settings each time a task fails, so they can be changed without re-importing the tasks:

- ``RECSYS_IO_RETRIES``: retries after the first attempt (default 3, at most ``MAX_IO_RETRIES``);
- ``RECSYS_IO_RETRY_DELAYS``: comma-separated seconds before each retry (default ``2,5,15``; the
  last one repeats).

Every retried task is declared with ``**IO_RETRY``.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from recsys_core.exceptions import DataSourceError, RecsysError, TrackingError
from recsys_core.settings import get_settings

DEFAULT_RETRIES = 3
DEFAULT_DELAYS = (2.0, 5.0, 15.0)
MAX_IO_RETRIES = 10
"""The ceiling declared to Prefect; the setting chooses how many of them are used."""


def io_retries() -> int:
    """Retries after the first attempt (``RECSYS_IO_RETRIES``, recsys_core.settings)."""
    return get_settings().retries.io_retries


def io_retry_delays() -> list[float]:
    """Seconds before each retry (``RECSYS_IO_RETRY_DELAYS``, recsys_core.settings)."""
    return list(get_settings().retries.io_retry_delays)


class _SettingDelays(list):
    """The retry delays as Prefect reads them (``len`` and indexing), from the settings each time.

    Prefect keeps ``retry_delay_seconds`` as given and indexes it when a task fails; a list
    subclass is the only form it accepts that is not frozen at import.
    """

    def __len__(self) -> int:
        return len(io_retry_delays())

    def __getitem__(self, index: Any) -> Any:
        return io_retry_delays()[index]

    def __iter__(self):
        return iter(io_retry_delays())

    def __bool__(self) -> bool:
        return bool(io_retry_delays())

    def __repr__(self) -> str:
        return f"<RECSYS_IO_RETRY_DELAYS {io_retry_delays()}>"


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


IO_RETRIES = MAX_IO_RETRIES
IO_RETRY_DELAYS = _SettingDelays()
IO_RETRY: dict[str, Any] = dict(
    retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS, retry_condition_fn=retry_condition_fn
)
"""Decorator arguments of every task that retries I/O: ``@task(..., **IO_RETRY)``."""


def logger():
    return get_run_logger()
