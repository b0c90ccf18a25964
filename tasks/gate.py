"""Gate and promote: judge the challenger, and move ``champion`` only when it passes."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.evaluation.gate import GateConfig, GateDecision, decide
from recsys_core.tracking import registry
from tasks._runtime import IO_RETRIES, IO_RETRY_DELAYS, logger


@task(name="gate", cache_policy=NO_CACHE)
def gate(
    challenger: dict[str, float], *, config: GateConfig, primary: str,
    champion: dict[str, float] | None, champion_version: str | None,
    baseline: dict[str, float] | None,
) -> GateDecision:
    """Decide, with every reason and its numbers."""
    decision = decide(challenger, config=config, primary=primary, champion=champion,
                      baseline=baseline, champion_version=champion_version)
    (logger().info if decision.passed else logger().warning)(decision.summary())
    return decision


@task(name="promote", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS,
      cache_policy=NO_CACHE)
def promote(ref: registry.VersionRef, decision: GateDecision, evidence: dict[str, str]) -> str:
    """Move ``champion`` to ``ref`` (the last step of a passing run); returns the previous one."""
    previous = registry.promote(ref, {
        **evidence,
        "gate_metrics": {m: round(v, 6) for m, v in decision.challenger.items()},
        "gate_reasons": decision.reasons,
    })
    logger().info("%s version %s is now champion (was %s)", ref.name, ref.version,
                  previous.version if previous else "none")
    return previous.version if previous else "none"


@task(name="mark-refused", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS,
      cache_policy=NO_CACHE)
def mark_refused(ref: registry.VersionRef, decision: GateDecision) -> None:
    """Record on the version why it was refused (it keeps ``challenger``; champion stays)."""
    registry.tag_version(ref, {"status": "refused", "gate_reasons": decision.reasons})
