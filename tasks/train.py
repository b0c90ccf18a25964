"""Train: fit one model on the training split (never retried: a failure is a real failure)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.data.snapshot import digest
from recsys_core.features.prepare import Features
from recsys_core.models.spec import ModelSpec
from tasks._runtime import logger


@task(name="train", cache_policy=NO_CACHE)
def train_model(
    feats: Features, spec: ModelSpec, folder: str
) -> tuple[str, list[dict[str, float]]]:
    """Fit the model of ``spec``; return the saved model folder and the per-epoch curve."""
    train, test = feats.train_set()
    rec = spec.create()
    with _epoch_progress(spec) as on_epoch:
        rec.fit(train, eval_data=test if rec.predicts_ratings else None, callback=on_epoch)
    if rec.history_:
        last = {k: round(v, 5) for k, v in rec.history_[-1].items() if k != "epoch"}
        logger().info("trained %s: %d epoch(s), last %s", spec.name, len(rec.history_), last)
    out = rec.save(Path(folder) / "model")
    return str(out), rec.history_


@dataclass(frozen=True)
class Refit:
    """The served model refit on every row of the split, and what it was refit on."""

    model_dir: str
    data_digest: str
    n_ratings: int
    seconds: float


@task(name="refit", cache_policy=NO_CACHE)
def refit_model(feats: Features, spec: ModelSpec, folder: str) -> Refit:
    """Fit the model of ``spec`` again, same hyperparameters, on train and test together."""
    data, rows = feats.full_set()
    # what the refit saw, taken before the fit: the frame is then let go, not held beside it
    data_digest, n_rows = digest(rows), len(rows)
    del rows
    started = time.perf_counter()
    rec = spec.create().fit(data)
    seconds = time.perf_counter() - started
    out = rec.save(Path(folder) / "refit")
    logger().info(
        "refit %s on all %d rows of the split (%d users, %d items) in %.1fs",
        spec.name,
        n_rows,
        data.n_users,
        data.n_items,
        seconds,
    )
    return Refit(str(out), data_digest, n_rows, seconds)


@contextlib.contextmanager
def _epoch_progress(spec: ModelSpec) -> Iterator:
    """A rich progress bar per epoch on a terminal; elsewhere (workers, logs) nothing per epoch.

    The curve itself goes to MLflow as stepped metrics (``epoch/...``) once training ends.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    params = spec.config.model_dump()
    total = params.get("epochs") or params.get("iterations")
    if not console.is_terminal or not isinstance(total, int):  # no terminal, or no epochs
        yield None
        return
    columns = [
        TextColumn("training {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task(spec.name, total=total, last="")

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            shown = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items())
            progress.update(bar, completed=epoch, last=shown)

        yield on_epoch
