"""Forgetting users in the batch recommendations: their rows leave every recorded output.

Each batch run is an MLflow run tagged ``recsys.kind=batch`` whose tag ``recsys.output`` names
the partition it wrote (a local folder, relative to the folder the batch ran in, or
``s3://bucket/prefix/model_version=<v>``). Every Parquet part of every such partition loses the
rows of the forgotten users; a part is rewritten to a temporary file and then replaces the old
one (``os.replace`` locally, one ``PUT`` of the whole object on S3), so a reader never sees a
half-written part. A partition that no longer exists (removed, or replaced by a later run of the
same version) is skipped.

The run's ``batch/sample.csv`` and the flow's Prefect artifact carry no user id (the sample's
users are numbered, :func:`recsys_core.serving.batch.recommend_all`); a sample logged before
that, with ids, loses the forgotten users' rows here too.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.exceptions import TrackingError
from recsys_core.redaction import redact
from recsys_core.tracking.forget_versions import rewrite_table

log = logging.getLogger(__name__)

BATCH_TAG = "recsys.kind"
OUTPUT_TAG = "recsys.output"
SAMPLE = "batch/sample.csv"


def batch_runs(client: Any) -> list[Any]:
    """Every batch run of every experiment (newest first)."""
    experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
    if not experiments:
        return []
    return list(client.search_runs(experiments, f"tags.`{BATCH_TAG}` = 'batch'", max_results=50000))


def forget_in_batches(users: Iterable[str]) -> dict[str, int]:
    """Drop ``users`` from every batch output recorded in MLflow; rows removed per location
    (only the locations that held one of them)."""
    from mlflow import MlflowClient

    try:
        return _forget(MlflowClient(), set(map(str, users)))
    except Exception as exc:
        raise TrackingError(
            f"forgetting in the batch outputs stopped: {redact(str(exc))}. Check the tracking "
            "server and the output store (recsys doctor) and run `recsys forget` again to "
            "complete it"
        ) from exc


def _forget(client: Any, gone: set[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for run in batch_runs(client):
        location = run.data.tags.get(OUTPUT_TAG)
        if location and location not in out:
            removed = (
                _forget_in_s3(location, gone)
                if location.startswith("s3://")
                else _forget_in_folder(Path(location), gone)
            )
            if removed:
                out[location] = removed
        removed = _forget_in_sample(client, run.info.run_id, gone)
        if removed:
            out[f"runs:/{run.info.run_id}/{SAMPLE}"] = removed
    return {k: v for k, v in out.items() if v}


def _forget_in_folder(folder: Path, users: set[str]) -> int:
    if not folder.is_dir():
        return 0
    return sum(rewrite_table(part, users) for part in sorted(folder.glob("*.parquet")))


def _forget_in_s3(location: str, users: set[str]) -> int:
    from recsys_core.data.files import s3_client, split_s3_uri

    bucket, prefix = split_s3_uri(location)
    client = s3_client()
    removed = 0
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    keys = [
        o["Key"]
        for page in pages
        for o in page.get("Contents", [])
        if o["Key"].endswith(".parquet")
    ]
    for key in keys:
        with tempfile.TemporaryDirectory(prefix="recsys-forget-") as tmp:
            local = Path(tmp) / "part.parquet"
            client.download_file(bucket, key, str(local))
            n = rewrite_table(local, users)
            if n:
                client.upload_file(str(local), bucket, key)
                removed += n
    return removed


def _forget_in_sample(client: Any, run_id: str, users: set[str]) -> int:
    import mlflow

    names = {Path(a.path).name for a in client.list_artifacts(run_id, "batch")}
    if Path(SAMPLE).name not in names:
        return 0
    with tempfile.TemporaryDirectory(prefix="recsys-forget-") as tmp:
        path = Path(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=SAMPLE, dst_path=tmp)
        )
        frame = pd.read_csv(path, dtype={"user": str})
        if "user" not in frame.columns:
            return 0
        drop = frame["user"].astype(str).isin(users)
        if not drop.any():
            return 0
        frame[~drop].to_csv(path, index=False)
        client.log_artifact(run_id, str(path), "batch")
        log.info("batch run %s: %d sample row(s) removed", run_id, int(drop.sum()))
        return int(drop.sum())
