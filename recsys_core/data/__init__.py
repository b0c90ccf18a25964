"""Data collection: synthetic generator, MovieLens, local files and S3, snapshots."""

from recsys_core.data.schema import COLUMNS, Collected, normalize_interactions
from recsys_core.data.sources import collect

__all__ = ["COLUMNS", "Collected", "collect", "normalize_interactions"]
