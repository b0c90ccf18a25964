"""Prefect's console as the CLI wants it: no tracebacks (the CLI prints one error line), no
telemetry, and always on the ``sys.stderr`` of the command that runs.

Why the handlers are adjusted at run time rather than declared in a logging configuration file
(``PREFECT_LOGGING_SETTINGS_PATH``): Prefect reads that setting once, into the settings context
it builds when it is first imported, and configures logging at that import; later calls of
``setup_logging`` are incremental (levels only, the handler classes stay). A file would
therefore only take effect when ``recsys`` is the first to import Prefect in the process; in a
notebook, a test session or any program that imported a flow first, the handlers would stay
Prefect's own, so this module would still be needed. One mechanism that works in every case is
kept instead of two.
"""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from typing import Any

_quieted: weakref.WeakSet[Any] = weakref.WeakSet()
"""Prefect's console handlers whose ``format`` already drops tracebacks."""


def quiet_prefect() -> None:
    """Prefect's console without tracebacks (the CLI prints one error line) or telemetry."""
    import logging

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the temporary server of a run without PREFECT_API_URL needs more than the default 20 s to
    # start (database migration) on a busy or first-time machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    setup_logging()
    console_on_this_stderr()
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and handler not in _quieted:
                # this handler only (a subclass would not be the one Prefect built)
                handler.format = _without_traceback(handler.format)  # type: ignore[method-assign]
                _quieted.add(handler)


def console_on_this_stderr() -> None:
    """Point Prefect's console handlers, if any, at the current ``sys.stderr``.

    Prefect sets its handlers up once per process, on the ``sys.stderr`` of that moment; a
    second command in the same process (a notebook, a test's CLI runner) may have another one,
    and the first may be closed by now ("I/O operation on closed file" in every log line).
    """
    import logging

    if "prefect.logging.handlers" not in sys.modules:
        return  # Prefect has set nothing up in this process
    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and handler.stream is not sys.stderr:
                with handler.lock or contextlib.nullcontext():  # not setStream: it flushes
                    handler.stream = handler.console.file = sys.stderr  # the old stream


def _without_traceback(format_record):
    import logging

    def format_(record: logging.LogRecord) -> str:
        if not (record.exc_info or record.exc_text or record.stack_info):
            return format_record(record)
        copy = logging.makeLogRecord(record.__dict__)
        copy.exc_info = copy.exc_text = copy.stack_info = None
        return format_record(copy)

    return format_
