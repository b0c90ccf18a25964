"""What data a run collects, and how: one frozen configuration (the ``data`` section of a run)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recsys_core.exceptions import ConfigError

SOURCES_HELP = (
    "synthetic[:tiny|small|100k|1m|10m], movielens-100k|1m|10m|20m|25m|32m|latest-small, "
    "a CSV/TSV/Parquet path, or s3://bucket/key"
)


class DataConfig(BaseModel):
    """The source of the interactions and how they are read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field("synthetic", description=SOURCES_HELP)
    synthetic_size: Literal["tiny", "small", "100k", "1m", "10m", "25m", "ml100k", "ml1m"] = Field(
        "100k", description="size of the synthetic data set (MovieLens shapes)"
    )
    seed: int = Field(42, description="seed of the synthetic data")
    columns: str | None = Field(
        None, description="column mapping for files, e.g. user=userId,item=movieId"
    )
    rating_min: float = Field(1.0, description="lowest valid rating (inclusive)")
    rating_max: float = Field(5.0, description="highest valid rating (inclusive)")
    duplicates: Literal["latest", "mean", "refuse"] = Field(
        "latest",
        description="repeated (user, item) pairs: keep the latest rating, average them, or refuse "
        "the data",
    )
    pseudonymize_users: bool = Field(
        False,
        description="replace user ids by HMAC-SHA256 pseudonyms at collection (key: "
        "RECSYS_PSEUDONYM_KEY in the environment or .env)",
    )

    since: str | None = Field(
        None,
        description="database sources: 'last' reads only the rows after the last collection "
        "and merges them with its snapshot (a full read the first time); a watermark "
        "TIMESTAMP[@SENDER][:ID] reads only the rows after it; empty: every row",
    )

    @field_validator("since", mode="before")
    @classmethod
    def _since_form(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value).strip()
        if text != "last":
            from recsys_core.data.database import Watermark

            try:
                Watermark.parse(text)
            except ConfigError as exc:
                raise ValueError(f"since must be 'last' or a watermark: {exc}") from None
        return text

    @model_validator(mode="after")
    def _scale_is_ordered(self) -> DataConfig:
        if self.rating_min >= self.rating_max:
            raise ValueError(
                f"rating_min ({self.rating_min!r}) must be below rating_max ({self.rating_max!r})"
            )
        if self.since is not None:
            from recsys_core.data.database import is_database_source

            if not is_database_source(self.source.strip()):
                raise ValueError(
                    f"since={self.since!r} needs a database source (postgresql://... or "
                    f"sqlite:///...), not {self.source!r}; remove since"
                )
        return self

    @property
    def rating_scale(self) -> tuple[float, float]:
        return (self.rating_min, self.rating_max)
