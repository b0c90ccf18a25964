"""The promotion gate (after TFX's Evaluator): absolute thresholds, then champion vs challenger.

Checks, all recorded with their numbers:

1. **thresholds**: each ``metric -> bound`` must hold (an upper bound for metrics where lower is
   better such as RMSE and for the privacy loss ``epsilon``/``delta``, a lower bound otherwise;
   a model that reports no ``epsilon`` fails an ``epsilon`` threshold);
2. **baseline**: the challenger must beat the baseline (bias model for rating metrics,
   popularity for ranking metrics) on the primary metric, on the same split, and may not lose
   to it on any of ``baseline_guards`` (the ranking gate: recall@k);
3. **champion**: when there is one, re-scored on this run's split, the challenger must improve
   the primary metric by at least ``min_improvement``, and no guarded metric may regress by more
   than ``guard_tolerance``.

4. **cold guard**: on the cold users (no training row: what the model answers with its
   fallback), none of ``cold_guards`` may be worse than the baseline's or the champion's by more
   than ``cold_tolerance``: a model may not buy its gain on warm users with a worse fallback.

The first run (no champion) is judged on 1, 2 and 4 only.

**Populations** (``recsys_core.evaluation.metrics``). The comparisons (primary metric, champion
guards, baseline guards) are judged on ``population``: ``warm`` by default, the test users with
at least one training row, whom a model can personalize for; on a time split most test users
can be new, and their rows, answered by every model's fallback, would otherwise decide. A plain
name in the config (``rmse``) stands for that population (``warm/rmse``); a name that says its
population (``all/rmse``, ``cold/mae``) is taken as written. Thresholds are absolute bounds and
name their population as metrics do (``rmse``: every test user; ``warm/rmse``: warm ones). When
the population has no figure (no warm user in the test set, ``warm/users = 0``, or none with a
relevant item) the gate says so in a ``population`` check and follows ``on_empty_population``:
``all`` (default) judges every comparison on all users instead, ``refuse`` refuses the run.
When the test set has no cold user the cold guard passes and says so. Metrics that carry no
population sizes (no ``warm/users``: figures computed without populations) are judged as named
and without cold guard.

A served version fills one or two **roles**, each with its own gate and champion alias:
``rating`` (:class:`RatingGate`: RMSE against the bias baseline) and ``ranking``
(:class:`RankingGate`: NDCG@k against popularity, recall@k not lost to it). Metric names ending
in ``_at_k`` stand for the run's ``k`` (``ndcg_at_k`` is ``ndcg_at_10`` when k=10).

Boundaries, so that a reader can predict every verdict:

- a metric that is not a finite number (NaN, inf) never passes: the primary metric is checked
  for it first, with or without a baseline, and every comparison with a NaN fails;
- "beats baseline" is strict (a tie with the baseline is refused); a baseline guard is
  inclusive (a tie with the baseline passes, as does a loss of at most ``1e-9``), and a guarded
  metric that the challenger or the baseline lacks fails it;
- "beats champion" and the guards are inclusive: an improvement exactly equal to
  ``min_improvement`` passes, and so does a regression exactly equal to ``guard_tolerance``.
  Both compare with an absolute slack of ``1e-9`` so that decimal settings behave as written
  (``0.72 - 0.70`` is ``0.0199999...`` in binary floating point);
- a champion that cannot be loaded, or whose primary metric is not finite, is reported as
  "champion unavailable: <reason>" and handled by ``on_champion_unavailable``: ``baseline``
  (default) judges the challenger on thresholds and the baseline, which must then be given;
  ``refuse`` refuses the run.

``GateDecision.reasons`` lists the failed checks first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recsys_core.evaluation.metrics import (
    POPULATIONS,
    base_metric,
    in_population,
    lower_is_better,
    population_of,
)
from recsys_core.exceptions import ConfigError
from recsys_core.models.base import ROLES


class GateConfig(BaseModel):
    """What a challenger must achieve to become champion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    primary_metric: str = Field(
        "auto", description="metric to beat; auto: rmse for rating models, ndcg_at_k otherwise"
    )
    min_improvement: float = Field(
        0.001, ge=0, description="required improvement of the primary metric over the champion"
    )
    thresholds: dict[str, float] = Field(
        default_factory=lambda: {"rmse": 1.2},
        description="absolute bounds: upper for rmse/mae, lower for ranking metrics",
    )
    guarded_metrics: list[str] = Field(
        default_factory=lambda: ["mae"],
        description="metrics that may not regress against the champion beyond the tolerance",
    )
    guard_tolerance: float = Field(0.01, ge=0, description="allowed regression of guarded metrics")
    require_beat_baseline: bool = Field(True, description="challenger must beat the baseline")
    baseline: Literal["auto", "bias", "popularity", "recent-popularity"] = Field(
        "auto", description="the baseline model; auto: bias for rating models, popularity otherwise"
    )
    baseline_guards: list[str] = Field(
        default_factory=list,
        description="metrics the challenger may not lose to the baseline (a tie passes)",
    )
    on_champion_unavailable: Literal["baseline", "refuse"] = Field(
        "baseline",
        description="a champion that cannot be loaded: 'baseline' judges the challenger on "
        "thresholds and baseline only (logged as a warning); 'refuse' refuses the run",
    )
    population: Literal["warm", "all"] = Field(
        "warm",
        description="test users the comparisons are judged on: warm (with training rows) or all",
    )
    on_empty_population: Literal["all", "refuse"] = Field(
        "all",
        description="no figure for the population (no warm test user): 'all' judges on "
        "every user instead (said in the decision); 'refuse' refuses the run",
    )
    cold_guards: list[str] = Field(
        default_factory=lambda: ["rmse"],
        description="metrics of the cold users (the fallback) that may not be worse than the "
        "baseline's or the champion's by more than cold_tolerance",
    )
    cold_tolerance: float = Field(0.005, ge=0, description="allowed regression on cold users")


class RatingGate(GateConfig):
    """The gate of the rating role (predicted ratings): RMSE, against the bias baseline."""

    primary_metric: str = Field("rmse", description="metric to beat (lower is better)")
    baseline: Literal["auto", "bias", "popularity", "recent-popularity"] = Field(
        "bias", description="the baseline model the challenger must beat"
    )


class RankingGate(GateConfig):
    """The gate of the ranking role (top-k lists): NDCG@k against popularity, which the
    challenger must beat on NDCG@k without losing to it on recall@k."""

    primary_metric: str = Field("ndcg_at_k", description="metric to beat ('_at_k': the run's k)")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="absolute lower bounds, e.g. {'ndcg_at_k': 0.1}"
    )
    guarded_metrics: list[str] = Field(
        default_factory=lambda: ["recall_at_k"],
        description="metrics that may not regress against the champion beyond the tolerance",
    )
    baseline: Literal["auto", "bias", "popularity", "recent-popularity"] = Field(
        "auto",
        description="the baseline model the challenger must beat; auto: the stronger "
        "of popularity and recent-popularity under a time or replay split, popularity otherwise",
    )
    baseline_guards: list[str] = Field(
        default_factory=lambda: ["recall_at_k"],
        description="metrics the challenger may not lose to the baseline (a tie passes)",
    )
    cold_guards: list[str] = Field(
        default_factory=lambda: ["ndcg_at_k"],
        description="metrics of the cold users (the fallback) that may not be worse than the "
        "baseline's or the champion's by more than cold_tolerance",
    )


class RoleGates(BaseModel):
    """One gate per serving role: ranking (the lists) and rating (predicted ratings)."""

    # (on the command line, --set gate.ranking.min_improvement=0.01 sets one field; the class
    # docstrings of these models are the Prefect form's descriptions: plain words only)

    model_config = ConfigDict(frozen=True, extra="forbid")

    ranking: RankingGate = Field(
        default_factory=RankingGate, description="the gate of the lists (champion-ranking)"
    )
    rating: RatingGate = Field(
        default_factory=RatingGate, description="the gate of rating predictions (champion-rating)"
    )

    def for_role(self, role: str) -> GateConfig:
        return self.ranking if role == "ranking" else self.rating


def competing_roles(
    requested: str | Sequence[str], *, fillable: Sequence[str], model: str
) -> list[str]:
    """The roles a run competes for: ``auto`` is every role the model can fill (``fillable``,
    its family's ``capabilities.roles``: a rating model both, a ranking-only model
    ``ranking``), a list restricts them.

    Raises
    ------
    ConfigError
        An unknown role, no role, or the ``rating`` role asked of a model that does not
        predict ratings.
    """
    if requested == "auto":
        return [r for r in ROLES if r in fillable]
    roles = [requested] if isinstance(requested, str) else list(requested)
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ConfigError(
            f"roles={requested!r}: give 'auto' or a list of {', '.join(ROLES)}, "
            "e.g. roles=['ranking']"
        )
    if "rating" in roles and "rating" not in fillable:
        raise ConfigError(
            f"model {model!r} does not predict ratings, so it cannot compete for the rating "
            "role (champion-rating serves /predict); use roles=['ranking'] or 'auto', or a "
            "rating model such as sgd-mf, als or bias for the rating role"
        )
    return [r for r in ROLES if r in roles]


def at_k(metric: str, k: int) -> str:
    """``ndcg_at_k`` -> ``ndcg_at_10`` for k=10; other names unchanged."""
    return metric[: -len("_at_k")] + f"_at_{k}" if metric.endswith("_at_k") else metric


def resolved(config: GateConfig, k: int) -> GateConfig:
    """``config`` with every ``..._at_k`` metric name spelled with the run's ``k``, and the
    comparisons' names in the gate's population (``rmse`` -> ``warm/rmse``)."""
    pop = config.population
    primary = at_k(config.primary_metric, k)
    return config.model_copy(
        update={
            "primary_metric": primary if primary == "auto" else in_population(primary, pop),
            "thresholds": {at_k(m, k): v for m, v in config.thresholds.items()},
            "guarded_metrics": [in_population(at_k(m, k), pop) for m in config.guarded_metrics],
            "baseline_guards": [in_population(at_k(m, k), pop) for m in config.baseline_guards],
            "cold_guards": [at_k(m, k) for m in config.cold_guards],
        }
    )


TIME_SPLITS = frozenset({"time", "replay"})
"""Splits whose test period follows the training period: all-time popularity may be stale."""


def baseline_candidates(
    config: GateConfig, predicts_ratings: bool, split: str | None = None
) -> list[str]:
    """The baseline models a gate may compare with: the config's; auto: for the ranking gate
    under a time or replay ``split``, both ``popularity`` and ``recent-popularity`` (the
    stronger on the primary metric is the bar, :func:`strongest_baseline`), else
    :func:`baseline_of`'s."""
    if config.baseline == "auto" and isinstance(config, RankingGate) and split in TIME_SPLITS:
        return ["popularity", "recent-popularity"]
    return [baseline_of(config, predicts_ratings)]


def strongest_baseline(
    candidates: list[str], scores: dict[str, dict[str, float]], metric: str
) -> str:
    """The candidate with the best ``metric`` in ``scores`` (the first one on a tie, or when
    none was scored)."""
    scored = [c for c in candidates if metric in scores.get(c, {})]
    if not scored:
        return candidates[0]
    sign = 1.0 if lower_is_better(metric) else -1.0
    return min(scored, key=lambda c: (sign * scores[c][metric], candidates.index(c)))


def baseline_of(config: GateConfig, predicts_ratings: bool) -> str:
    """The baseline model's name: the config's, or (auto) popularity for the ranking gate and,
    for the other gates, bias for rating models."""
    if config.baseline != "auto":
        return config.baseline
    if isinstance(config, RankingGate):
        return "popularity"
    return "bias" if predicts_ratings else "popularity"


PRIVACY_METRICS = frozenset({"epsilon", "delta"})
"""The privacy loss a private model reports (``DPALS.privacy_metrics``): a threshold on them is
an upper bound (``epsilon <= budget``), and a challenger without them fails it."""

SLACK = 1e-9
"""Absolute slack of the inclusive comparisons (min_improvement, guard_tolerance)."""


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class GateDecision:
    passed: bool
    primary_metric: str
    checks: list[Check] = field(default_factory=list)
    challenger: dict[str, float] = field(default_factory=dict)
    champion: dict[str, float] | None = None
    baseline: dict[str, float] | None = None
    champion_version: str | None = None
    champion_unavailable: str | None = None
    role: str | None = None
    baseline_name: str | None = None

    @property
    def reasons(self) -> list[str]:
        """One line per check, the failed ones first."""
        ordered = sorted(self.checks, key=lambda c: c.passed)  # stable: FAIL lines first
        return [f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in ordered]

    def summary(self) -> str:
        verdict = "passed" if self.passed else "refused"
        failed = [c for c in self.checks if not c.passed]
        if not failed:
            return f"gate {verdict}: " + "; ".join(c.detail for c in self.checks)
        return f"gate {verdict}: " + "; ".join(f"{c.name}: {c.detail}" for c in failed)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_markdown(self) -> str:
        lines = [
            f"# Gate {'PASSED' if self.passed else 'REFUSED'}"
            + (f": {self.role} role" if self.role else ""),
            "",
            f"Primary metric: `{self.primary_metric}`"
            + (f"; baseline: {self.baseline_name}" if self.baseline_name else "")
            + (
                f"; champion: version {self.champion_version}"
                if self.champion_version
                else "; no champion yet (thresholds and baseline only)"
            )
            + (
                f"\n\n**champion unavailable**: {self.champion_unavailable}"
                if self.champion_unavailable
                else ""
            ),
            "",
            "| check | result | detail |",
            "|---|---|---|",
        ]
        lines += [
            f"| {c.name} | {'pass' if c.passed else '**fail**'} | {c.detail} |" for c in self.checks
        ]
        metrics = metrics_in_order(
            {**(self.baseline or {}), **(self.champion or {}), **self.challenger}
        )
        sizes = populations_line(self.challenger)
        lines += ["", sizes] if sizes else []
        lines += ["", "| metric | challenger | champion | baseline |", "|---|---|---|---|"]
        for m in metrics:
            lines.append(
                f"| {m} | {_fmt(self.challenger.get(m))} | {_fmt((self.champion or {}).get(m))} "
                f"| {_fmt((self.baseline or {}).get(m))} |"
            )
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


_SIZES = ("users", "rows", "items", "share")


def _is_size(metric: str) -> bool:
    """``warm/users``, ``cold/rows``, ``cold_items/share``...: a population's size."""
    head, sep, tail = metric.partition("/")
    return bool(sep) and (head in POPULATIONS or head == "cold_items") and tail in _SIZES


def _metric_order(metric: str) -> tuple[str, int]:
    """Each metric with its populations beside it: ``rmse``, ``warm/rmse``, ``cold/rmse``,
    ``cold_items/rmse``."""
    head = metric.partition("/")[0] if "/" in metric else "all"
    rank = {"all": 0, "warm": 1, "cold": 2, "cold_items": 3}.get(head, 4)
    return base_metric(metric), rank


def metrics_in_order(metrics: dict[str, float]) -> list[str]:
    """The names of ``metrics`` sorted with each metric's populations beside it (``rmse``,
    ``warm/rmse``, ``cold/rmse``, ...), the populations' sizes left out."""
    return sorted((m for m in metrics if not _is_size(m)), key=_metric_order)


def populations_line(metrics: dict[str, float]) -> str | None:
    """``Populations: warm 107 users (2,260 rows); cold 194 users (13,740 rows); ...``, or
    None when ``metrics`` carry no population sizes."""
    if "warm/users" not in metrics:
        return None
    parts = [
        f"{p} {metrics.get(f'{p}/users', 0):,.0f} users ({metrics.get(f'{p}/rows', 0):,.0f} rows)"
        for p in ("warm", "cold", "all")
    ]
    if "cold_items/items" in metrics:
        parts.append(
            f"cold items {metrics['cold_items/items']:,.0f} "
            f"({metrics.get('cold_items/share', 0.0):.1%} of the rows)"
        )
    return "Populations (test users with / without training rows): " + "; ".join(parts)


def _population(
    challenger: dict[str, float], config: GateConfig, primary: str
) -> tuple[Check | None, str, GateConfig]:
    """The population check when the primary metric's population has no figure (and the
    primary metric and config to judge with instead); None while it has one."""
    pop = population_of(primary)
    if pop == "all" or primary in challenger or f"{pop}/users" not in challenger:
        return None, primary, config
    n = challenger[f"{pop}/users"]
    what = (
        f"no {pop} user in the test set ({pop}/users = 0)"
        if not n
        else f"no {primary} for the {n:,.0f} {pop} users (none has a relevant test item)"
    )
    if config.on_empty_population == "refuse":
        return (
            Check("population", False, f"{what}; refused (on_empty_population='refuse')"),
            primary,
            config,
        )

    def plain(metric: str) -> str:
        return metric.partition("/")[2] if population_of(metric) == pop else metric

    fallback = config.model_copy(
        update={
            "guarded_metrics": [plain(m) for m in config.guarded_metrics],
            "baseline_guards": [plain(m) for m in config.baseline_guards],
        }
    )
    return (
        Check(
            "population",
            True,
            f"{what}: judged on all users instead, {plain(primary)} for {primary} "
            "(on_empty_population='all')",
        ),
        plain(primary),
        fallback,
    )


def _cold_guards(
    challenger: dict[str, float],
    config: GateConfig,
    baseline: dict[str, float] | None,
    champion: dict[str, float] | None,
) -> list[Check]:
    """The cold users' metrics against the baseline's and the champion's (the fallback may not
    get worse by more than ``cold_tolerance``)."""
    if not challenger.get("cold/users"):
        return [
            Check(
                "cold guard",
                True,
                "no cold user in the test set (cold/users = 0): nothing to guard",
            )
        ]
    checks = []
    tol = config.cold_tolerance
    for metric in (in_population(m, "cold") for m in config.cold_guards):
        for side, ref in (("baseline", baseline), ("champion", champion)):
            if ref is None:
                continue
            name = f"cold guard {metric} vs {side}"
            if metric not in challenger and metric not in ref:
                checks.append(
                    Check(
                        name,
                        True,
                        f"neither has {metric} (no cold user with a "
                        "relevant test item): nothing to guard",
                    )
                )
            elif metric not in challenger or metric not in ref:
                lacking = "the challenger" if metric not in challenger else f"the {side}"
                checks.append(
                    Check(
                        name,
                        False,
                        f"{lacking} has no {metric!r}; it cannot be "
                        "compared (check gate cold_guards and k)",
                    )
                )
            else:
                gain = _better(metric, challenger[metric], ref[metric])
                checks.append(
                    Check(
                        name,
                        gain >= -tol - SLACK,
                        f"{metric} {challenger[metric]:.4f} vs {side} {ref[metric]:.4f} (change "
                        f"{gain:+.4f}, tolerance {tol}: the fallback may not get worse)",
                    )
                )
    return checks


def resolve_primary(config: GateConfig, predicts_ratings: bool, k: int) -> str:
    if config.primary_metric != "auto":
        return at_k(config.primary_metric, k)
    return "rmse" if predicts_ratings else f"ndcg_at_{k}"


def _better(metric: str, a: float, b: float) -> float:
    """How much ``a`` improves on ``b`` (positive = better)."""
    return b - a if lower_is_better(metric) else a - b


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def decide(
    challenger: dict[str, float],
    *,
    config: GateConfig,
    primary: str,
    champion: dict[str, float] | None = None,
    baseline: dict[str, float] | None = None,
    champion_version: str | None = None,
    champion_unavailable: str | None = None,
    role: str | None = None,
    baseline_name: str | None = None,
) -> GateDecision:
    """Judge ``challenger`` metrics; every check is kept with its numbers.

    ``champion_unavailable`` is the reason the champion ``champion_version`` could not be
    loaded (then ``champion`` is None); ``config.on_champion_unavailable`` decides what follows.
    """
    checks: list[Check] = []
    population, primary, config = _population(challenger, config, primary)
    if population is not None:
        checks.append(population)
    if primary not in challenger:
        checks.append(
            Check(
                "primary metric",
                False,
                f"the challenger has no {primary!r} (it has "
                f"{', '.join(sorted(challenger))}); set gate primary_metric",
            )
        )
    elif not _finite(challenger[primary]):
        checks.append(
            Check(
                "primary metric",
                False,
                f"{primary}={challenger[primary]} is not a finite number: the model "
                "or its evaluation is broken",
            )
        )
    for metric, bound in config.thresholds.items():
        value = challenger.get(metric)
        if value is None and metric in PRIVACY_METRICS:
            checks.append(
                Check(
                    f"threshold {metric}",
                    False,
                    f"{metric} <= {bound} is required but the challenger reports no "
                    f"{metric}: it is not a differentially private model (use dp-als) "
                    "or its privacy record was not logged",
                )
            )
            continue
        if value is None:
            # a ranking-only model has no rmse: a rating threshold does not apply to it
            continue
        if lower_is_better(metric) or metric in PRIVACY_METRICS:
            ok, rel = value <= bound, "<="
        else:
            ok, rel = value >= bound, ">="
        checks.append(
            Check(
                f"threshold {metric}",
                ok,
                f"{metric}={value:.4f} {rel} {bound}"
                if ok
                else f"{metric}={value:.4f} is not {rel} {bound}",
            )
        )
    judged = champion  # the champion the challenger is compared with, if any
    if (
        champion is not None
        and champion_unavailable is None
        and primary in champion
        and not _finite(champion[primary])
    ):
        champion_unavailable = (
            f"its {primary} re-scored on this split is {champion[primary]}, not a finite number"
        )
    if champion_unavailable is not None:
        refuse = config.on_champion_unavailable == "refuse"
        checks.append(
            Check(
                "champion available",
                not refuse,
                f"champion unavailable: {champion_unavailable} "
                f"(version {champion_version or '?'}); "
                + (
                    "refused (on_champion_unavailable='refuse')"
                    if refuse
                    else "judged on thresholds and baseline only "
                    "(on_champion_unavailable='baseline')"
                ),
            )
        )
        judged = None
        if not refuse and config.require_beat_baseline and baseline is None:
            checks.append(
                Check(
                    "beats baseline",
                    False,
                    "no baseline given: with the champion unavailable the challenger "
                    "must beat the baseline",
                )
            )
    if primary in challenger and config.require_beat_baseline and baseline is not None:
        if primary in baseline:
            gain = _better(primary, challenger[primary], baseline[primary])
            checks.append(
                Check(
                    "beats baseline",
                    gain > 0,
                    f"{primary} {challenger[primary]:.4f} vs baseline {baseline[primary]:.4f} "
                    f"(improvement {gain:+.4f})",
                )
            )
        else:
            checks.append(
                Check(
                    "beats baseline",
                    False,
                    f"the baseline has no {primary!r}; it cannot be compared",
                )
            )
    guarded_against = baseline or {}
    for metric in config.baseline_guards if baseline is not None else []:
        if metric in challenger and metric in guarded_against:
            gain = _better(metric, challenger[metric], guarded_against[metric])
            checks.append(
                Check(
                    f"baseline guard {metric}",
                    gain >= -SLACK,
                    f"{metric} {challenger[metric]:.4f} vs baseline {guarded_against[metric]:.4f} "
                    f"(change {gain:+.4f}; may not be worse than the baseline)",
                )
            )
        else:
            lacking = "the challenger" if metric not in challenger else "the baseline"
            checks.append(
                Check(
                    f"baseline guard {metric}",
                    False,
                    f"{lacking} has no {metric!r}; it cannot be compared (check "
                    "gate baseline_guards and k)",
                )
            )
    if primary in challenger and judged is not None:
        if primary in judged:
            gain = _better(primary, challenger[primary], judged[primary])
            checks.append(
                Check(
                    "beats champion",
                    gain >= config.min_improvement - SLACK,
                    f"{primary} {challenger[primary]:.4f} vs champion {judged[primary]:.4f} "
                    f"(improvement {gain:+.4f}, required >= {config.min_improvement})",
                )
            )
        else:
            checks.append(
                Check("beats champion", False, f"the champion could not be scored on {primary!r}")
            )
        for metric in config.guarded_metrics:
            if metric in challenger and metric in judged:
                gain = _better(metric, challenger[metric], judged[metric])
                checks.append(
                    Check(
                        f"guard {metric}",
                        gain >= -config.guard_tolerance - SLACK,
                        f"{metric} {challenger[metric]:.4f} vs champion {judged[metric]:.4f} "
                        f"(change {gain:+.4f}, tolerance {config.guard_tolerance})",
                    )
                )
    if config.cold_guards and "cold/users" in challenger:
        checks += _cold_guards(challenger, config, baseline, judged)
    passed = all(c.passed for c in checks)
    return GateDecision(
        passed,
        primary,
        checks,
        dict(challenger),
        champion,
        baseline,
        champion_version,
        champion_unavailable,
        role,
        baseline_name,
    )
