"""Item titles from item metadata, aligned with an item vocabulary (what explanations name)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def item_titles(item_ids: np.ndarray, meta: pd.DataFrame | None) -> np.ndarray | None:
    """The title of each of ``item_ids``, in that order, from item metadata with ``item`` and
    ``title`` columns (``recsys_core.data.schema``); ``''`` where the metadata names none. None
    without metadata or without any title. A fitted model keeps it as ``item_titles_``."""
    if meta is None or "title" not in meta or "item" not in meta:
        return None
    known = meta.drop_duplicates("item", keep="last")
    by_id = pd.Series(known["title"].to_numpy(), index=known["item"].astype(str).to_numpy())
    out = by_id.reindex(np.asarray(item_ids).astype(str)).fillna("").astype(str).to_numpy()
    if not any(out):
        return None
    return out.astype(np.str_)
