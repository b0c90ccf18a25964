"""Train: fit one model on the training split (never retried: a failure is a real failure)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.features.prepare import Features
from recsys_core.models import create
from recsys_core.tracking import mlflow_run
from tasks._runtime import logger


@task(name="train", cache_policy=NO_CACHE)
def train_model(feats: Features, model: str, params: dict, run_id: str, folder: str) -> str:
    """Fit ``model`` with ``params``; log its per-epoch curve; return the saved model folder."""
    log = logger()
    train, test = feats.train_set()
    rec = create(model, params)

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        log.info("epoch %d: %s", epoch, {k: round(v, 5) for k, v in metrics.items()})

    rec.fit(train, eval_data=test if rec.predicts_ratings else None, callback=on_epoch)
    mlflow_run.log_history(run_id, rec.history_)
    out = Path(folder) / "model"
    rec.save(out)
    return str(out)
