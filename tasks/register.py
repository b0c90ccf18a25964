"""Register and promote: the run's model becomes a version, and each role whose gate passed
moves its champion alias to it."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.evaluation.gate import ROLES
from recsys_core.exceptions import StalePromotionError
from recsys_core.tracking import registry
from tasks._runtime import retried
from tasks.gate import mark_version, promote
from tasks.record import Verdict
from tasks.tracking import log_and_register
from tasks.train import Refit


@task(name="register", cache_policy=NO_CACHE)
def register_version(
    run_id: str,
    model_dir: str,
    registered_model: str,
    evidence: dict[str, str],
    verdict: Verdict,
    refit: Refit | None,
) -> registry.VersionRef:
    """Register the served model (the refit when there is one, with the judged model beside it
    as ``evaluated_state``) as the challenger, tagged ``status=candidate``."""
    return retried(log_and_register)(
        run_id,
        refit.model_dir if refit else model_dir,
        registered_model,
        {
            **evidence,
            "status": "candidate",
            **verdict.role_tags(),
            **({"refit_data_digest": refit.data_digest} if refit else {}),
        },
        description=verdict.markdown,
        evaluated_dir=model_dir if refit else None,
    )


@task(name="register-failed-refit", cache_policy=NO_CACHE)
def register_failed_refit(
    run_id: str,
    model_dir: str,
    registered_model: str,
    evidence: dict[str, str],
    verdict: Verdict,
    error: str,
) -> str:
    """Register the judged model as a version without alias, tagged ``status=failed`` (the
    evidence of a refit that failed, ``error``); returns the version."""
    ref = retried(log_and_register)(
        run_id,
        model_dir,
        registered_model,
        {
            **evidence,
            "status": "failed",
            "refit_error": error[:4000],
            **verdict.role_tags(passed="failed"),
        },
        description=verdict.markdown,
        alias=None,
    )
    return ref.version


@task(name="promote-roles", cache_policy=NO_CACHE)
def promote_roles(
    ref: registry.VersionRef, verdict: Verdict, evidence: dict[str, str]
) -> dict[str, Any]:
    """Promote every role whose gate passed, then mark the version with the conclusion.

    Returns role -> ``promoted``, ``refused``, ``not-competing``, or the
    :class:`StalePromotionError` of a role whose champion moved meanwhile (the other roles are
    still promoted).
    """
    results: dict[str, Any] = {r: "not-competing" for r in ROLES}
    for role, decision in verdict.decisions.items():
        if not decision.passed:
            results[role] = "refused"
            continue
        try:
            retried(promote)(ref, decision, evidence, role)
            results[role] = "promoted"
        except StalePromotionError as exc:
            results[role] = exc
    promoted = any(v == "promoted" for v in results.values())
    stale = any(isinstance(v, StalePromotionError) for v in results.values())
    retried(mark_version)(
        ref, {"status": "promoted" if promoted else "stale" if stale else "refused"}
    )
    return results
