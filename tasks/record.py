"""Record: what a training run writes to its MLflow run, built once from what the stages return.

The flow opens a :class:`RunRecord` (the run, its tags and links, the evidence a version
carries) and the gate's decisions become a :class:`Verdict` (the headline, the markdown of
every role's decision and the role tags, computed once); the tasks below write them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.evaluation.gate import ROLES, GateDecision
from recsys_core.evaluation.metrics import METRICS_VERSION
from recsys_core.exceptions import DataValidationError, StalePromotionError
from recsys_core.pseudonyms import PSEUDONYMIZED_TAG
from recsys_core.redaction import redact
from recsys_core.tracking import mlflow_run, registry
from tasks import run_context
from tasks._runtime import retried
from tasks.evaluate import Scores
from tasks.gate import roles_headline, roles_markdown
from tasks.tracking import log_to_run, start_run
from tasks.train import Refit
from tasks.validate import Validated


@dataclass
class RunRecord:
    """The MLflow run of one training flow run and what every later record reuses."""

    run_id: str
    run_url: str | None
    model: str
    trigger: str
    workdir: Path
    flow_run_tags: dict[str, str]
    outcome: dict[str, Any] = field(default_factory=dict)
    """The flow's outcome, filled as the stages end (the flow returns it)."""

    def conclude(
        self,
        scores: Scores,
        verdict: Verdict,
        results: dict[str, Any],
        version: str,
        data_digest: str,
        refit: Refit | None,
    ) -> list[str]:
        """Complete the outcome with what the run concluded; returns the promoted roles.
        Raises the :class:`StalePromotionError` of a role whose champion moved meanwhile."""
        promoted = [r for r, v in results.items() if v == "promoted"]
        self.outcome.update(
            metrics=scores.challenger,
            baselines=scores.baselines,
            version=version,
            promoted=bool(promoted),
            promoted_roles=promoted,
            data_digest=data_digest,
            gate=verdict.headline(),
            refit=None
            if refit is None
            else {
                "data_digest": refit.data_digest,
                "n_ratings": refit.n_ratings,
                "seconds": round(refit.seconds, 3),
            },
            roles=role_outcomes(scores, verdict, results),
        )
        stale = [v for v in results.values() if isinstance(v, StalePromotionError)]
        if stale:
            raise stale[0]
        return promoted

    def evidence(self, data_digest: str, pseudonymized: bool) -> dict[str, str]:
        """What the version and each promotion record about the run that made them."""
        return {
            "run_id": self.run_id,
            "data_digest": data_digest,
            "trigger": self.trigger,
            "flow_run_id": self.flow_run_tags["prefect.flow_run_id"],
            "model": self.model,
            **({PSEUDONYMIZED_TAG: "true"} if pseudonymized else {}),
        }


def open_run(experiment: str, model: str, trigger: str, data_dir: str) -> RunRecord:
    """Start the MLflow run (tagged with the trigger, the commit and the Prefect flow run)."""
    tracking_uri = mlflow_run.configure()
    flow_tags = run_context.flow_run_tags()
    tags = {
        "recsys.trigger": trigger,
        "recsys.model": model,
        "recsys.git_commit": mlflow_run.git_commit(),
        "recsys.metrics_version": METRICS_VERSION,
        "recsys.flow": "training",
        **flow_tags,
    }
    run_id, run_url = retried(start_run)(experiment, f"{model}-{uuid.uuid4().hex[:6]}", tags)
    outcome = {
        "run_id": run_id,
        "run_url": run_url,
        "tracking_uri": redact(tracking_uri),
        "flow_run_url": run_context.flow_run_url(),
    }
    workdir = Path(data_dir) / "runs" / run_id
    return RunRecord(run_id, run_url, model, trigger, workdir, flow_tags, outcome)


@dataclass(frozen=True)
class Verdict:
    """The gate's decisions per role and what is derived from them (computed once)."""

    decisions: dict[str, GateDecision]
    markdown: str
    """Every role's decision (the run's and the version's description)."""

    @classmethod
    def of(cls, decisions: dict[str, GateDecision]) -> Verdict:
        url = run_context.flow_run_url()
        link = f"Prefect flow run: [{url.rsplit('/', 1)[-1]}]({url})" if url else None
        return cls(decisions, roles_markdown(decisions, link))

    @property
    def passed(self) -> list[str]:
        return [r for r, d in self.decisions.items() if d.passed]

    def headline(self, verb: str = "promoted") -> str:
        return roles_headline(self.decisions, verb)

    def role_tags(self, passed: str | None = None) -> dict[str, str]:
        """The version's role tags at registration: refused and not-competing roles (a passed
        role is tagged by its promotion, or ``passed`` when given)."""
        tags = {}
        for role in ROLES:
            d = self.decisions.get(role)
            state = "not-competing" if d is None else "refused" if not d.passed else passed
            if state:
                tags[registry.role_tag(registry.alias_of(role))] = state
        return tags

    def run_tags(self) -> dict[str, str]:
        """The run's ``recsys.gate.<role>...`` tags: verdict, reasons, champion."""
        tags = {"recsys.gate": self.headline("passed")}
        for role in ROLES:
            d = self.decisions.get(role)
            tags[f"recsys.gate.{role}"] = (
                "not-competing" if d is None else ("passed" if d.passed else "refused")
            )
            if d is None:
                continue
            tags[f"recsys.gate.{role}.primary_metric"] = d.primary_metric
            tags[f"recsys.gate.{role}.reasons"] = " | ".join(d.reasons)
            if d.champion_version:
                tags[f"recsys.champion_version.{role}"] = d.champion_version
            if d.champion_unavailable:
                tags[f"recsys.champion_unavailable.{role}"] = redact(d.champion_unavailable)
        return tags


@task(name="record-validation", cache_policy=NO_CACHE)
def record_validation(run_id: str, checked: Validated) -> None:
    """Log the validation report (and the quarantined rows); stop the run when it failed."""
    retried(log_to_run)(
        run_id,
        tags={"recsys.validation": "passed" if checked.success else "failed"},
        artifacts=[(checked.quarantine_file, "validation")] if checked.quarantine_file else [],
        json_files={"validation/report.json": checked.report},
        text_files={"validation/report.md": checked.markdown},
    )
    if not checked.success:
        raise DataValidationError(
            f"data validation failed: {checked.summary}", report=checked.report
        )


@task(name="record-results", cache_policy=NO_CACHE)
def record_results(
    run_id: str,
    scores: Scores,
    verdict: Verdict,
    history: list[dict[str, float]],
    split_info: dict[str, Any],
    refit: str,
) -> None:
    """Metrics namespaced (the challenger's own at the top; ``baseline/<name>/...``,
    ``champion/<role>/...``), the curve, plots and each role's verdict; ``refit``: the
    ``recsys.refit`` tag (``pending``, ``off``, ``none: no gate passed``)."""
    counts = {f"data/{c}": v for c, v in scores.counts.items() if c not in split_info}
    baselines = {
        f"baseline/{b}/{m}": v for b, ms in scores.baselines.items() for m, v in ms.items()
    }
    champions = {
        f"champion/{r}/{m}": v
        for r, c in scores.champions.items()
        for m, v in (c.metrics or {}).items()
    }
    decisions = verdict.decisions
    retried(log_to_run)(
        run_id,
        metrics={**scores.challenger, **counts, **baselines, **champions},
        history=history,
        tags={
            "recsys.baselines": ",".join(scores.baselines),
            **verdict.run_tags(),
            **scores.tags,
            "recsys.refit": refit,
        },
        artifacts=[(p, "plots") for p in scores.plots],
        json_files={f"gate/{r}/decision.json": d.to_dict() for r, d in decisions.items()},
        text_files={f"gate/{r}/decision.md": d.to_markdown() for r, d in decisions.items()},
        description=verdict.markdown,
    )


@task(name="record-refit", cache_policy=NO_CACHE)
def record_refit(run_id: str, refit: Refit | None) -> None:
    """The refit's size and time and the served data's digest; ``None``: the refit failed."""
    if refit is None:
        retried(log_to_run)(run_id, tags={"recsys.refit": "failed"})
        return
    retried(log_to_run)(
        run_id,
        metrics={"refit/n_ratings": refit.n_ratings, "refit/seconds": refit.seconds},
        tags={"recsys.refit": "served", "recsys.refit.data_digest": refit.data_digest},
    )


def role_outcomes(
    scores: Scores, verdict: Verdict, results: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The outcome's ``roles`` entry: per role its alias, verdict and gate figures."""
    out: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        d = verdict.decisions.get(role)
        result = results[role]
        out[role] = {
            "alias": registry.alias_of(role),
            "verdict": "stale" if isinstance(result, Exception) else result,
        }
        if d is not None:
            out[role].update(
                primary_metric=d.primary_metric,
                champion_version=d.champion_version,
                champion=d.champion,
                baseline_name=d.baseline_name,
                baseline=d.baseline,
                gate=d.summary(),
                gate_reasons=d.reasons,
            )
    return out
