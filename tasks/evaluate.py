"""Evaluate: the challenger, its baselines and each role's champion, on one read of the split."""

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


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_models(model_dir: str, feats: Features, *, k: int,
                    relevance_threshold: float | None, registered_model: str,
                    baselines: list[str], champion_aliases: dict[str, str]) -> Scores:
    """Score the challenger, each baseline and each role's champion on this split.

    The split is read once; each baseline (``bias``, ``popularity``) is fitted on its training
    part; each champion (``champion_aliases``: role -> alias) is loaded from its artifacts (no
    unpickling; ``evaluated_state/`` when there is one) and re-scored, or reported unavailable.
    A version that holds two roles is loaded and scored once.
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

    baseline_metrics = {}
    fitted = Interactions.from_frame(train, item_meta=feats.item_meta())
    for name in dict.fromkeys(baselines):
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
                log.info("champion v%s (%s, from %s/) re-scored in %.1fs: %s", champ.version,
                         alias, champ.state_path, time.perf_counter() - started,
                         _rounded(scored[champ.version]))
            champions[role] = ChampionScore(champ.version, scored[champ.version])
        elif champ.unavailable:
            log.error("%s v%s of %r is unavailable: %s", alias, champ.version,
                      registered_model, champ.unavailable)
            champions[role] = ChampionScore(champ.version, None, champ.unavailable)
        else:
            log.info("no %s for %r yet: thresholds and baseline only", alias, registered_model)
            champions[role] = ChampionScore()
    return Scores(metrics, dict(result.counts), baseline_metrics, champions,
                  [str(p) for p in written if p is not None])


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {m: round(v, 4) for m, v in metrics.items()}
