"""The training flow: collect -> validate -> features -> train -> evaluate -> gate -> refit ->
promote.

A run competes for one or two serving roles (``ranking``: top-k lists, ``rating``: rating
predictions), each judged by its own gate and held by its own champion alias
(``champion-ranking``, ``champion-rating``). With ``refit_full`` the version that is served is
refit on every row of the split once a gate has passed; the judged model is kept beside it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import Completed, State

from flows.params import TrainingParams
from recsys_core.evaluation.gate import GateDecision
from recsys_core.exceptions import TrainingError
from recsys_core.features.prepare import Features
from recsys_core.models.spec import DEFAULT_MODEL
from recsys_core.redaction import redact
from recsys_core.settings import get_settings
from recsys_core.tracking import registry
from tasks import run_context
from tasks._runtime import configure_retries, release_retries, retried
from tasks.collect import collect_snapshot
from tasks.drift import check_drift
from tasks.evaluate import Scores, evaluate_models
from tasks.features import build_features
from tasks.feedback import log_click_through
from tasks.forget import log_forget_audit
from tasks.gate import baselines_needed, gate
from tasks.record import (
    RunRecord,
    Verdict,
    open_run,
    record_refit,
    record_results,
    record_validation,
)
from tasks.register import promote_roles, register_failed_refit, register_version
from tasks.tracking import end_run, log_inputs
from tasks.train import Refit, refit_model, train_model
from tasks.validate import validate_snapshot


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters.get("params")
    if isinstance(params, TrainingParams):
        return f"train-{params.model.name}"
    model = ((params or {}).get("model") or {}) if isinstance(params, dict) else {}
    return f"train-{model.get('name', DEFAULT_MODEL)}"


@flow(name="training", flow_run_name=_run_name, log_prints=True)
def training_flow(params: TrainingParams = TrainingParams()) -> Any:
    """Train, evaluate and gate one model for each role it competes for; promote it to each
    role's champion alias whose gate passes.

    ``params`` is one pydantic model so that the Prefect UI shows every setting, with its
    default and description, as a form; deployments pass ``{"params": {...}}``. Returns the
    outcome (a dict, with a ``roles`` entry per role); a run that promoted nothing ends in a
    ``Completed`` state named ``Refused`` that carries the same outcome.
    """
    retry_policy = configure_retries()  # RECSYS_IO_RETRIES/_DELAYS for every I/O task
    trigger = run_context.trigger(params.trigger)
    try:
        run = open_run(params.experiment, params.model.name, trigger, params.data_dir)
    except BaseException:
        release_retries(retry_policy)
        raise
    status, verdict_name = "FAILED", "failed"
    try:
        log_forget_audit(run.run_id)  # the forget requests since the previous run, ids hashed
        log_click_through(run.run_id, params.registered_model)  # when RECSYS_EVENTS_URL is set
        feats, digest = _data(params, run)
        model_dir, history = train_model(feats, params.model, str(run.workdir))
        roles = params.competing_roles()
        scores = _evaluate(params, model_dir, feats, roles)
        verdict = Verdict.of(_gate(params, run, scores, roles))
        refitting = bool(verdict.passed) and params.refit_full
        refit_tag = "pending" if refitting else "none: no gate passed"
        refit_tag = refit_tag if params.refit_full else "off"
        record_results(run.run_id, scores, verdict, history, feats.info, refit_tag)
        evidence = run.evidence(digest, params.data.pseudonymize_users)
        refit = _refit(params, feats, run, model_dir, evidence, verdict) if refitting else None
        ref = register_version(
            run.run_id, model_dir, params.registered_model, evidence, verdict, refit
        )
        run.outcome["version"] = ref.version
        results = promote_roles(ref, verdict, evidence)  # the last change
        promoted = run.conclude(scores, verdict, results, ref.version, digest, refit)
        status = "FINISHED"
        verdict_name = ("promoted-" + "+".join(promoted)) if promoted else "refused"
        if not promoted:
            return Completed(name="Refused", message=run.outcome["gate"][:500], data=run.outcome)
        return run.outcome
    except BaseException as exc:
        run.outcome["error"] = redact(str(exc))
        raise
    finally:
        _close(run, status)
        run_context.rename_flow_run(f"train-{params.model.name}-{verdict_name}")
        release_retries(retry_policy)


def _data(params: TrainingParams, run: RunRecord) -> tuple[Features, str]:
    """Collect, validate and compare with the champion's data (stopping the run on failure or
    on drift past a stop limit), split and log the inputs. The snapshot is read once, by the
    validation, and passed on in memory."""
    snap = retried(collect_snapshot)(params.data, params.data_dir)
    checked = validate_snapshot(snap, params.validation, params.data_dir, run.run_id, run.run_url)
    record_validation(run.run_id, checked)
    check_drift(
        checked.snapshot,
        params.validation.drift,
        params.data_dir,
        params.registered_model,
        run.run_id,
        run.run_url,
        frame=checked.frame,
    )
    feats = build_features(
        checked.snapshot,
        params.split,
        str(run.workdir / "features"),
        frames=(checked.frame, checked.items),
    )
    retried(log_inputs)(run.run_id, params.logged(), checked.snapshot, feats.info)
    return feats, checked.snapshot.digest


def _evaluate(params: TrainingParams, model_dir: str, feats: Features, roles: list[str]) -> Scores:
    return evaluate_models(
        model_dir,
        feats,
        k=params.k,
        relevance_threshold=params.relevance_threshold,
        registered_model=params.registered_model,
        baselines=baselines_needed(
            params.gate, roles, params.model.predicts_ratings, params.split.strategy
        ),
        champion_aliases={r: registry.alias_of(r) for r in roles},
        engine=params.evaluation_engine,
        released_fits=2 if params.refit_full else 1,
    )


def _gate(
    params: TrainingParams, run: RunRecord, scores: Scores, roles: list[str]
) -> dict[str, GateDecision]:
    return gate(
        scores,
        gates=params.gate,
        roles=roles,
        k=params.k,
        predicts_ratings=params.model.predicts_ratings,
        run_id=run.run_id,
        run_url=run.run_url,
        split=params.split.strategy,
    )


def _refit(
    params: TrainingParams,
    feats: Features,
    run: RunRecord,
    model_dir: str,
    evidence: dict[str, str],
    verdict: Verdict,
) -> Refit:
    """Refit on every row of the split. A refit that fails registers the judged model as a
    version without alias, tagged ``status=failed``, and fails the run: no champion moves."""
    try:
        refit = refit_model(feats, params.model, str(Path(model_dir).parent))
    except Exception as exc:
        error = redact(f"{type(exc).__name__}: {exc}")
        version = register_failed_refit(
            run.run_id, model_dir, params.registered_model, evidence, verdict, error
        )
        record_refit(run.run_id, None)
        raise TrainingError(
            f"the refit of {params.model.name!r} on all rows of the split failed ({error}); "
            f"version {version} is marked failed and no champion moved. Re-run the "
            "training, or set refit_full=false to serve the evaluated model"
        ) from exc
    record_refit(run.run_id, refit)
    return refit


def _close(run: RunRecord, status: str) -> None:
    error = run.outcome.get("error")
    try:
        retried(end_run)(
            run.run_id,
            status,
            {"recsys.status": status.lower(), **({"recsys.error": error[:4000]} if error else {})},
        )
    except Exception:
        logging.getLogger(__name__).exception("could not close MLflow run %s", run.run_id)
    if not get_settings().training.keep_run_files:
        shutil.rmtree(run.workdir, ignore_errors=True)


def outcome_of(result: Any) -> dict[str, Any]:
    """The outcome dict of a flow call, whether the run was promoted or refused."""
    if isinstance(result, State):
        return result.result()
    return result


if __name__ == "__main__":
    training_flow()
