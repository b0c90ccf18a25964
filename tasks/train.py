"""Train: fit one model on the training split (never retried: a failure is a real failure)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.features.prepare import Features
from recsys_core.models import create
from tasks._runtime import logger


@task(name="train", cache_policy=NO_CACHE)
def train_model(feats: Features, model: str, params: dict,
                folder: str) -> tuple[str, list[dict[str, float]]]:
    """Fit ``model`` with ``params``; return the saved model folder and the per-epoch curve."""
    log = logger()
    train, test = feats.train_set()
    rec = create(model, params)

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        log.info("epoch %d: %s", epoch, {k: round(v, 5) for k, v in metrics.items()})

    rec.fit(train, eval_data=test if rec.predicts_ratings else None, callback=on_epoch)
    out = Path(folder) / "model"
    rec.save(out)
    return str(out), rec.history_
