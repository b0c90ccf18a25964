"""Collected data frozen as Parquet and named by a content digest (the data version).

The digest is checked whenever a snapshot's content is used: ``read`` recomputes it and refuses
a snapshot whose content no longer matches (``DataError``: the recorded lineage would be false),
and ``write`` rebuilds a cached snapshot that was altered, from the data in hand, rather than
reusing it under a digest it no longer has.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.data.schema import Collected
from recsys_core.exceptions import DataError

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "interactions.parquet"
ITEMS_FILE = "items.parquet"
META_FILE = "snapshot.json"


@dataclass(frozen=True)
class Snapshot:
    """A reference to a frozen data set: its folder, digest and a few counts."""

    path: str
    digest: str
    source: str
    n_rows: int
    n_users: int
    n_items: int
    rating_min: float
    rating_max: float
    has_items: bool
    watermark: str | None = None
    """The last row a database collection read (``TIMESTAMP@SENDER:ID``); None for other sources."""
    collection: dict[str, Any] | None = None
    """How the data was collected: ``mode`` (full or incremental), ``base_digest`` (the
    snapshot an incremental collection was merged into), rows read, event ids and repeated pairs
    dropped, events of users and items the base did not know (``recsys_core.data.incremental``).
    """
    tombstoned_removed: int = 0
    """Rows of forgotten users that collection dropped (``recsys forget``)."""

    @property
    def interactions_path(self) -> Path:
        return Path(self.path) / SNAPSHOT_FILE

    @property
    def items_path(self) -> Path:
        return Path(self.path) / ITEMS_FILE

    def to_dict(self) -> dict:
        return dict(self.__dict__)


_DIGEST_ROWS = 1 << 20
"""Rows hashed at a time: each row's hash depends on that row alone, so the digest is the same
as one pass over the table, without the whole table's temporaries at once (gigabytes at 25M)."""


def digest(frame: pd.DataFrame) -> str:
    """sha256 of the table's content (values and column names, not the file encoding)."""
    h = hashlib.sha256()
    h.update(",".join(map(str, frame.columns)).encode())
    for start in range(0, len(frame), _DIGEST_ROWS):
        rows = frame.iloc[start : start + _DIGEST_ROWS]
        h.update(pd.util.hash_pandas_object(rows, index=False).to_numpy())
    return h.hexdigest()


def write(collected: Collected, root: str | Path) -> Snapshot:
    """Write ``collected`` under ``root/<digest[:16]>/``; an identical snapshot is reused."""
    frame = collected.interactions
    d = digest(frame)
    folder = Path(root) / d[:16]
    meta = {
        "digest": d,
        "source": collected.source,
        "n_rows": int(len(frame)),
        "n_users": int(frame["user"].nunique()),
        "n_items": int(frame["item"].nunique()),
        "rating_min": float(collected.rating_scale[0]),
        "rating_max": float(collected.rating_scale[1]),
        "has_items": collected.items is not None,
        "watermark": collected.extra.get("watermark"),
        "collection": collected.extra.get("collection"),
        "tombstoned_removed": int(collected.extra.get("tombstoned_removed", 0)),
    }
    reuse = (folder / META_FILE).exists()
    if reuse:
        found = _content_digest(folder / SNAPSHOT_FILE)
        if found != d:
            log.warning(
                "snapshot %s was altered after it was written (its content digest is %s, its "
                "name says %s); rebuilding it from the collected data",
                folder,
                (found or "unreadable")[:16],
                d[:16],
            )
            (folder / META_FILE).unlink()
            reuse = False
    if not reuse:
        folder.mkdir(parents=True, exist_ok=True)
        # each writer its own temporary file: two runs collecting the same data at once both
        # end with a complete snapshot
        tmp = _tmp_name(folder / SNAPSHOT_FILE)
        frame.to_parquet(tmp, index=False)
        tmp.replace(folder / SNAPSHOT_FILE)
        if collected.items is not None:
            tmp = _tmp_name(folder / ITEMS_FILE)
            collected.items.to_parquet(tmp, index=False)
            tmp.replace(folder / ITEMS_FILE)
    # the metadata is written last: its presence marks a complete snapshot. A reused snapshot
    # gets the lineage of this collection (its watermark, how it was collected)
    _write_atomically(folder / META_FILE, json.dumps(meta, indent=2))
    return Snapshot(path=str(folder), **meta)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def _write_atomically(path: Path, text: str) -> None:
    tmp = _tmp_name(path)
    tmp.write_text(text)
    tmp.replace(path)


def load_meta(path: str | Path) -> Snapshot:
    folder = Path(path)
    meta = json.loads((folder / META_FILE).read_text())
    known = {f.name for f in fields(Snapshot)} - {"path"}
    return Snapshot(path=str(folder), **{k: v for k, v in meta.items() if k in known})


def read(snapshot: Snapshot) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read the interactions (and item metadata if any) of a snapshot, checking its digest.

    Raises
    ------
    DataError
        The file is missing or unreadable, or its content no longer matches the digest the
        snapshot was written under (it was edited or corrupted since).
    """
    try:
        frame = pd.read_parquet(snapshot.interactions_path)
    except Exception as exc:
        raise DataError(
            f"snapshot {snapshot.digest[:16]} cannot be read from {snapshot.interactions_path} "
            f"({exc}); delete {snapshot.path} and collect the data again"
        ) from exc
    found = digest(frame)
    if found != snapshot.digest:
        raise DataError(
            f"snapshot {snapshot.digest[:16]} at {snapshot.path} was altered after it was written: "
            f"its content digest is {found[:16]}, not {snapshot.digest[:16]} ({len(frame)} rows "
            f"found, {snapshot.n_rows} recorded). It is not used, as its lineage would be false; "
            f"delete {snapshot.path} and collect the data again"
        )
    items = pd.read_parquet(snapshot.items_path) if snapshot.items_path.exists() else None
    return frame, items


def _content_digest(path: Path) -> str | None:
    try:
        return digest(pd.read_parquet(path))
    except Exception:
        return None
