"""One entry point to collect from any source named by a string.

``synthetic`` or ``synthetic:SIZE`` (tiny, small, 100k, 1m, 10m), ``movielens-100k`` (and 1m, 10m,
20m, 25m, 32m, latest-small), a local file path, or an ``s3://bucket/key`` URI.
"""

from __future__ import annotations

from pathlib import Path

from recsys_core.data import files, movielens, synthetic
from recsys_core.data.schema import Collected
from recsys_core.exceptions import DataSourceError


def collect(
    source: str = "synthetic",
    *,
    seed: int = 42,
    synthetic_size: str = "100k",
    columns: str | dict[str, str] | None = None,
    rating_scale: tuple[float, float] = (1.0, 5.0),
    s3_endpoint_url: str | None = None,
) -> Collected:
    """Collect interactions (and item metadata where the source has it)."""
    source = (source or "synthetic").strip()
    if source == "synthetic" or source.startswith("synthetic:"):
        size = source.partition(":")[2] or synthetic_size
        return synthetic.generate(synthetic.config_for(size, seed=seed))
    # an existing path wins: the folder of an unpacked release is named ml-..., such as
    # ml-latest-small/ratings.csv
    if source.startswith(("movielens-", "ml-")) and not Path(source).expanduser().exists():
        return movielens.load(source)
    mapping = files.parse_column_map(columns)
    if source.startswith("s3://"):
        return files.load_s3(source, mapping, endpoint_url=s3_endpoint_url,
                             rating_scale=rating_scale)
    if "://" in source:
        raise DataSourceError(
            f"unsupported source {source!r}; use synthetic, movielens-<release>, a file path or "
            "an s3:// URI"
        )
    path = Path(source).expanduser()
    if not path.exists():
        raise DataSourceError(
            f"source {source!r} is not a file, a MovieLens release or 'synthetic'. Sources: "
            "synthetic[:tiny|small|100k|1m|10m], movielens-100k|1m|10m|20m|25m|32m|latest-small, "
            "a CSV/TSV/Parquet path, or s3://bucket/key"
        )
    return files.load_file(path, mapping, rating_scale=rating_scale)
