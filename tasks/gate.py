"""Gate and promote: judge the challenger for each role it competes for, and move a role's
champion alias only when that role's gate passes."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from recsys_core.evaluation.gate import (
    GateDecision,
    RoleGates,
    baseline_candidates,
    decide,
    resolved,
    strongest_baseline,
)
from recsys_core.tracking import registry
from tasks._runtime import IO_RETRY, logger
from tasks.evaluate import Scores
from tasks.run_context import mlflow_link


def baselines_needed(
    gates: RoleGates, roles: list[str], predicts_ratings: bool, split: str | None = None
) -> list[str]:
    """The baseline models the gates of ``roles`` compare with (each scored once); ``split``:
    the split strategy (under a time or replay split the ranking gate also scores
    recent-popularity)."""
    return list(
        dict.fromkeys(
            name
            for r in roles
            for name in baseline_candidates(gates.for_role(r), predicts_ratings, split)
        )
    )


@task(name="gate", cache_policy=NO_CACHE)
def gate(
    scores: Scores,
    *,
    gates: RoleGates,
    roles: list[str],
    k: int,
    predicts_ratings: bool,
    run_id: str,
    run_url: str | None = None,
    split: str | None = None,
) -> dict[str, GateDecision]:
    """Decide for each role, with every reason and its numbers; each decision is attached to
    this task run (artifact ``gate-<role>``)."""
    decisions = {}
    for role in roles:
        config = resolved(gates.for_role(role), k)
        base = strongest_baseline(
            baseline_candidates(config, predicts_ratings, split),
            scores.baselines,
            config.primary_metric,
        )
        champ = scores.champions.get(role)
        decision = decide(
            scores.challenger,
            config=config,
            primary=config.primary_metric,
            champion=champ.metrics if champ else None,
            baseline=scores.baselines.get(base),
            champion_version=champ.version if champ else None,
            champion_unavailable=champ.unavailable if champ else None,
            role=role,
            baseline_name=base,
        )
        if decision.champion_unavailable:
            logger().warning(
                "CHAMPION UNAVAILABLE (%s): version %s: %s; policy on_champion_unavailable=%r. "
                "Run `recsys doctor` to list registry versions with missing artifacts.",
                role,
                decision.champion_version,
                decision.champion_unavailable,
                config.on_champion_unavailable,
            )
        (logger().info if decision.passed else logger().warning)("%s: %s", role, decision.summary())
        create_markdown_artifact(
            key=f"gate-{role}",
            markdown=verdict_markdown(decision, mlflow_link(run_id, run_url)),
            description=f"{role}: {decision.summary()}"[:500],
        )
        decisions[role] = decision
    return decisions


def verdict_markdown(decision: GateDecision, link: str | None = None) -> str:
    """The decision as markdown led by its verdict and failed checks (what a collapsed UI panel
    shows first), then ``link`` (to the other UI), then the full tables."""
    head, _, rest = decision.to_markdown().partition("\n")
    failed = [f"- **{r}**" for r in decision.reasons if r.startswith("FAIL")]
    parts = [
        head,
        "",
        *failed,
        *([""] if failed else []),
        *([link, ""] if link else []),
        rest.lstrip("\n"),
    ]
    return "\n".join(parts)


def roles_headline(decisions: dict[str, GateDecision], verb: str = "promoted") -> str:
    """``promoted (rating); ranking refused``, or ``refused (ranking, rating)``."""
    passed = [r for r, d in decisions.items() if d.passed]
    refused = [r for r, d in decisions.items() if not d.passed]
    if not passed:
        return f"refused ({', '.join(refused)})"
    return f"{verb} ({', '.join(passed)})" + (f"; {', '.join(refused)} refused" if refused else "")


def roles_markdown(decisions: dict[str, GateDecision], link: str | None = None) -> str:
    """Every role's decision in one markdown text (the run's and the version's description),
    led by the outcome: ``# Gate: promoted (rating); ranking refused``."""
    parts = [f"# Gate: {roles_headline(decisions, 'passed')}", ""]
    if link:
        parts += [link, ""]
    for decision in decisions.values():
        body = verdict_markdown(decision)
        parts += ["#" + body, ""]  # each role's heading one level down
    return "\n".join(parts).rstrip() + "\n"


@task(name="promote", **IO_RETRY, cache_policy=NO_CACHE)
def promote(
    ref: registry.VersionRef, decision: GateDecision, evidence: dict[str, str], role: str
) -> str:
    """Move ``role``'s champion alias to ``ref`` if it is still the version the gate judged;
    returns the previous one. A retry after a partial write converges; a stale verdict is
    refused."""
    alias = registry.alias_of(role)
    previous = registry.promote(
        ref,
        {
            **evidence,
            f"gate.{role}.metrics": {m: round(v, 6) for m, v in decision.challenger.items()},
            f"gate.{role}.reasons": decision.reasons,
        },
        expected=decision.champion_version,
        alias=alias,
    )
    logger().info(
        "%s version %s is now %s (was %s)",
        ref.name,
        ref.version,
        alias,
        previous.version if previous else "none",
    )
    return previous.version if previous else "none"


@task(name="mark-version", **IO_RETRY, cache_policy=NO_CACHE)
def mark_version(ref: registry.VersionRef, tags: dict[str, object]) -> None:
    """Record on the version what the run concluded (refused roles, a failed refit...)."""
    registry.tag_version(ref, tags)
