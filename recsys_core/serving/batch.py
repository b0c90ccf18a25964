"""Batch scoring: the top-k of every user (or a given list) written as Parquet.

Users are scored in chunks, each one matrix product (:meth:`Scorer.score_block`), and the
compiled top-k selection (``recsys_core.models.top_k``) keeps each user's k best unseen items
(the seen items are stepped over, not masked in a copy), so that memory stays near
``memory_budget`` whatever the number of users. The output is partitioned by model version::

    <out>/model_version=<version>/part-00000.parquet   (user, rank, item, score)
    <out>/model_version=<version>/_SUCCESS              (written last: the partition is complete)

``out`` is a local folder or an ``s3://bucket/prefix`` (parts are written to a temporary file,
then uploaded one at a time). A rerun for the same version replaces the partition.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from recsys_core.exceptions import ConfigError, DataError
from recsys_core.models.base import Recommender
from recsys_core.models.top_k import no_exclusions, top_k_jobs
from recsys_core.serving.scorer import Scorer

log = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [("user", pa.string()), ("rank", pa.int16()), ("item", pa.string()), ("score", pa.float32())]
)
DEFAULT_MEMORY_BUDGET = 512 * 1024**2
ROWS_PER_FILE = 2_000_000
SUCCESS = "_SUCCESS"

Progress = Callable[[int, int], None]
"""Called after each chunk with the users done and the users in all."""


@dataclass(frozen=True)
class BatchResult:
    location: str
    """The partition written (``<out>/model_version=<version>``)."""
    rows: int
    users: int
    cold_users: int
    """Requested users the model has never seen (they got the most popular items)."""
    files: list[str]
    sample: pd.DataFrame
    """The first rows, users numbered (:func:`numbered_users`): no user id."""
    seconds: float


def chunk_size(n_items: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Users per chunk so that a chunk's working arrays fit in ``memory_budget`` bytes.

    A chunk holds its float32 scores (4 bytes per (user, item)) and the temporaries of the
    product that makes them; 16 bytes per cell leaves room for a scorer whose block goes
    through float64 (the families scored by their own ``_score_users``).
    """
    return max(1, int(memory_budget // (16 * max(1, n_items))))


def recommend_all(
    model: Recommender | Scorer,
    out: str | Path,
    *,
    model_version: str,
    users: Iterable | None = None,
    k: int = 10,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    exclude_seen: bool = True,
    progress: Progress | None = None,
    sample_rows: int = 20,
    threads: int | None = None,
) -> BatchResult:
    """Write the top-``k`` items of ``users`` (default: every user the model knows).

    Parameters
    ----------
    model
        A fitted model, or a :class:`Scorer` built from one.
    out
        Local folder or ``s3://bucket/prefix``; the partition ``model_version=<v>`` goes under it.
    users
        Raw user ids; unknown ones get the most popular unseen items.
    memory_budget
        Bytes the working arrays of all chunks in flight may take together.
    threads
        Chunks scored at the same time (matrix products and the top-k selection release the
        GIL);
        default: the CPUs of the machine, at most 4. Parts are written in user order.
    """
    if k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if not str(model_version).strip() or "/" in str(model_version):
        raise ConfigError(
            f"model_version must be a non-empty name without '/', got {model_version!r}"
        )
    start = time.perf_counter()
    scorer = model if isinstance(model, Scorer) else Scorer(model)
    vocab = scorer.model.user_vocab_
    if users is None:
        ids = vocab.ids.astype(str)
        idx = np.arange(len(ids), dtype=np.int64)
    else:
        ids = np.asarray(pd.unique(pd.Series(list(users), dtype=object).astype(str)), dtype=str)
        if ids.size == 0:
            raise ConfigError(
                "the list of users to score is empty; give user ids or none (every user)"
            )
        idx = vocab.index(ids).astype(np.int64)
    kk = min(k, scorer.n_items)
    threads = max(1, threads or min(4, os.cpu_count() or 1))
    per_chunk = chunk_size(scorer.n_items, memory_budget // threads)
    partition = f"{str(out).rstrip('/')}/model_version={model_version}"
    sink = _Sink(partition)
    rows = 0
    sample = None
    bounds = [(lo, min(ids.size, lo + per_chunk)) for lo in range(0, ids.size, per_chunk)]
    pending: deque = deque()
    try:
        with ThreadPoolExecutor(threads, thread_name_prefix="recsys-batch") as pool:
            for n in range(len(bounds)):
                # at most `threads` chunks in flight: memory stays within the budget
                while len(pending) < threads and n + len(pending) < len(bounds):
                    lo, hi = bounds[n + len(pending)]
                    pending.append(pool.submit(_top_block, scorer, idx[lo:hi], kk, exclude_seen))
                top, scores = pending.popleft().result()
                lo, hi = bounds[n]
                table = _table(ids[lo:hi], top, scores, scorer.item_ids)
                del top, scores
                sink.write(table)
                rows += table.num_rows
                if sample is None:
                    sample = numbered_users(table.slice(0, sample_rows).to_pandas())
                if progress is not None:
                    progress(hi, ids.size)
        files = sink.close()
    except BaseException:
        for future in pending:
            future.cancel()
        sink.abort()
        raise
    seconds = time.perf_counter() - start
    log.info("batch: %d rows for %d users in %.1f s -> %s", rows, ids.size, seconds, partition)
    return BatchResult(
        partition,
        rows,
        int(ids.size),
        int((idx < 0).sum()),
        files,
        sample if sample is not None else pd.DataFrame(),
        seconds,
    )


def numbered_users(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its user ids replaced by ``user-1``, ``user-2``, ... in order of first
    appearance: the sample shown in MLflow and Prefect carries no user id (nothing there for
    forgetting to find), the Parquet output keeps them."""
    codes = pd.factorize(frame["user"])[0] + 1
    return frame.assign(user=[f"user-{c}" for c in codes])


def _top_block(scorer: Scorer, u: np.ndarray, k: int, exclude_seen: bool):
    """Top-``k`` item indices and scores of one chunk (best first; ``-1``/``-inf`` where
    fewer), by the compiled selection the models and the online scorer use
    (:func:`recsys_core.models.top_k.top_k_jobs`): the seen items are stepped over, never
    written into the scores, and ties go to the lower item index."""
    n = u.size
    known = np.flatnonzero(u >= 0)
    cold = np.flatnonzero(u < 0)
    top = np.full((n, k), -1, dtype=np.int64)
    top_scores = np.full((n, k), -np.inf, dtype=np.float64)
    exclude = no_exclusions(n)
    if known.size and exclude_seen:
        seen = scorer.seen_block(u[known])
        per_row = np.zeros(n, dtype=np.int64)
        per_row[known] = np.diff(seen.indptr)
        indptr = np.concatenate([[0], np.cumsum(per_row)])
        exclude = sp.csr_matrix((seen.data, seen.indices, indptr), shape=(n, scorer.n_items))
    if known.size:
        block = np.ascontiguousarray(scorer.score_block(u[known]))
        top_k_jobs(block, np.arange(known.size, dtype=np.int64), known, exclude, top, top_scores)
    if cold.size:  # one popularity row for every cold user, never copied per user
        popular = np.asarray(scorer.popular_scores())[None, :]
        top_k_jobs(popular, np.zeros(cold.size, np.int64), cold, exclude, top, top_scores)
    return top, top_scores


def _table(
    user_ids: np.ndarray, top: np.ndarray, scores: np.ndarray, item_ids: np.ndarray
) -> pa.Table:
    n, k = top.shape
    valid = (top >= 0).ravel()
    flat = top.ravel()[valid]
    return pa.table(
        {
            "user": pa.array(np.repeat(user_ids, k)[valid], pa.string()),
            "rank": pa.array(np.tile(np.arange(1, k + 1, dtype=np.int16), n)[valid], pa.int16()),
            "item": pa.array(item_ids[flat], pa.string()),
            "score": pa.array(scores.ravel()[valid], pa.float32()),
        },
        schema=SCHEMA,
    )


class _Sink:
    """Parquet parts of ``ROWS_PER_FILE`` rows under a local folder or an S3 prefix."""

    def __init__(self, partition: str) -> None:
        self.partition = partition
        self.s3 = partition.startswith("s3://")
        self._tmp: Path | None = None
        if self.s3:  # parts wait in a temporary folder until uploaded
            self._tmp = self.folder = Path(tempfile.mkdtemp(prefix="recsys-batch-"))
        else:
            self.folder = Path(partition)
        self._clear()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files: list[str] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._path = self.folder / f"part-{len(self.files):05d}.parquet"
            self._writer = pq.ParquetWriter(self._path, SCHEMA, compression="zstd")
            self._rows = 0
        self._writer.write_table(table)
        self._rows += table.num_rows
        if self._rows >= ROWS_PER_FILE:
            self._finish_part()

    def _finish_part(self) -> None:
        assert self._writer is not None
        self._writer.close()
        self._writer = None
        name = self._path.name
        if self.s3:
            self._upload(self._path, name)
            self._path.unlink()
        self.files.append(f"{self.partition}/{name}")

    def close(self) -> list[str]:
        if self._writer is not None:
            self._finish_part()
        marker = self.folder / SUCCESS
        marker.write_text("")
        if self._tmp is not None:
            self._upload(marker, SUCCESS)
            shutil.rmtree(self._tmp, ignore_errors=True)
        return self.files

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _upload(self, local: Path, name: str) -> None:
        from recsys_core.data.files import s3_client, split_s3_uri

        bucket, prefix = split_s3_uri(self.partition)
        try:
            s3_client().upload_file(str(local), bucket, f"{prefix}/{name}")
        except Exception as exc:
            raise DataError(
                f"cannot write {self.partition}/{name} to S3: {exc}. Check the "
                "bucket, AWS_ENDPOINT_URL and the credentials"
            ) from exc

    def _clear(self) -> None:
        """Remove an earlier run's parts of the same version."""
        if not self.s3:
            if Path(self.partition).exists():
                shutil.rmtree(self.partition)
            return
        from recsys_core.data.files import s3_client, split_s3_uri

        bucket, prefix = split_s3_uri(self.partition)
        client = s3_client()
        try:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix + "/"
            )
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        except Exception as exc:
            raise DataError(
                f"cannot prepare {self.partition} on S3: {exc}. Check the bucket, "
                "AWS_ENDPOINT_URL and the credentials"
            ) from exc
