"""The thresholds of the validation suite, as one frozen configuration."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DriftThreshold(BaseModel):
    """When one drift statistic warns and when it stops the run (empty: never)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warn: float | None = Field(None, ge=0, description="at or above this: a warning and a tag")
    stop: float | None = Field(
        None, ge=0, description="at or above this: the run stops before training"
    )

    @model_validator(mode="after")
    def _warn_before_stop(self) -> DriftThreshold:
        if self.warn is not None and self.stop is not None and self.warn > self.stop:
            raise ValueError(
                f"drift warn ({self.warn!r}) must not exceed stop ({self.stop!r}): "
                "a run that stops should have warned first"
            )
        return self


def _limit(warn: float | None, description: str) -> Any:
    return Field(default_factory=lambda: DriftThreshold(warn=warn), description=description)


class DriftRules(BaseModel):
    """Thresholds on the drift between this run's snapshot and the champion's.

    The defaults only warn, at levels that day-to-day growth of the same data stays below; set
    stop on the statistics that should hold a run.
    """

    # the statistics: recsys_core.validation.drift (this docstring is the Prefect form's text)

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="compare the snapshot with the champion's")
    rating_ks: DriftThreshold = _limit(
        0.1, "Kolmogorov-Smirnov statistic of the rating distributions (0 to 1)"
    )
    rating_psi: DriftThreshold = _limit(
        0.25, "population stability index of the rating distributions (0.25: a major shift)"
    )
    item_popularity_js: DriftThreshold = _limit(
        0.2, "Jensen-Shannon distance (base 2, 0 to 1) of the item popularity distributions"
    )
    new_user_share: DriftThreshold = _limit(
        0.5, "share of this snapshot's users that the champion's snapshot does not have"
    )
    new_item_share: DriftThreshold = _limit(
        0.3, "share of this snapshot's items that the champion's snapshot does not have"
    )
    interactions_per_user_ks: DriftThreshold = _limit(
        0.2, "Kolmogorov-Smirnov statistic of the interactions per user (0 to 1)"
    )

    def thresholds(self) -> dict[str, DriftThreshold]:
        """Each thresholded statistic by name."""
        return {name: value for name, value in self if isinstance(value, DriftThreshold)}


class ValidationRules(BaseModel):
    """What valid interaction data looks like.

    Table-level rules (columns, row, user and item counts) fail the data as a whole; row-level
    rules (nulls, rating scale, future timestamps, repeated (user, item) pairs) fail it too,
    unless quarantine sets the offending rows aside. Repeated pairs are resolved before
    validation by the duplicates policy of the data section; the check catches tables that
    skipped it. The interaction minimums per user and per item only warn: sparse users and items
    are normal in recommender data, but a large share of them is worth a look.
    """

    # the duplicates policy: recsys_core.data.duplicates (this docstring is the Prefect form's
    # text: plain words only)

    model_config = ConfigDict(frozen=True, extra="forbid")

    rating_min: float = Field(1.0, description="lowest valid rating (inclusive)")
    rating_max: float = Field(5.0, description="highest valid rating (inclusive)")
    min_rows: int = Field(100, ge=0, description="minimum number of interactions")
    min_users: int = Field(2, ge=0, description="minimum number of distinct users")
    min_items: int = Field(2, ge=0, description="minimum number of distinct items")
    min_interactions_per_user: int = Field(
        5, ge=0, description="users with fewer interactions are reported as a warning"
    )
    min_interactions_per_item: int = Field(
        2, ge=0, description="items with fewer interactions are reported as a warning"
    )
    max_timestamp: int | None = Field(
        None, description="latest valid timestamp (epoch seconds); empty: the time of validation"
    )
    quarantine: bool = Field(
        False, description="set invalid rows aside (reported, written out) instead of failing"
    )
    sample_rows: int = Field(
        5, ge=0, le=100, description="example rows kept in the report for each failed check"
    )
    drift: DriftRules = Field(
        default_factory=DriftRules,
        description="when drift from the champion's snapshot warns or stops the run",
    )

    @model_validator(mode="after")
    def _scale_is_ordered(self) -> ValidationRules:
        if self.rating_min > self.rating_max:
            raise ValueError(
                f"rating_min ({self.rating_min!r}) must not exceed rating_max ({self.rating_max!r})"
            )
        return self

    def timestamp_limit(self) -> int:
        """The latest valid timestamp: ``max_timestamp``, or now when it is None."""
        return int(time.time()) if self.max_timestamp is None else self.max_timestamp

    def resolved(self) -> ValidationRules:
        """These rules with ``max_timestamp`` fixed to the current time when it was None.

        Quarantine and the suite then judge the timestamps against the same instant.
        """
        if self.max_timestamp is not None:
            return self
        return self.model_copy(update={"max_timestamp": self.timestamp_limit()})
