"""Gate and promote: judge the challenger, and move ``champion`` only when it passes."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.evaluation.gate import GateConfig, GateDecision, decide
from recsys_core.tracking import registry
from tasks._runtime import IO_RETRY, logger


@task(name="gate", cache_policy=NO_CACHE)
def gate(
    challenger: dict[str, float], *, config: GateConfig, primary: str,
    champion: dict[str, float] | None, champion_version: str | None,
    baseline: dict[str, float] | None, champion_unavailable: str | None = None,
) -> GateDecision:
    """Decide, with every reason and its numbers."""
    decision = decide(challenger, config=config, primary=primary, champion=champion,
                      baseline=baseline, champion_version=champion_version,
                      champion_unavailable=champion_unavailable)
    if decision.champion_unavailable:
        logger().warning(
            "CHAMPION UNAVAILABLE: version %s: %s; policy on_champion_unavailable=%r. "
            "Run `recsys doctor` to list registry versions with missing artifacts.",
            champion_version, decision.champion_unavailable, config.on_champion_unavailable)
    (logger().info if decision.passed else logger().warning)(decision.summary())
    return decision


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
