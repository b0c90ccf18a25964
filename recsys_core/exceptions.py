"""The exceptions of recsys, with one root.

::

    RecsysError
    ├── ConfigError               a setting or hyperparameter is invalid
    │   ├── UnknownModelError     a model name that is not registered
    │   └── MissingExtraError     an optional part (Spark, tuning, the service) not installed
    ├── DataError                 data cannot be read or is malformed
    │   ├── DataSourceError       a source cannot be reached or does not exist
    │   └── DataValidationError   the data breaks the validation suite (carries the report)
    │       └── EventConflictError an event id already stored by its sender with other content
    ├── NotFittedError            a model used before ``fit``
    ├── TrainingError             training diverged or failed (NaN factors, ...)
    ├── ModelCapabilityError      an operation the model does not support (rating prediction
    │                             from a ranking-only model)
    ├── GateRejectedError         the promotion gate refused the challenger
    │   └── StalePromotionError   the champion changed after the gate judged it: not promoted
    └── TrackingError             the tracking server or the artifact store failed
"""

from __future__ import annotations

from typing import Any


class RecsysError(Exception):
    """Root of every error raised on purpose by recsys."""


class ConfigError(RecsysError, ValueError):
    """A setting or hyperparameter is invalid."""


class UnknownModelError(ConfigError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class MissingExtraError(ConfigError, ImportError):
    """An optional part of recsys whose packages are not installed (``recsys_core.extras``)."""


class DataError(RecsysError):
    """Data cannot be read or is malformed."""


class DataSourceError(DataError):
    """A data source cannot be reached, downloaded or found."""


class DataValidationError(DataError):
    """The data breaks the validation suite; ``report`` holds every failed check."""

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class EventConflictError(DataValidationError):
    """An ``event_id`` its sender already used for an event with other content."""


class NotFittedError(RecsysError, AttributeError):
    """A model is used before ``fit`` was called."""


class TrainingError(RecsysError):
    """Training failed: diverged, produced NaN, or cannot proceed."""


class ModelCapabilityError(RecsysError):
    """The model does not support this operation (for example rating prediction)."""


class GateRejectedError(RecsysError):
    """The promotion gate refused the challenger; ``decision`` holds the reasons."""

    def __init__(self, message: str, decision: Any = None) -> None:
        super().__init__(message)
        self.decision = decision


class StalePromotionError(GateRejectedError):
    """The champion moved after the gate judged the challenger, so the verdict is out of date.

    Promotion is a compare-and-set: the challenger was judged against one champion version and
    may only replace that one. Re-running the training judges it against the current champion.
    """

    def __init__(
        self,
        message: str,
        *,
        judged: str | None = None,
        current: str | None = None,
        decision: Any = None,
    ) -> None:
        super().__init__(message, decision)
        self.judged = judged
        self.current = current


class TrackingError(RecsysError):
    """The tracking server or the artifact store failed."""
