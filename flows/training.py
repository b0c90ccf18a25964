"""The training flow: collect -> validate -> features -> train -> evaluate -> gate -> promote."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict, Field

from recsys_core.evaluation.gate import GateConfig, resolve_primary
from recsys_core.evaluation.metrics import METRICS_VERSION
from recsys_core.exceptions import DataValidationError
from recsys_core.features.splits import SplitConfig
from recsys_core.models import get_model_class
from recsys_core.tracking import mlflow_run
from tasks.collect import collect_snapshot
from tasks.evaluate import evaluate_baseline, evaluate_champion, evaluate_model
from tasks.features import build_features
from tasks.gate import gate, mark_refused, promote
from tasks.tracking import end_run, log_and_register, log_inputs, log_to_run, start_run
from tasks.train import train_model
from tasks.validate import validate_snapshot


class TrainingParams(BaseModel):
    """Parameters of one training run (the Prefect UI shows them as a form)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        "synthetic",
        description="synthetic[:tiny|small|100k|1m|10m], movielens-100k|1m|10m|20m|25m|32m|"
        "latest-small, a CSV/TSV/Parquet path, or s3://bucket/key",
    )
    synthetic_size: Literal["tiny", "small", "100k", "1m", "10m"] = Field(
        "100k", description="size of the synthetic data set (MovieLens shapes)"
    )
    seed: int = Field(42, description="seed of the synthetic data and of the random split")
    columns: str | None = Field(
        None, description="column mapping for files, e.g. user=userId,item=movieId"
    )
    rating_min: float = Field(1.0, description="lowest valid rating")
    rating_max: float = Field(5.0, description="highest valid rating")
    model: str = Field("sgd-mf", description="model name (recsys models lists them)")
    model_params: dict[str, Any] = Field(
        default_factory=dict, description="model hyperparameters, e.g. {\"factors\": 64}"
    )
    split: Literal["time", "random", "last_k"] = Field(
        "time", description="time: global cutoff (no leak); random; last_k per user"
    )
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of interactions in test")
    k: int = Field(10, ge=1, le=1000, description="length of the top-k lists")
    relevance_threshold: float | None = Field(
        None, description="ratings >= this count as relevant in ranking metrics (None: all)"
    )
    min_rows: int = Field(100, ge=1, description="validation: minimum number of interactions")
    quarantine: bool = Field(
        False, description="remove invalid rows (reported and written aside) instead of failing"
    )
    gate_primary_metric: str = Field("auto", description="auto: rmse, or ndcg_at_k for rankers")
    gate_min_improvement: float = Field(0.001, ge=0, description="required gain over champion")
    gate_thresholds: dict[str, float] = Field(
        default_factory=lambda: {"rmse": 1.2}, description="absolute bounds per metric"
    )
    gate_guard_tolerance: float = Field(0.01, ge=0, description="allowed regression of guards")
    registered_model: str = Field("recsys", description="MLflow registered model name")
    experiment: str = Field("recsys-training", description="MLflow experiment name")
    data_dir: str = Field(".recsys/data", description="folder of snapshots and run files")
    trigger: Literal["auto", "schedule", "manual"] = Field(
        "auto", description="auto: 'schedule' for scheduled runs, 'manual' otherwise"
    )


def _trigger(params: TrainingParams) -> tuple[str, dict[str, str]]:
    from prefect.context import get_run_context
    from prefect.runtime import deployment, flow_run

    tags = {"prefect.flow_run_id": str(flow_run.id or ""),
            "prefect.flow_run_name": str(flow_run.name or "")}
    if deployment.name:
        tags["prefect.deployment"] = str(deployment.name)
    if params.trigger != "auto":
        return params.trigger, tags
    try:
        scheduled = bool(get_run_context().flow_run.auto_scheduled)
    except Exception:  # noqa: BLE001 - no run context: a direct call
        scheduled = False
    return ("schedule" if scheduled else "manual"), tags


@flow(name="training", log_prints=True)
def training_flow(params: TrainingParams = TrainingParams()) -> dict[str, Any]:  # noqa: B008
    """Train, evaluate and gate one model; promote it to ``champion`` only if the gate passes.

    ``params`` is one pydantic model so that the Prefect UI shows every setting, with its
    default and description, as a form; deployments pass ``{"params": {...}}``.
    """
    log = get_run_logger()
    model_cls = get_model_class(params.model)  # unknown names fail before any work
    model_params = model_cls(**params.model_params).get_params()  # and invalid params too
    tracking_uri = mlflow_run.configure()
    trigger, prefect_tags = _trigger(params)
    run_id = start_run(
        params.experiment,
        f"{params.model}-{uuid.uuid4().hex[:6]}",
        {"recsys.trigger": trigger, "recsys.model": params.model, "recsys.git_commit":
         mlflow_run.git_commit(), "recsys.metrics_version": METRICS_VERSION,
         "recsys.flow": "training", **prefect_tags},
    )
    workdir = Path(params.data_dir) / "runs" / run_id
    status, outcome = "FAILED", {"run_id": run_id, "tracking_uri": tracking_uri}
    try:
        snap = collect_snapshot(
            params.source, synthetic_size=params.synthetic_size, seed=params.seed,
            columns=params.columns, rating_scale=(params.rating_min, params.rating_max),
            data_dir=params.data_dir,
        )
        rules = {"rating_min": params.rating_min, "rating_max": params.rating_max,
                 "min_rows": params.min_rows, "quarantine": params.quarantine}
        checked = validate_snapshot(snap, rules, params.data_dir)
        log_to_run(
            run_id,
            tags={"recsys.validation": "passed" if checked.success else "failed"},
            artifacts=[(checked.quarantine_file, "validation")] if checked.quarantine_file
            else [],
            json_files={"validation/report.json": checked.report},
            text_files={"validation/report.md": checked.markdown},
            markdown={"key": "validation-report", "markdown": checked.markdown,
                      "description": "passed" if checked.success else "FAILED"},
        )
        if not checked.success:
            raise DataValidationError(f"data validation failed: {checked.summary}",
                                      report=checked.report)
        snap = checked.snapshot
        split_cfg = SplitConfig(strategy=params.split, test_fraction=params.test_fraction,
                                seed=params.seed)
        feats = build_features(snap, split_cfg, str(workdir / "features"))
        log_inputs(run_id, {
            "model": params.model, "model_params": model_params,
            "data": {"source": params.source, "synthetic_size": params.synthetic_size,
                     "seed": params.seed, "rating_min": params.rating_min,
                     "rating_max": params.rating_max, "quarantine": params.quarantine},
            "split": split_cfg.model_dump(), "k": params.k,
            "relevance_threshold": params.relevance_threshold,
            "gate": {"primary_metric": params.gate_primary_metric,
                     "min_improvement": params.gate_min_improvement},
        }, snap, feats.info)
        model_dir, history = train_model(feats, params.model, params.model_params,
                                         str(workdir))
        log_to_run(run_id, history=history)
        metrics, counts, plot_dir = evaluate_model(model_dir, feats, params.k,
                                                   params.relevance_threshold)
        baseline_name, baseline = evaluate_baseline(feats, model_cls.predicts_ratings, params.k,
                                                    params.relevance_threshold)
        champion_version, champion, champion_unavailable = evaluate_champion(
            params.registered_model, feats, params.k, params.relevance_threshold)
        log_to_run(
            run_id,
            metrics={**metrics, **{f"count_{c}": v for c, v in counts.items()},
                     **{f"baseline_{m}": v for m, v in baseline.items()},
                     **{f"champion_{m}": v for m, v in (champion or {}).items()}},
            tags={"recsys.baseline_model": baseline_name,
                  **({"recsys.champion_version": champion_version} if champion_version else {})},
            artifacts=[(plot_dir, "plots")],
        )
        evidence = {"run_id": run_id, "data_digest": snap.digest, "trigger": trigger,
                    "flow_run_id": prefect_tags.get("prefect.flow_run_id", ""),
                    "model": params.model}
        ref = log_and_register(run_id, model_dir, params.registered_model,
                               {**evidence, "status": "candidate"})
        gate_cfg = GateConfig(
            primary_metric=params.gate_primary_metric,
            min_improvement=params.gate_min_improvement, thresholds=params.gate_thresholds,
            guard_tolerance=params.gate_guard_tolerance,
        )
        primary = resolve_primary(gate_cfg, model_cls.predicts_ratings, params.k)
        decision = gate(metrics, config=gate_cfg, primary=primary, champion=champion,
                        champion_version=champion_version, baseline=baseline,
                        champion_unavailable=champion_unavailable)
        log_to_run(
            run_id,
            tags={"recsys.gate": "passed" if decision.passed else "refused",
                  "recsys.gate_primary_metric": primary,
                  "recsys.gate_reasons": " | ".join(decision.reasons)},
            json_files={"gate/decision.json": decision.to_dict()},
            text_files={"gate/decision.md": decision.to_markdown()},
            markdown={"key": "gate-decision", "markdown": decision.to_markdown(),
                      "description": decision.summary()[:500]},
        )
        if decision.passed:
            previous = promote(ref, decision, evidence)  # the very last step that changes state
            outcome["previous_champion"] = previous
        else:
            mark_refused(ref, decision)
        status = "FINISHED"
        outcome.update(
            metrics=metrics, baseline=baseline, champion=champion, version=ref.version,
            promoted=decision.passed, gate=decision.summary(), data_digest=snap.digest,
        )
        log.info("run %s: %s", run_id, decision.summary())
        return outcome
    except BaseException as exc:
        outcome["error"] = str(exc)
        raise
    finally:
        try:
            end_run(run_id, status, {"recsys.status": status.lower(),
                                     **({"recsys.error": outcome["error"][:4000]}
                                        if "error" in outcome else {})})
        except Exception:  # noqa: BLE001 - the original error matters more
            logging.getLogger(__name__).exception("could not close MLflow run %s", run_id)
        if not os.environ.get("RECSYS_KEEP_RUN_FILES"):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    training_flow()
