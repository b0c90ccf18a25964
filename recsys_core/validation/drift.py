"""Drift between two interaction snapshots: the data a run trains on and the champion's.

::

    report = compare(reference, current, rules.drift)   # DriftReport: statistics and verdicts
    report.to_markdown(); plot(reference, current, "drift.png")
    raise_for_stop(report)                              # DataValidationError past a stop limit

Statistics (every one from scipy, none hand-rolled):

- ``rating_ks``: two-sample Kolmogorov-Smirnov statistic of the ratings
  (:func:`scipy.stats.ks_2samp`), the largest gap between the two cumulative distributions;
- ``rating_psi``: population stability index of the ratings over the distinct rating values,
  ``sum (p - q) ln(p / q)``, which is the symmetric Kullback-Leibler divergence
  ``KL(p||q) + KL(q||p)`` (:func:`scipy.stats.entropy`); empty bins get a small share (1e-4) so
  that a rating value present on one side only counts as a large, finite shift;
- ``item_popularity_js``: Jensen-Shannon distance, base 2 (0 to 1), between the shares of the
  interactions that each item gets, over the union of the items
  (:func:`scipy.spatial.distance.jensenshannon`);
- ``new_user_share`` / ``new_item_share``: the share of this snapshot's users (items) that the
  reference does not have; a user the model has never seen is answered as cold;
- ``interactions_per_user_ks``: Kolmogorov-Smirnov statistic of the interactions per user, with
  their mean and median on both sides (reported, not thresholded).

Each thresholded statistic is judged against its
:class:`~recsys_core.validation.rules.DriftThreshold`: ``ok``, ``warn`` (at or above
``warn``) or ``stop`` (at or above ``stop``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, ks_2samp

from recsys_core.exceptions import DataValidationError
from recsys_core.validation.rules import DriftRules

log = logging.getLogger(__name__)

Level = Literal["ok", "warn", "stop"]

PSI_FLOOR = 1e-4
"""Share given to a rating value absent on one side, so that the PSI stays finite."""


@dataclass(frozen=True)
class DriftReport:
    """The drift statistics of one comparison and the verdict of each thresholded one."""

    statistics: dict[str, float]
    """Every statistic by name (thresholded ones and the descriptive means and medians)."""
    levels: dict[str, Level]
    """The verdict of each thresholded statistic."""
    rules: dict[str, Any]
    reference: str = "reference"
    """What the reference is, in words (e.g. the champion version and its snapshot)."""
    current: str = "current"
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def level(self) -> Level:
        """The worst verdict: ``stop`` if any statistic stops, else ``warn`` if any warns."""
        found = set(self.levels.values())
        return "stop" if "stop" in found else "warn" if "warn" in found else "ok"

    def at(self, level: Level) -> list[str]:
        """The statistics whose verdict is ``level``."""
        return [name for name, lv in self.levels.items() if lv == level]

    def describe(self, name: str) -> str:
        """One statistic, its value and the limit it reached, in words."""
        limit = self.rules[name][self.levels[name]] if self.levels[name] != "ok" else None
        where = f"validation.drift.{name}.{self.levels[name]}"
        reached = f" >= {where} = {limit!r}" if limit is not None else ""
        return f"{name} = {self.statistics[name]:.4g}{reached}"

    def metrics(self, prefix: str = "drift/") -> dict[str, float]:
        """The statistics as MLflow metrics (``drift/rating_ks``, ...)."""
        return {f"{prefix}{k}": float(v) for k, v in self.statistics.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "statistics": self.statistics,
            "levels": self.levels,
            "rules": self.rules,
            "reference": self.reference,
            "current": self.current,
            "counts": self.counts,
        }

    def to_markdown(self) -> str:
        """The report for the MLflow run and the Prefect UI."""
        head = {
            "ok": "no drift beyond the warning limits",
            "warn": "WARNING: drift",
            "stop": "STOPPED: drift beyond a stop limit",
        }[self.level]
        lines = [
            f"# Data drift: {head}",
            "",
            f"- reference: {self.reference}",
            f"- current: {self.current}",
            "",
            "| statistic | value | warn at | stop at | verdict |",
            "|---|---|---|---|---|",
        ]
        for name, value in self.statistics.items():
            rule = self.rules.get(name)
            if rule is None:
                continue
            lines.append(
                f"| {name} | {value:.4g} | {_fmt(rule.get('warn'))} | "
                f"{_fmt(rule.get('stop'))} | {self.levels[name].upper()} |"
            )
        lines += ["", "| described | reference | current |", "|---|---|---|"]
        for what in ("interactions_per_user_mean", "interactions_per_user_median"):
            lines.append(
                f"| {what} | {self.statistics[f'reference_{what}']:.4g} | "
                f"{self.statistics[what]:.4g} |"
            )
        for what in ("rows", "users", "items"):
            lines.append(
                f"| {what} | {self.counts.get(f'reference_{what}', 0)} | "
                f"{self.counts.get(what, 0)} |"
            )
        flagged = self.at("stop") + self.at("warn")
        if flagged:
            lines += ["", *[f"- {self.describe(n)}" for n in flagged]]
        return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def rating_psi(reference: pd.Series, current: pd.Series) -> float:
    """Population stability index of two rating samples over their distinct values."""
    values = np.union1d(reference.unique(), current.unique())
    p = _shares(reference, values)
    q = _shares(current, values)
    return float(entropy(p, q) + entropy(q, p))


def _shares(sample: pd.Series, values: np.ndarray) -> np.ndarray:
    counts = sample.value_counts().reindex(values, fill_value=0).to_numpy(dtype=np.float64)
    shares = counts / max(counts.sum(), 1.0)
    shares = np.maximum(shares, PSI_FLOOR)
    return shares / shares.sum()


def popularity_js(reference: pd.Series, current: pd.Series) -> float:
    """Jensen-Shannon distance (base 2) of the item popularity shares over the union of items."""
    ref = reference.value_counts()
    cur = current.value_counts()
    items = ref.index.union(cur.index)
    p = ref.reindex(items, fill_value=0).to_numpy(dtype=np.float64)
    q = cur.reindex(items, fill_value=0).to_numpy(dtype=np.float64)
    return float(jensenshannon(p, q, base=2))  # it normalizes p and q itself


def new_share(reference: pd.Series, current: pd.Series) -> float:
    """Share of the distinct values of ``current`` that ``reference`` does not hold."""
    cur = pd.Index(current.unique())
    if len(cur) == 0:
        return 0.0
    return float((~cur.isin(reference.unique())).sum() / len(cur))


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    rules: DriftRules | None = None,
    *,
    reference_name: str = "reference",
    current_name: str = "current",
) -> DriftReport:
    """Drift statistics of ``current`` against ``reference`` (interaction tables), judged by
    ``rules``.

    Raises
    ------
    DataValidationError
        Either table is empty (there is no distribution to compare).
    """
    rules = rules or DriftRules()
    for name, frame in ((reference_name, reference), (current_name, current)):
        if frame.empty:
            raise DataValidationError(
                f"the {name} snapshot has no interactions, so drift cannot be measured; "
                "collect data into it, or set validation.drift.enabled=false"
            )
    per_ref = reference.groupby("user", sort=False).size()
    per_cur = current.groupby("user", sort=False).size()
    stats = {
        "rating_ks": float(ks_2samp(reference["rating"], current["rating"]).statistic),
        "rating_psi": rating_psi(reference["rating"], current["rating"]),
        "item_popularity_js": popularity_js(reference["item"], current["item"]),
        "new_user_share": new_share(reference["user"], current["user"]),
        "new_item_share": new_share(reference["item"], current["item"]),
        "interactions_per_user_ks": float(ks_2samp(per_ref, per_cur).statistic),
        "interactions_per_user_mean": float(per_cur.mean()),
        "interactions_per_user_median": float(per_cur.median()),
        "reference_interactions_per_user_mean": float(per_ref.mean()),
        "reference_interactions_per_user_median": float(per_ref.median()),
    }
    levels: dict[str, Level] = {}
    for name, limit in rules.thresholds().items():
        value = stats[name]
        if limit.stop is not None and value >= limit.stop:
            levels[name] = "stop"
        elif limit.warn is not None and value >= limit.warn:
            levels[name] = "warn"
        else:
            levels[name] = "ok"
    counts = {
        "rows": len(current),
        "users": len(per_cur),
        "items": current["item"].nunique(),
        "reference_rows": len(reference),
        "reference_users": len(per_ref),
        "reference_items": reference["item"].nunique(),
    }
    report = DriftReport(
        stats,
        levels,
        {n: t.model_dump() for n, t in rules.thresholds().items()},
        reference_name,
        current_name,
        {k: int(v) for k, v in counts.items()},
    )
    for name in report.at("warn") + report.at("stop"):
        log.warning("data drift: %s", report.describe(name))
    return report


def raise_for_stop(report: DriftReport) -> None:
    """Raise :class:`DataValidationError` when a statistic reached its stop limit."""
    stopped = report.at("stop")
    if stopped:
        raise DataValidationError(
            "data drift beyond a stop limit, against "
            + report.reference
            + ": "
            + "; ".join(report.describe(n) for n in stopped)
            + ". The run stopped before training and the champion is unchanged. If this data "
            "is right, raise or unset the limit named (e.g. validation.drift."
            f"{stopped[0]}.stop), or disable the check with validation.drift.enabled=false",
            report=report.to_dict(),
        )


def plot(reference: pd.DataFrame, current: pd.DataFrame, path: str | Path) -> Path:
    """Rating histograms overlaid, and the item popularity curves (share by rank, log-log)."""
    from recsys_core.plotting import pyplot

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    values = np.union1d(reference["rating"].unique(), current["rating"].unique())
    width = float(np.min(np.diff(values))) if len(values) > 1 else 1.0
    for frame, label, shift in ((reference, "reference", -0.2), (current, "current", 0.2)):
        shares = frame["rating"].value_counts(normalize=True).reindex(values, fill_value=0)
        left.bar(
            values + shift * width, shares.to_numpy(), width=0.4 * width, label=label, alpha=0.8
        )
        pop = frame["item"].value_counts(normalize=True).to_numpy()
        right.loglog(np.arange(1, len(pop) + 1), pop, label=label)
    left.set(title="Rating distribution", xlabel="rating", ylabel="share of interactions")
    right.set(title="Item popularity", xlabel="item rank", ylabel="share of interactions")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
