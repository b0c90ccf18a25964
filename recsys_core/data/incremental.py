"""Incremental collection: read only the rows after the last collection, merge them with its
snapshot into a new one.

A collection from a database records its watermark (``TIMESTAMP@SENDER:ID`` of the last row
read, see ``recsys_core.data.database.Watermark``) in the snapshot it writes
(``snapshot.json``) and in a small lineage file beside the snapshots, one per source::

    <data_dir>/snapshots/lineage-<key>.json   {"source", "digest", "path", "watermark", ...}

``since="last"`` finds that file, reads the rows after its watermark and merges them with its
snapshot: the previous rows, then the new ones, one row per (user, item) pair by the duplicates
policy (``latest``: a re-rated pair keeps its latest rating, as a full read would). Repeated
event ids among the new rows are dropped by the reader. The merged table is a new snapshot, with
a new digest, the new watermark, and counts of what the new rows brought (``collection``):
events of users and items the previous snapshot did not know are accepted as new, and counted.

Why a file beside the snapshots rather than a search of MLflow's runs: the watermark is only
usable with the snapshot it belongs to, and both live (and are deleted) together under the same
folder; collection needs no tracking server, no experiment name, and works the same from the
command line, a test or a flow. The lineage moves when a collection succeeds, whatever the run
does later: the new snapshot holds every row read so far, so nothing is lost when a run fails
after collecting. Two collections at once each merge into the same previous snapshot and each
write a complete lineage (atomically); the last one written wins, and the next collection reads
from its watermark, so no row is skipped.

A lineage without its snapshot (deleted, another machine) is an error that says to collect once
without ``since``; no lineage at all is a full read, said in the log.

The watermark follows the table's timestamp column, the time the sender gave each event: an
event that arrives later with a timestamp at or before the watermark (a client sending a day's
events late) is not read by ``since="last"``. A full read (``since`` unset) now and then takes
them in, and starts the history again from its own watermark.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.data import snapshot
from recsys_core.data.database import Watermark, is_database_source
from recsys_core.data.duplicates import resolve_duplicates
from recsys_core.data.sources import collect
from recsys_core.events.engine import safe_url
from recsys_core.exceptions import ConfigError, DataError

log = logging.getLogger(__name__)

LAST = "last"


@dataclass(frozen=True)
class Lineage:
    """The last successful collection of one source: its snapshot and watermark."""

    source: str
    digest: str
    path: str
    watermark: str | None
    collected_at: int


def lineage_file(root: str | Path, source: str, columns: str | dict | None = None) -> Path:
    """Where the lineage of ``source`` (read with the column mapping ``columns``) is kept."""
    key = json.dumps([safe_url(source.strip()), columns], sort_keys=True, default=str)
    return Path(root) / f"lineage-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def last_collection(
    root: str | Path, source: str, columns: str | dict | None = None
) -> Lineage | None:
    """The lineage recorded by the last collection of ``source`` under ``root``, or None."""
    path = lineage_file(root, source, columns)
    if not path.exists():
        return None
    try:
        return Lineage(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"the lineage file {path} is unreadable ({exc}); delete it and collect "
            "once without since (a full read)"
        ) from None


def record(
    root: str | Path, source: str, snap: snapshot.Snapshot, columns: str | dict | None = None
) -> Path:
    """Record ``snap`` as the last collection of ``source`` (written atomically)."""
    path = lineage_file(root, source, columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = Lineage(safe_url(source), snap.digest, snap.path, snap.watermark, int(time.time()))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(body.__dict__, indent=2))
    tmp.replace(path)
    return path


def collect_snapshot(
    source: str,
    root: str | Path,
    *,
    since: str | None = None,
    columns: str | dict[str, str] | None = None,
    duplicates: str = "latest",
    **options: Any,
) -> snapshot.Snapshot:
    """Collect ``source`` into a snapshot under ``root`` (see the module docstring).

    Parameters
    ----------
    since
        None: read everything. ``"last"``: the rows after the last collection of this source,
        merged with its snapshot (everything when there was none). A watermark
        ``TIMESTAMP[@SENDER][:ID]``: only the rows after it, not merged.
    options
        Passed to ``recsys_core.data.collect`` (``seed``, ``rating_scale``, ...).

    Raises
    ------
    DataError
        The last collection's snapshot is missing or altered.
    ConfigError
        ``since`` with a source that is not a database, or a bad watermark.
    """
    is_db = is_database_source((source or "").strip())
    if since is not None and not is_db:
        raise ConfigError(
            f"since={since!r} needs a database source (postgresql://... or sqlite:///...), not "
            f"{safe_url(source)!r}: other sources have no watermark to resume from; remove since"
        )
    base: tuple[Lineage, pd.DataFrame] | None = None
    read_since: str | None = None
    if since == LAST:
        previous = last_collection(root, source, columns)
        if previous is None:
            log.info(
                "no previous collection of %s under %s: reading every row (a full read); "
                "the next run with since=last reads only newer rows",
                safe_url(source),
                root,
            )
        else:
            base = (previous, _base_frame(previous))
            read_since = previous.watermark
    elif since is not None:
        read_since = str(Watermark.parse(since))
    collected = collect(source, columns=columns, duplicates=duplicates, since=read_since, **options)
    new = collected.interactions
    info: dict[str, Any] = {
        "mode": "incremental" if base is not None else ("since" if read_since else "full"),
        "since": read_since,
        # rows of the source (less repeated event ids), before the duplicates policy made one
        # row per (user, item) pair of them
        "rows_read": int(len(new)) + int(collected.extra.get("duplicates_removed", 0)),
        "rows": int(len(new)),
        "event_ids_removed": int(collected.extra.get("event_ids_removed", 0)),
        "duplicates_removed": int(collected.extra.get("duplicates_removed", 0)),
    }
    if base is not None:
        previous, old = base
        info.update(_novelty(old, new), base_digest=previous.digest, base_rows=int(len(old)))
        merged, replaced = resolve_duplicates(
            pd.concat([old, new], ignore_index=True),
            duplicates,
            origin=f"the snapshot {previous.digest[:16]} and the rows after {read_since}",
        )
        info["pairs_updated"] = int(replaced)
        collected.interactions = merged
        log.info(
            "%s: %d new row(s) after %s merged into snapshot %s (%d rows): %d rows, "
            "%d pair(s) updated",
            safe_url(source),
            len(new),
            read_since,
            previous.digest[:16],
            len(old),
            len(merged),
            replaced,
        )
    collected.extra["collection"] = info
    snap = snapshot.write(collected, root)
    if is_db and snap.watermark is not None and info["mode"] != "since":
        # a read after an explicit watermark is partial: the history goes on from the last one
        record(root, source, snap, columns)
    return snap


def _base_frame(previous: Lineage) -> pd.DataFrame:
    meta = Path(previous.path) / snapshot.META_FILE
    if not meta.exists():
        raise DataError(
            f"the last collection of {previous.source} (watermark {previous.watermark}) was "
            f"merged into snapshot {previous.digest[:16]}, which is no longer at "
            f"{previous.path}; since=last can only add rows to it. Run once without since (a "
            "full read) to start a new history"
        )
    return snapshot.read(snapshot.load_meta(previous.path))[0]


def _novelty(old: pd.DataFrame, new: pd.DataFrame) -> dict[str, int]:
    """Events of users and items the previous snapshot did not know (accepted as new)."""
    out: dict[str, int] = {}
    for col in ("user", "item"):
        unknown = ~new[col].isin(pd.Index(old[col].unique()))
        out[f"events_new_{col}s"] = int(unknown.sum())
        out[f"new_{col}s"] = int(new.loc[unknown, col].nunique())
    return out


def to_markdown(info: dict[str, Any] | None) -> str:
    """A section of the validation report on how the data was collected (information only:
    events of new users and items are accepted, repeated event ids were dropped)."""
    if not info:
        return ""
    lines = ["## Collection", ""]
    if info.get("mode") == "incremental":
        lines.append(
            f"Incremental: {info['rows_read']:,} new row(s) after watermark "
            f"`{info['since']}`, merged into snapshot `{info['base_digest'][:16]}` "
            f"({info['base_rows']:,} rows; {info['pairs_updated']:,} pair(s) updated)."
        )
    else:
        lines.append(
            f"{'Rows after ' + repr(info['since']) if info.get('since') else 'Full read'}"
            f": {info['rows_read']:,} row(s)."
        )
    lines += ["", "| | count | outcome |", "|---|---:|---|"]
    if "new_users" in info:
        lines += [
            f"| events of new users ({info['new_users']:,} users) | "
            f"{info['events_new_users']:,} | accepted (new) |",
            f"| events of new items ({info['new_items']:,} items) | "
            f"{info['events_new_items']:,} | accepted (new) |",
        ]
    lines += [
        f"| repeated event ids | {info['event_ids_removed']:,} | dropped |",
        f"| repeated (user, item) pairs | {info['duplicates_removed']:,} | resolved by "
        "the duplicates policy |",
        "",
    ]
    return "\n".join(lines)
