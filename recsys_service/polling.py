"""A background poller: one check every few seconds in a daemon thread, until stopped.

The service keeps two things in step with stores it does not own, the model aliases
(:class:`~recsys_service.live_models.LiveModels`) and the tombstones of the event store
(:class:`~recsys_service.forgotten.Forgotten`); both poll through :class:`Poller`. A check that
raises is logged and the loop goes on: one failure never ends the polling. ``stop`` wakes the
thread at once (the wait is on an :class:`threading.Event`), so it never waits out an interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Poller:
    """Call ``check`` every ``interval_s`` seconds in a daemon thread named ``name``.

    Parameters
    ----------
    check
        What to do at each poll; its result is ignored, an exception it raises is logged.
    interval_s
        Seconds between the end of one check and the start of the next.
    name
        The thread's name.
    what
        What a check does, for the log when it fails (``"reading the tombstones"``).
    at_once
        Whether the thread checks as soon as it starts (else it first waits one interval).
    """

    def __init__(
        self,
        check: Callable[[], object],
        interval_s: float,
        name: str,
        what: str,
        *,
        at_once: bool = True,
    ) -> None:
        self.check = check
        self.interval_s = interval_s
        self.name = name
        self.what = what
        self.at_once = at_once
        self.first_pass = threading.Event()
        """Set once the thread has finished its first check (whether or not it raised)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start the thread; a second call while it runs does nothing."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Wake the thread and wait up to ``timeout`` seconds for its check in hand to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        if not self.at_once and self._stop.wait(self.interval_s):
            return
        while True:
            try:
                self.check()
            except Exception:
                log.exception("%s failed; retrying in %ss", self.what, self.interval_s)
            finally:
                self.first_pass.set()
            if self._stop.wait(self.interval_s):
                return
