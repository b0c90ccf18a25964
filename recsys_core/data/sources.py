"""One entry point to collect from any source named by a string.

``synthetic`` or ``synthetic:SIZE`` (tiny, small, 100k, 1m, 10m), ``movielens-100k`` (and 1m, 10m,
20m, 25m, 32m, latest-small), a local file path, an ``s3://bucket/key`` URI, or a database URL
(``postgresql://...?table=events``, ``sqlite:///...``; see ``recsys_core.data.database``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from recsys_core.data import files, movielens, synthetic
from recsys_core.data.duplicates import POLICIES, resolve_duplicates
from recsys_core.data.schema import Collected, as_categorical_ids
from recsys_core.events.tombstones import drop_tombstoned
from recsys_core.exceptions import ConfigError, DataSourceError
from recsys_core.pseudonyms import pseudonymize_users
from recsys_core.redaction import redact

log = logging.getLogger(__name__)


def collect(
    source: str = "synthetic",
    *,
    seed: int = 42,
    synthetic_size: str = "100k",
    columns: str | dict[str, str] | None = None,
    rating_scale: tuple[float, float] = (1.0, 5.0),
    s3_endpoint_url: str | None = None,
    duplicates: str = "latest",
    pseudonym_key: bytes | None = None,
    since: str | None = None,
    categorical_ids: bool = False,
) -> Collected:
    """Collect interactions (and item metadata where the source has it).

    ``since`` (a ``TIMESTAMP[:ID]`` watermark, database sources only) reads only the rows after
    it; ``recsys_core.data.incremental`` merges them into the previous snapshot.

    ``duplicates`` is the policy for a (user, item) pair rated more than once: ``latest``,
    ``mean`` or ``refuse`` (see ``recsys_core.data.duplicates``). The number of rows it
    removed is in ``extra["duplicates_removed"]``. With ``pseudonym_key`` every user id is
    replaced by its pseudonym (``recsys_core.pseudonyms``) before anything is written.

    Users forgotten with ``recsys forget`` (the tombstones of the event store,
    ``RECSYS_EVENTS_URL``) are dropped whatever the source, before any pseudonym is taken; the
    rows removed are in ``extra["tombstoned_removed"]``.

    ``categorical_ids``: the ``user`` and ``item`` columns as categoricals of the text ids
    (``recsys_core.data.schema.normalize_interactions``; a Parquet file's dictionary codes are
    kept), for callers that map the ids to indices next: every step reads the codes.
    """
    if duplicates not in POLICIES:  # before reading anything
        raise ConfigError(
            f"unknown duplicates policy {duplicates!r}; use one of {', '.join(POLICIES)}"
        )
    if since is not None and not _database().is_database_source((source or "").strip()):
        raise ConfigError(
            f"since={since!r} needs a database source (postgresql://... or sqlite:///...), not "
            f"{redact(source)!r}: other sources have no watermark to resume from; remove since"
        )
    collected = _read_source(
        source,
        seed=seed,
        synthetic_size=synthetic_size,
        columns=columns,
        rating_scale=rating_scale,
        s3_endpoint_url=s3_endpoint_url,
        since=since,
        categorical_ids=categorical_ids,
    )
    frame, removed = resolve_duplicates(
        collected.interactions, duplicates, origin=repr(redact(collected.source or source))
    )
    if removed:
        log.warning(
            "%s: %d repeated (user, item) row(s) removed by the duplicates policy %r",
            redact(collected.source),
            removed,
            duplicates,
        )
    frame, forgotten = drop_tombstoned(frame)  # raw ids: before any pseudonym is taken
    if pseudonym_key is not None:
        frame = pseudonymize_users(frame, pseudonym_key)
    if categorical_ids:  # the sources that are not files, and the pseudonyms
        frame = as_categorical_ids(frame)
    collected.interactions = frame
    collected.extra["duplicates_removed"] = removed
    collected.extra["tombstoned_removed"] = forgotten
    collected.extra["pseudonymized"] = pseudonym_key is not None
    return collected


def _read_source(
    source: str,
    *,
    seed: int,
    synthetic_size: str,
    columns: str | dict[str, str] | None,
    rating_scale: tuple[float, float],
    s3_endpoint_url: str | None,
    since: str | None = None,
    categorical_ids: bool = False,
) -> Collected:
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
        return files.load_s3(
            source,
            mapping,
            endpoint_url=s3_endpoint_url,
            rating_scale=rating_scale,
            categorical_ids=categorical_ids,
        )
    if "://" in source and _database().is_database_source(source):
        return _database().load_database(source, columns, rating_scale=rating_scale, since=since)
    if "://" in source:
        raise DataSourceError(
            f"unsupported source {redact(source)!r}; use synthetic, movielens-<release>, a file "
            "path, an s3:// URI or a postgresql:// or sqlite:/// URL"
        )
    path = Path(source).expanduser()
    if not path.exists():
        raise DataSourceError(
            f"file not found: {redact(source)!r}, and it is not a MovieLens release or "
            "'synthetic' either. Sources: synthetic[:tiny|small|100k|1m|10m|25m], "
            "movielens-100k|1m|10m|20m|25m|32m|latest-small, a CSV/TSV/Parquet path, or "
            "s3://bucket/key"
        )
    return files.load_file(
        path, mapping, rating_scale=rating_scale, categorical_ids=categorical_ids
    )


def _database():
    """``recsys_core.data.database``, imported when a source may be a database: SQLAlchemy
    (~0.5 s to import) is not loaded by the commands that read files."""
    from recsys_core.data import database

    return database
