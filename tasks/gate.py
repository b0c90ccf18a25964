"""Gate and promote: judge the challenger, and move ``champion`` only when it passes."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from recsys_core.evaluation.gate import GateConfig, GateDecision, decide
from recsys_core.tracking import registry
from tasks._runtime import IO_RETRY, logger
from tasks.evaluate import Scores
from tasks.run_context import mlflow_link


@task(name="gate", cache_policy=NO_CACHE)
def gate(scores: Scores, *, config: GateConfig, primary: str, run_id: str,
         run_url: str | None = None) -> GateDecision:
    """Decide, with every reason and its numbers; the decision is attached to this task run."""
    decision = decide(scores.challenger, config=config, primary=primary,
                      champion=scores.champion, baseline=scores.baseline,
                      champion_version=scores.champion_version,
                      champion_unavailable=scores.champion_unavailable)
    if decision.champion_unavailable:
        logger().warning(
            "CHAMPION UNAVAILABLE: version %s: %s; policy on_champion_unavailable=%r. "
            "Run `recsys doctor` to list registry versions with missing artifacts.",
            scores.champion_version, decision.champion_unavailable,
            config.on_champion_unavailable)
    (logger().info if decision.passed else logger().warning)(decision.summary())
    create_markdown_artifact(
        key="gate-decision",
        markdown=verdict_markdown(decision, mlflow_link(run_id, run_url)),
        description=decision.summary()[:500],
    )
    return decision


def verdict_markdown(decision: GateDecision, link: str | None = None) -> str:
    """The decision as markdown led by its verdict and failed checks (what a collapsed UI panel
    shows first), then ``link`` (to the other UI), then the full tables."""
    head, _, rest = decision.to_markdown().partition("\n")
    failed = [f"- **{r}**" for r in decision.reasons if r.startswith("FAIL")]
    parts = [head, "", *failed, *([""] if failed else []), *([link, ""] if link else []),
             rest.lstrip("\n")]
    return "\n".join(parts)


@task(name="promote", **IO_RETRY, cache_policy=NO_CACHE)
def promote(ref: registry.VersionRef, decision: GateDecision, evidence: dict[str, str]) -> str:
    """Move ``champion`` to ``ref`` if it is still the version the gate judged; returns the
    previous one. A retry after a partial write converges; a stale verdict is refused."""
    previous = registry.promote(ref, {
        **evidence,
        "gate_metrics": {m: round(v, 6) for m, v in decision.challenger.items()},
        "gate_reasons": decision.reasons,
    }, expected=decision.champion_version)
    logger().info("%s version %s is now champion (was %s)", ref.name, ref.version,
                  previous.version if previous else "none")
    return previous.version if previous else "none"


@task(name="mark-refused", **IO_RETRY, cache_policy=NO_CACHE)
def mark_refused(ref: registry.VersionRef, decision: GateDecision) -> None:
    """Record on the version why it was refused (it keeps ``challenger``; champion stays)."""
    registry.tag_version(ref, {"status": "refused", "gate_reasons": decision.reasons})
