"""Small shared pieces of the task layer: retry policy, loggers."""

from __future__ import annotations

from prefect import get_run_logger

# I/O can fail transiently (network, S3, tracking server); training never retries.
IO_RETRIES = 3
IO_RETRY_DELAYS = [2, 5, 15]


def logger():
    return get_run_logger()
