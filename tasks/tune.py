"""Tasks of the tune flow: the validation split, asking and telling the study, one trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.features.prepare import Features
from recsys_core.features.splits import SplitConfig
from recsys_core.models.spec import ModelSpec
from recsys_core.tracking import mlflow_run
from recsys_core.tuning import (
    DEFAULTS_ATTR,
    BestParams,
    SearchSpace,
    best_params,
    default_params,
    open_study,
    score_trial,
    study_plots,
    validation_features,
)
from tasks._runtime import IO_RETRY, logger

_io = dict(**IO_RETRY, cache_policy=NO_CACHE)


@task(name="validation-split", cache_policy=NO_CACHE)
def split_validation(feats: Features, split: SplitConfig, folder: str) -> Features:
    """Split the training part again: trials fit on one side and are scored on the other."""
    val = validation_features(feats, split, folder)
    logger().info("validation split: %s", {k: v for k, v in val.info.items() if isinstance(v, int)})
    return val


@task(name="ask-trials", **_io)
def ask_trials(
    study: str,
    storage: str,
    direction: Literal["minimize", "maximize"],
    base: ModelSpec,
    space: SearchSpace,
    n: int,
    seed: int,
) -> list[tuple[int, dict[str, Any]]]:
    """Ask the study for ``n`` new trials: their numbers and sampled parameters.

    The first trial of a new study is ``base``'s own values (those inside the space).
    """
    s = open_study(study, storage, direction, seed)
    dists = {name: rng.distribution() for name, rng in space.items()}
    if not s.trials:  # a new study starts from the model's defaults: the gain is measured
        s.enqueue_trial(default_params(base, space), user_attrs={DEFAULTS_ATTR: True})
    asked = [s.ask(fixed_distributions=dists) for _ in range(n)]
    return [(t.number, dict(t.params)) for t in asked]


@task(name="tell-trial", **_io)
def tell_trial(
    study: str,
    storage: str,
    direction: Literal["minimize", "maximize"],
    number: int,
    value: float | None,
    error: str | None = None,
) -> None:
    """Report a trial's value to the study (``None``: the trial failed, for ``error``)."""
    import optuna

    s = open_study(study, storage, direction)
    if value is None:
        logger().warning("trial %d failed (%s); the study goes on", number, error)
        s.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    else:
        s.tell(number, value, skip_if_finished=True)


@task(name="trial", cache_policy=NO_CACHE, task_run_name="trial-{number}")
def run_trial(
    feats: Features,
    base: ModelSpec,
    params: dict[str, Any],
    *,
    number: int,
    metric: str,
    k: int,
    relevance_threshold: float | None,
    experiment: str,
    parent_run_id: str,
    study: str,
) -> float:
    """Fit and score one trial in a nested MLflow run under the study's run; return its value.

    Never retried: a failed trial is told to the study as failed, and the study goes on.
    """
    spec = ModelSpec(name=base.name, params={**base.params, **params})
    run_id = mlflow_run.start_run(
        experiment,
        f"{study}-trial-{number}",
        {
            "mlflow.parentRunId": parent_run_id,
            "recsys.study": study,
            "recsys.trial": str(number),
            "recsys.model": spec.name,
            "recsys.flow": "tune",
        },
    )
    mlflow_run.log_params(run_id, {"model": spec.flat(), "trial": params})
    try:
        metrics = score_trial(spec, feats, k=k, relevance_threshold=relevance_threshold)
        value = float(metrics[metric])
        mlflow_run.log_metrics(run_id, {**metrics, "objective": value})
    except BaseException as exc:
        mlflow_run.set_tags(run_id, {"recsys.error": str(exc)[:4000]})
        mlflow_run.end_run(run_id, "FAILED")
        raise
    mlflow_run.end_run(run_id, "FINISHED")
    logger().info("trial %d: %s=%.4f with %s", number, metric, value, params)
    return value


@task(name="log-best", **_io)
def log_best(
    study: str,
    storage: str,
    direction: Literal["minimize", "maximize"],
    model: str,
    metric: str,
    parent_run_id: str,
    folder: str,
    failures: dict[int, str] | None = None,
) -> BestParams:
    """The best parameters on the study's run (params, metric, JSON) and the study's plots;
    ``failures`` (trial number -> reason) word the error when no trial completed."""
    s = open_study(study, storage, direction)
    best = best_params(s, model, metric, failures)
    mlflow_run.log_params(parent_run_id, {"best": best.params})
    mlflow_run.log_metrics(
        parent_run_id,
        {
            f"best/{metric}": best.value,
            "trials_complete": best.n_complete,
            **(
                {f"defaults/{metric}": best.default_value} if best.default_value is not None else {}
            ),
        },
    )
    mlflow_run.set_tags(
        parent_run_id, {"recsys.best_trial": str(best.trial), "recsys.best_cli": best.cli_args()}
    )
    mlflow_run.log_json(parent_run_id, best.model_spec(), "tuning/best_params.json")
    for path in study_plots(s, Path(folder) / "plots"):
        mlflow_run.log_artifact(parent_run_id, path, "plots")
    logger().info(
        "best of %d trial(s): trial %d, %s=%.4f; train it with: recsys train %s",
        best.n_complete,
        best.trial,
        metric,
        best.value,
        best.cli_args(),
    )
    return best
