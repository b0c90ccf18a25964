"""Features: the leak-free split of a snapshot, written for the training and evaluation tasks."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.data import snapshot
from recsys_core.features import prepare
from recsys_core.features.splits import SplitConfig
from tasks._runtime import logger


@task(name="build-features", cache_policy=NO_CACHE)
def build_features(
    snap: snapshot.Snapshot,
    split: SplitConfig,
    folder: str,
    frames: tuple[pd.DataFrame | None, pd.DataFrame | None] | None = None,
) -> prepare.Features:
    """Split the snapshot and write train/test Parquet files into ``folder``; ``frames``: the
    snapshot's interactions and items when the caller has read them already."""
    frame, items = frames if frames is not None else (None, None)
    if frame is None:
        frame, items = snapshot.read(snap)
    feats = prepare.build(frame, items, split, folder)
    logger().info("split %s", feats.info)
    return feats
