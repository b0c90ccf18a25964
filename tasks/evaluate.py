"""Evaluate: the challenger, the baseline and the current champion, all on this run's split.

These tasks compute; the flow hands their results to the retried logging task.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.evaluation import evaluate, plots
from recsys_core.features.prepare import Features
from recsys_core.models import Recommender, create
from recsys_core.tracking.champion import load_champion
from tasks._runtime import IO_RETRY, logger


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_model(
    model_dir: str, feats: Features, k: int, relevance_threshold: float | None,
) -> tuple[dict[str, float], dict[str, int], str]:
    """Score the trained model; returns its metrics, counts and a folder of diagnostic plots."""
    model = Recommender.load(model_dir)
    train, test = feats.frames()
    result = evaluate(model, train, test, k=k, relevance_threshold=relevance_threshold,
                      keep_predictions=True)
    plot_dir = Path(model_dir).parent / "plots"
    plot_dir.mkdir(exist_ok=True)
    plots.learning_curve(model.history_, plot_dir / "learning_curve.png")
    if result.predictions is not None:
        p = result.predictions
        plots.rating_distribution(p["prediction"].to_numpy(), p["rating"].to_numpy(),
                                  plot_dir / "rating_distribution.png")
    logger().info("metrics %s", {k_: round(v, 4) for k_, v in result.metrics.items()})
    return dict(result.metrics), dict(result.counts), str(plot_dir)


@task(name="evaluate-baseline", cache_policy=NO_CACHE)
def evaluate_baseline(feats: Features, rating_model: bool, k: int,
                      relevance_threshold: float | None) -> tuple[str, dict[str, float]]:
    """Fit and score the baseline (bias for rating models, popularity otherwise)."""
    name = "bias" if rating_model else "popularity"
    train_set, _ = feats.train_set()
    model = create(name).fit(train_set)
    train, test = feats.frames()
    metrics = evaluate(model, train, test, k=k, relevance_threshold=relevance_threshold).metrics
    return name, metrics


@task(name="score-champion", **IO_RETRY, cache_policy=NO_CACHE)
def evaluate_champion(registered_model: str, feats: Features, k: int,
                      relevance_threshold: float | None,
                      ) -> tuple[str | None, dict[str, float] | None, str | None]:
    """Re-score the current champion on this run's split: (version, metrics, unavailable).

    (None, None, None) when there is none; (version, None, reason) when it cannot be loaded.
    """
    state = load_champion(registered_model)
    if state.version is None:
        logger().info("no champion for %r yet: thresholds and baseline only", registered_model)
        return None, None, None
    if state.model is None:
        logger().warning("champion v%s of %r unavailable: %s", state.version, registered_model,
                         state.unavailable)
        return state.version, None, state.unavailable
    started = time.perf_counter()
    train, test = feats.frames()
    metrics = evaluate(state.model, train, test, k=k,
                       relevance_threshold=relevance_threshold).metrics
    logger().info("champion v%s re-scored in %.1fs: %s", state.version,
                  time.perf_counter() - started, {m: round(v, 4) for m, v in metrics.items()})
    return state.version, metrics, None
