"""Evaluate: the challenger, the baseline and the current champion, all on this run's split."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.evaluation import evaluate, plots
from recsys_core.features.prepare import Features
from recsys_core.models import Recommender, create
from recsys_core.tracking import mlflow_run, pyfunc, registry
from tasks._runtime import IO_RETRIES, IO_RETRY_DELAYS, logger


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_model(
    model_dir: str, feats: Features, k: int, relevance_threshold: float | None, run_id: str,
) -> dict[str, float]:
    """Score the trained model; log metrics and diagnostic plots."""
    model = Recommender.load(model_dir)
    train, test = feats.frames()
    result = evaluate(model, train, test, k=k, relevance_threshold=relevance_threshold,
                      keep_predictions=True)
    metrics = dict(result.metrics)
    mlflow_run.log_metrics(run_id, metrics)
    mlflow_run.log_metrics(run_id, {f"count_{k_}": v for k_, v in result.counts.items()})
    plot_dir = Path(model_dir).parent / "plots"
    plot_dir.mkdir(exist_ok=True)
    plots.learning_curve(model.history_, plot_dir / "learning_curve.png")
    if result.predictions is not None:
        p = result.predictions
        plots.rating_distribution(p["prediction"].to_numpy(), p["rating"].to_numpy(),
                                  plot_dir / "rating_distribution.png")
    mlflow_run.log_artifacts(run_id, plot_dir, "plots")
    logger().info("metrics %s", {k_: round(v, 4) for k_, v in metrics.items()})
    return metrics


@task(name="evaluate-baseline", cache_policy=NO_CACHE)
def evaluate_baseline(feats: Features, rating_model: bool, k: int,
                      relevance_threshold: float | None, run_id: str) -> dict[str, float]:
    """Fit and score the baseline (bias for rating models, popularity otherwise)."""
    name = "bias" if rating_model else "popularity"
    train_set, _ = feats.train_set()
    model = create(name).fit(train_set)
    train, test = feats.frames()
    metrics = evaluate(model, train, test, k=k, relevance_threshold=relevance_threshold).metrics
    mlflow_run.log_metrics(run_id, {f"baseline_{m}": v for m, v in metrics.items()})
    mlflow_run.set_tags(run_id, {"recsys.baseline_model": name})
    return metrics


@task(name="score-champion", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS,
      cache_policy=NO_CACHE)
def evaluate_champion(registered_model: str, feats: Features, k: int,
                      relevance_threshold: float | None,
                      run_id: str) -> tuple[str | None, dict[str, float] | None]:
    """Re-score the current champion on this run's split; (None, None) when there is none."""
    ref = registry.get_alias(registered_model, registry.CHAMPION)
    if ref is None:
        logger().info("no champion for %r yet: thresholds and baseline only", registered_model)
        return None, None
    started = time.perf_counter()
    model = pyfunc.load_recommender(f"models:/{registered_model}@{registry.CHAMPION}")
    train, test = feats.frames()
    metrics = evaluate(model, train, test, k=k, relevance_threshold=relevance_threshold).metrics
    mlflow_run.log_metrics(run_id, {f"champion_{m}": v for m, v in metrics.items()})
    mlflow_run.set_tags(run_id, {"recsys.champion_version": ref.version})
    logger().info("champion v%s re-scored in %.1fs: %s", ref.version,
                  time.perf_counter() - started, {m: round(v, 4) for m, v in metrics.items()})
    return ref.version, metrics
