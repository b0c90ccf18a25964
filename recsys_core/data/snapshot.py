"""Collected data frozen as Parquet and named by a content digest (the data version)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys_core.data.schema import Collected

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

    @property
    def interactions_path(self) -> Path:
        return Path(self.path) / SNAPSHOT_FILE

    @property
    def items_path(self) -> Path:
        return Path(self.path) / ITEMS_FILE

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def digest(frame: pd.DataFrame) -> str:
    """sha256 of the table's content (values and column names, not the file encoding)."""
    h = hashlib.sha256()
    h.update(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
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
    }
    if not (folder / META_FILE).exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (SNAPSHOT_FILE + ".tmp")
        frame.to_parquet(tmp, index=False)
        tmp.replace(folder / SNAPSHOT_FILE)
        if collected.items is not None:
            collected.items.to_parquet(folder / ITEMS_FILE, index=False)
        # the metadata is written last: its presence marks a complete snapshot
        (folder / META_FILE).write_text(json.dumps(meta, indent=2))
    return Snapshot(path=str(folder), **meta)


def load_meta(path: str | Path) -> Snapshot:
    folder = Path(path)
    meta = json.loads((folder / META_FILE).read_text())
    return Snapshot(path=str(folder), **meta)


def read(snapshot: Snapshot) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read the interactions (and item metadata if any) of a snapshot."""
    frame = pd.read_parquet(snapshot.interactions_path)
    items = pd.read_parquet(snapshot.items_path) if snapshot.items_path.exists() else None
    return frame, items
