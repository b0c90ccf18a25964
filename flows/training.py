"""The training flow: collect -> validate -> features -> train -> evaluate -> gate -> promote."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Literal

from prefect import flow
from prefect.states import Completed, State
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recsys_core.data.config import DataConfig
from recsys_core.evaluation.gate import GateConfig, GateDecision, resolve_primary
from recsys_core.evaluation.metrics import METRICS_VERSION
from recsys_core.exceptions import DataValidationError
from recsys_core.features.prepare import Features
from recsys_core.features.splits import SplitConfig
from recsys_core.models.spec import DEFAULT_MODEL, ModelSpec
from recsys_core.redaction import redact
from recsys_core.tracking import mlflow_run
from recsys_core.validation.rules import ValidationRules
from tasks import run_context
from tasks.collect import collect_snapshot
from tasks.evaluate import Scores, evaluate_models
from tasks.features import build_features
from tasks.forget import log_forget_audit
from tasks.gate import gate, mark_refused, promote, verdict_markdown
from tasks.tracking import end_run, log_and_register, log_inputs, log_to_run, start_run
from tasks.train import train_model
from tasks.validate import validate_snapshot

_SCALE = ("rating_min", "rating_max")


class TrainingParams(BaseModel):
    """Parameters of one training run (the Prefect UI shows them as a form).

    Each section is the library's own configuration, with its one default: ``data`` (what to
    collect), ``validation`` (what valid data looks like), ``split``, ``model`` (name and
    hyperparameters, validated against the model's configuration when the parameters are
    built) and ``gate`` (what a challenger must achieve). The rating scale is set once, in
    ``data``; ``validation`` follows it.
    """

    model_config = ConfigDict(extra="forbid")

    data: DataConfig = Field(default_factory=DataConfig, description="what to collect, and how")
    validation: ValidationRules = Field(
        default_factory=ValidationRules,
        description="what valid data looks like (its rating scale follows data)",
    )
    split: SplitConfig = Field(default_factory=SplitConfig, description="the train/test split")
    model: ModelSpec = Field(default_factory=ModelSpec,
                             description="the model to train and its hyperparameters")
    gate: GateConfig = Field(default_factory=GateConfig,
                             description="what the challenger must achieve to become champion")
    k: int = Field(10, ge=1, le=1000, description="length of the top-k lists")
    relevance_threshold: float | None = Field(
        None, description="ratings >= this count as relevant in ranking metrics (None: all)"
    )
    registered_model: str = Field("recsys", min_length=1,
                                  description="MLflow registered model name")
    experiment: str = Field("recsys-training", min_length=1, description="MLflow experiment")
    data_dir: str = Field(".recsys/data", description="folder of snapshots and run files")
    trigger: Literal["auto", "schedule", "manual"] = Field(
        "auto", description="auto: 'schedule' for scheduled runs, 'manual' otherwise"
    )

    @field_validator("k", mode="before")
    @classmethod
    def _positive_k(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError(f"k must be a positive integer, got {value}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_rating_scale(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        data = values.get("data")
        data = data.model_dump() if isinstance(data, DataConfig) else dict(data or {})
        scale = {f: data.get(f, DataConfig.model_fields[f].default) for f in _SCALE}
        rules = values.get("validation")
        if isinstance(rules, ValidationRules):
            explicit = {f: getattr(rules, f) for f in _SCALE if f in rules.model_fields_set}
            rules = {**rules.model_dump(exclude_unset=True)}
        else:
            rules = dict(rules or {})
            explicit = {f: rules[f] for f in _SCALE if f in rules}
        differing = {f: v for f, v in explicit.items() if float(v) != float(scale[f])}
        if differing:
            raise ValueError(
                f"validation sets {differing} but data sets {scale}: set the rating scale once, "
                "in data.rating_min and data.rating_max (validation follows it)"
            )
        return {**values, "validation": {**rules, **scale}}

    def logged(self) -> dict[str, Any]:
        """The parameters as logged to MLflow: ``data.source``, ``model.factors``, ``split.*``..."""
        dump = self.model_dump(mode="json")
        dump["model"] = self.model.flat()
        dump["data"]["source"] = redact(self.data.source)
        return dump


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters.get("params")
    if isinstance(params, TrainingParams):
        return f"train-{params.model.name}"
    model = ((params or {}).get("model") or {}) if isinstance(params, dict) else {}
    return f"train-{model.get('name', DEFAULT_MODEL)}"


@flow(name="training", flow_run_name=_run_name, log_prints=True)
def training_flow(params: TrainingParams = TrainingParams()) -> Any:  # noqa: B008
    """Train, evaluate and gate one model; promote it to ``champion`` only if the gate passes.

    ``params`` is one pydantic model so that the Prefect UI shows every setting, with its
    default and description, as a form; deployments pass ``{"params": {...}}``. Returns the
    outcome (a dict); a refused challenger ends the flow run in a ``Completed`` state named
    ``Refused`` that carries the same outcome.
    """
    tracking_uri = mlflow_run.configure()
    trigger = run_context.trigger(params.trigger)
    run_id, run_url = start_run(params.experiment, f"{params.model.name}-{uuid.uuid4().hex[:6]}", {
        "recsys.trigger": trigger, "recsys.model": params.model.name,
        "recsys.git_commit": mlflow_run.git_commit(), "recsys.metrics_version": METRICS_VERSION,
        "recsys.flow": "training", **run_context.flow_run_tags()})
    workdir = Path(params.data_dir) / "runs" / run_id
    log_forget_audit(run_id)  # the forget requests since the previous run, ids hashed
    outcome: dict[str, Any] = {"run_id": run_id, "run_url": run_url,
                               "tracking_uri": redact(tracking_uri),
                               "flow_run_url": run_context.flow_run_url()}
    status, verdict = "FAILED", "failed"
    try:
        feats, digest = _data(params, run_id, run_url, workdir)
        model_dir, history = train_model(feats, params.model, str(workdir))
        scores = evaluate_models(model_dir, feats, k=params.k,
                                 relevance_threshold=params.relevance_threshold,
                                 registered_model=params.registered_model)
        primary = resolve_primary(params.gate, params.model.predicts_ratings, params.k)
        decision = gate(scores, config=params.gate, primary=primary, run_id=run_id,
                        run_url=run_url)
        _log_results(run_id, scores, decision, history, feats)
        evidence = {"run_id": run_id, "data_digest": digest, "trigger": trigger,
                    "flow_run_id": str(run_context.flow_run_tags()["prefect.flow_run_id"]),
                    "model": params.model.name}
        ref = log_and_register(run_id, model_dir, params.registered_model,
                               {**evidence, "status": "candidate"},
                               description=verdict_markdown(decision, _prefect_link()))
        if decision.passed:
            outcome["previous_champion"] = promote(ref, decision, evidence)  # the last change
        else:
            mark_refused(ref, decision)
        status, verdict = "FINISHED", "promoted" if decision.passed else "refused"
        outcome.update(
            metrics=scores.challenger, baseline=scores.baseline, champion=scores.champion,
            champion_version=scores.champion_version, version=ref.version,
            promoted=decision.passed, gate=decision.summary(),
            gate_reasons=decision.reasons, data_digest=digest,
        )
        if not decision.passed:
            return Completed(name="Refused", message=decision.summary()[:500], data=outcome)
        return outcome
    except BaseException as exc:
        outcome["error"] = redact(str(exc))
        raise
    finally:
        _close(run_id, status, outcome.get("error"), workdir)
        run_context.rename_flow_run(f"train-{params.model.name}-{verdict}")


def _data(params: TrainingParams, run_id: str, run_url: str | None,
          workdir: Path) -> tuple[Features, str]:
    """Collect, validate (stopping the run on failure), split and log the inputs."""
    snap = collect_snapshot(params.data, params.data_dir)
    checked = validate_snapshot(snap, params.validation, params.data_dir, run_id, run_url)
    log_to_run(
        run_id,
        tags={"recsys.validation": "passed" if checked.success else "failed"},
        artifacts=[(checked.quarantine_file, "validation")] if checked.quarantine_file else [],
        json_files={"validation/report.json": checked.report},
        text_files={"validation/report.md": checked.markdown},
    )
    if not checked.success:
        raise DataValidationError(f"data validation failed: {checked.summary}",
                                  report=checked.report)
    feats = build_features(checked.snapshot, params.split, str(workdir / "features"))
    log_inputs(run_id, params.logged(), checked.snapshot, feats.info)
    return feats, checked.snapshot.digest


def _log_results(run_id: str, scores: Scores, decision: GateDecision,
                 history: list[dict[str, float]], feats: Features) -> None:
    """Metrics namespaced (the challenger's own at the top), the curve, plots and the verdict."""
    counts = {f"data/{c}": v for c, v in scores.counts.items() if c not in feats.info}
    log_to_run(
        run_id,
        metrics={**scores.challenger, **counts,
                 **{f"baseline/{m}": v for m, v in scores.baseline.items()},
                 **{f"champion/{m}": v for m, v in (scores.champion or {}).items()}},
        history=history,
        tags={"recsys.baseline_model": scores.baseline_name,
              **({"recsys.champion_version": scores.champion_version}
                 if scores.champion_version else {}),
              **({"recsys.champion_unavailable": redact(scores.champion_unavailable)}
                 if scores.champion_unavailable else {}),
              "recsys.gate": "passed" if decision.passed else "refused",
              "recsys.gate_primary_metric": decision.primary_metric,
              "recsys.gate_reasons": " | ".join(decision.reasons)},
        artifacts=[(p, "plots") for p in scores.plots],
        json_files={"gate/decision.json": decision.to_dict()},
        text_files={"gate/decision.md": decision.to_markdown()},
        description=verdict_markdown(decision, _prefect_link()),
    )


def _prefect_link() -> str | None:
    url = run_context.flow_run_url()
    return f"Prefect flow run: [{url.rsplit('/', 1)[-1]}]({url})" if url else None


def _close(run_id: str, status: str, error: str | None, workdir: Path) -> None:
    try:
        end_run(run_id, status, {"recsys.status": status.lower(),
                                 **({"recsys.error": error[:4000]} if error else {})})
    except Exception:  # noqa: BLE001 - the original error matters more
        logging.getLogger(__name__).exception("could not close MLflow run %s", run_id)
    if not os.environ.get("RECSYS_KEEP_RUN_FILES"):
        shutil.rmtree(workdir, ignore_errors=True)


def outcome_of(result: Any) -> dict[str, Any]:
    """The outcome dict of a flow call, whether the run was promoted or refused."""
    if isinstance(result, State):
        return result.result()
    return result


if __name__ == "__main__":
    training_flow()
