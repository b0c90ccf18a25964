"""Evaluate: the challenger, its baselines and each role's champion, on one read of the split."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.evaluation import evaluate, plots
from recsys_core.evaluation.evaluate import EvaluationResult
from recsys_core.evaluation.gate import populations_line
from recsys_core.evaluation.replay import replay
from recsys_core.features import Interactions
from recsys_core.features.prepare import Features
from recsys_core.models import Recommender, create
from recsys_core.spark.engine import resolve_engine
from recsys_core.tracking.champion import load_champions
from tasks._runtime import logger


@dataclass(frozen=True)
class ChampionScore:
    """One role's champion as re-scored on this run's split (or why it could not be)."""

    version: str | None = None
    metrics: dict[str, float] | None = None
    unavailable: str | None = None


@dataclass(frozen=True)
class Scores:
    """Metrics of the challenger, its baselines and each role's champion on the same split,
    and the evaluation's side products."""

    challenger: dict[str, float]
    counts: dict[str, int]
    baselines: dict[str, dict[str, float]]
    """Metrics of each baseline model (``bias``, ``popularity``) the gates need, by name."""
    champions: dict[str, ChampionScore] = field(default_factory=dict)
    """By role: the version behind the role's champion alias, re-scored."""
    plots: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    """How the evaluation ran (``recsys.evaluation.engine``: ``local`` or ``spark``, ...)."""


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_models(
    model_dir: str,
    feats: Features,
    *,
    k: int,
    relevance_threshold: float | None,
    registered_model: str,
    baselines: list[str],
    champion_aliases: dict[str, str],
    engine: str = "auto",
    released_fits: int = 1,
) -> Scores:
    """Score the challenger, each baseline and each role's champion on this split.

    The challenger is scored by ``engine`` (``recsys_core.spark.engine``: ``auto`` scores a
    Spark model in Spark, from the split's Parquet files, and every other model locally). The
    split is read once on this machine for the rest; each baseline (``bias``, ``popularity``)
    is fitted on its training part; each champion (``champion_aliases``: role -> alias) is
    loaded from its artifacts (no unpickling; ``evaluated_state/`` when there is one) and
    re-scored, or reported unavailable. A version that holds two roles is scored once.
    ``released_fits``: fits of the challenger's configuration the run registers (2 with a
    refit): a private model's ``epsilon`` is their composition, what the run spends.
    """
    log = logger()
    challenger = Recommender.load(model_dir)
    used = resolve_engine(engine, challenger.name)
    if feats.info.get("strategy") == "replay":  # the replay folds in per user: local only
        used = "local"
    tags: dict[str, str] = {
        "recsys.evaluation.engine": used,
        "recsys.evaluation.engine.baselines": "local",
        "recsys.evaluation.engine.champions": "local",
    }
    frames: list[tuple[pd.DataFrame, pd.DataFrame]] = []

    def split_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
        if not frames:  # read once, and only when a local evaluation needs it
            frames.append(feats.frames())
        return frames[0]

    def score(model: Recommender, keep_predictions: bool = False) -> EvaluationResult:
        train, test = split_frames()
        if feats.info.get("strategy") == "replay":  # the test period replayed with fold-in
            return replay(model, test, k=k, keep_interactions=keep_predictions).as_evaluation()
        return evaluate(
            model,
            train,
            test,
            k=k,
            relevance_threshold=relevance_threshold,
            keep_predictions=keep_predictions,
        )

    predictions = None
    if used == "spark":
        result, predictions = _score_in_spark(challenger, feats, k, relevance_threshold)
        tags["recsys.evaluation.rating_distribution"] = (
            "none: not a rating model"
            if predictions is None
            else f"from a random sample of {len(predictions)} of {result.counts['test_rows']} test "
            "rows"
        )
    else:
        result = score(challenger, keep_predictions=True)
        predictions = result.predictions
    metrics = dict(result.metrics)
    # a private model's record (epsilon, delta, noise): logged with its metrics, and what a gate
    # threshold such as ``epsilon <= 2`` reads; epsilon over every fit the run releases
    privacy = getattr(challenger, "privacy_metrics", None)
    if callable(privacy):
        metrics.update({m: v for m, v in privacy(released_fits).items() if math.isfinite(v)})
    log.info("challenger %s (%s evaluation)", _rounded(metrics), used)
    log.info("%s", populations_line(metrics) or "no population sizes")
    plot_dir = Path(model_dir).parent / "plots"
    plot_dir.mkdir(exist_ok=True)
    written = [plots.learning_curve(challenger.history_, plot_dir / "learning_curve.png")]
    if predictions is not None:
        written.append(
            plots.rating_distribution(
                predictions["prediction"].to_numpy(),
                predictions["rating"].to_numpy(),
                plot_dir / "rating_distribution.png",
            )
        )

    baseline_metrics = {}
    fitted: Interactions | None = None
    for name in dict.fromkeys(baselines):
        if fitted is None:
            fitted = Interactions.from_frame(split_frames()[0], item_meta=feats.item_meta())
        baseline_metrics[name] = dict(score(create(name).fit(fitted)).metrics)
        log.info("baseline %s %s", name, _rounded(baseline_metrics[name]))

    states = load_champions(registered_model, list(champion_aliases.values()))
    scored: dict[str, dict[str, float]] = {}  # by version: a version of two roles scored once
    champions = {}
    for role, alias in champion_aliases.items():
        champ = states[alias]
        if champ.model is not None and champ.version is not None:
            if champ.version not in scored:
                started = time.perf_counter()
                scored[champ.version] = dict(score(champ.model).metrics)
                log.info(
                    "champion v%s (%s, from %s/) re-scored in %.1fs: %s",
                    champ.version,
                    alias,
                    champ.state_path,
                    time.perf_counter() - started,
                    _rounded(scored[champ.version]),
                )
            champions[role] = ChampionScore(champ.version, scored[champ.version])
        elif champ.unavailable:
            log.error(
                "%s v%s of %r is unavailable: %s",
                alias,
                champ.version,
                registered_model,
                champ.unavailable,
            )
            champions[role] = ChampionScore(champ.version, None, champ.unavailable)
        else:
            log.info("no %s for %r yet: thresholds and baseline only", alias, registered_model)
            champions[role] = ChampionScore()
    return Scores(
        metrics,
        dict(result.counts),
        baseline_metrics,
        champions,
        [str(p) for p in written if p is not None],
        tags,
    )


def _score_in_spark(
    model: Recommender, feats: Features, k: int, threshold: float | None
) -> tuple[EvaluationResult, pd.DataFrame | None]:
    """The model's metrics computed by Spark from the split's Parquet files, and a sample of its
    test predictions (rating models) for the rating-distribution plot."""
    from recsys_core.spark.evaluation import prediction_sample, spark_evaluation
    from recsys_core.spark.storage import read_parquet

    train, test = read_parquet(str(feats.train_path)), read_parquet(str(feats.test_path))
    result = spark_evaluation(model, train, test, k=k, relevance_threshold=threshold)
    sample = prediction_sample(model, test) if model.predicts_ratings else None
    return result, sample


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {m: round(v, 4) for m, v in metrics.items()}
