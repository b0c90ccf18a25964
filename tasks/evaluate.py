"""Evaluate: the challenger, the baseline and the current champion, on one read of the split."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.evaluation import evaluate, plots
from recsys_core.features import Interactions
from recsys_core.features.prepare import Features
from recsys_core.models import Recommender, create
from recsys_core.tracking.champion import load_champion
from tasks._runtime import logger


@dataclass(frozen=True)
class Scores:
    """Metrics of the three models on the same split, and the evaluation's side products."""

    challenger: dict[str, float]
    counts: dict[str, int]
    baseline_name: str
    baseline: dict[str, float]
    champion_version: str | None = None
    champion: dict[str, float] | None = None
    champion_unavailable: str | None = None
    plots: list[str] = field(default_factory=list)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_models(model_dir: str, feats: Features, *, k: int,
                    relevance_threshold: float | None, registered_model: str) -> Scores:
    """Score the challenger, the baseline (bias or popularity) and the champion on this split.

    The split is read once; the baseline is fitted on its training part; the champion is loaded
    from its ``model_state/`` artifacts (no unpickling) and re-scored, or reported unavailable.
    """
    log = logger()
    train, test = feats.frames()

    def score(model: Recommender, keep_predictions: bool = False):
        return evaluate(model, train, test, k=k, relevance_threshold=relevance_threshold,
                        keep_predictions=keep_predictions)

    challenger = Recommender.load(model_dir)
    result = score(challenger, keep_predictions=True)
    metrics = dict(result.metrics)
    # a private model's record (epsilon, delta, noise): logged with its metrics, and what a gate
    # threshold such as ``epsilon <= 2`` reads
    privacy = getattr(challenger, "privacy_metrics", None)
    if callable(privacy):
        metrics.update({m: v for m, v in privacy().items() if math.isfinite(v)})
    log.info("challenger %s", _rounded(metrics))
    plot_dir = Path(model_dir).parent / "plots"
    plot_dir.mkdir(exist_ok=True)
    written = [plots.learning_curve(challenger.history_, plot_dir / "learning_curve.png")]
    if result.predictions is not None:
        p = result.predictions
        written.append(plots.rating_distribution(
            p["prediction"].to_numpy(), p["rating"].to_numpy(),
            plot_dir / "rating_distribution.png"))

    baseline_name = "bias" if challenger.predicts_ratings else "popularity"
    baseline = create(baseline_name).fit(
        Interactions.from_frame(train, item_meta=feats.item_meta()))
    baseline_metrics = score(baseline).metrics
    log.info("baseline %s %s", baseline_name, _rounded(baseline_metrics))

    champ = load_champion(registered_model)
    champion_metrics = None
    if champ.model is not None:
        started = time.perf_counter()
        champion_metrics = score(champ.model).metrics
        log.info("champion v%s re-scored in %.1fs: %s", champ.version,
                 time.perf_counter() - started, _rounded(champion_metrics))
    elif champ.unavailable:
        log.error("champion v%s of %r is unavailable: %s", champ.version, registered_model,
                  champ.unavailable)
    else:
        log.info("no champion for %r yet: thresholds and baseline only", registered_model)
    return Scores(metrics, dict(result.counts), baseline_name,
                  dict(baseline_metrics), champ.version, champion_metrics, champ.unavailable,
                  [str(p) for p in written if p is not None])


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {m: round(v, 4) for m, v in metrics.items()}
