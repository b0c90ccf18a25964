"""The tune flow: an Optuna study over one model's hyperparameters, trials run in parallel.

collect -> validate -> features (the training flow's tasks) -> a validation split of the training
part -> trials, asked from the study in batches of ``parallel`` and run as Prefect tasks on a Dask
cluster -> the best parameters and the study's plots on the study's MLflow run.

The flow never registers or promotes a model: its best parameters go to the training flow
(``recsys train --model ... --param ...``, or ``params.model`` of the ``train-daily``
deployment), whose gate judges them on the held-out test part like any other challenger.

Settings of the cluster (read when this module is imported):

- ``RECSYS_DASK_ADDRESS``: the scheduler of an existing Dask cluster (``tcp://host:8786``);
  unset, a local cluster starts for the flow run;
- ``RECSYS_DASK_WORKERS``: workers of the local cluster (default 2, threads of the flow's
  process). Threads share the GIL: BLAS, sgd-mf's serial kernels (``nogil``) and most numpy
  loops release it, but the models' parallel numba kernels and the evaluation's Python code
  hold it (``benchmarks/tune_parallel.py`` measures how much); point ``RECSYS_DASK_ADDRESS`` at
  a cluster of process workers when trials are large.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from prefect import flow
from pydantic import Field, model_validator

from flows.params import RunInputs
from recsys_core.exceptions import DataValidationError
from recsys_core.extras import require
from recsys_core.features.splits import SplitConfig
from recsys_core.models.spec import ModelSpec
from recsys_core.redaction import redact
from recsys_core.settings import get_settings
from recsys_core.tracking import mlflow_run
from recsys_core.tuning import ParamRange, objective_metric, space_for, storage_url
from tasks import run_context
from tasks._runtime import configure_retries, release_retries, retried
from tasks.collect import collect_snapshot
from tasks.features import build_features
from tasks.tracking import end_run, log_to_run, start_run
from tasks.tune import ask_trials, log_best, run_trial, split_validation, tell_trial
from tasks.validate import validate_snapshot


class TuneParams(RunInputs):
    """Parameters of one study (the Prefect UI shows them as a form).

    The data, validation, split and model sections are the training run's own: the model's
    params hold the hyperparameters kept fixed, the search space the tuned ones.
    """

    # the shared sections are flows.params.RunInputs'; the class docstring is the form's text

    split: SplitConfig = Field(
        default_factory=SplitConfig,
        description="the train/test split (applied again to the "
        "training part for the validation split)",
    )
    model: ModelSpec = Field(
        default_factory=ModelSpec, description="the model to tune, and hyperparameters kept fixed"
    )
    space: dict[str, ParamRange] = Field(
        default_factory=dict,
        description="ranges replacing the model's default search space, by hyperparameter, "
        'e.g. {"reg": {"kind": "float", "low": 0.01, "high": 1, "log": true}}',
    )
    metric: str = Field(
        "auto", description="metric to optimize (auto: rmse, or ndcg_at_k for rankers)"
    )
    n_trials: int = Field(20, ge=1, le=10_000, description="trials to add to the study")
    parallel: int = Field(2, ge=1, le=256, description="trials run at the same time")
    study: str | None = Field(
        None, description="study name (default tune-<model>); an existing study resumes"
    )
    storage: str | None = Field(
        None,
        description="Optuna storage URL (default $RECSYS_TUNE_STORAGE, else sqlite in .recsys)",
    )
    seed: int = Field(42, description="seed of the sampler")
    k: int = Field(10, ge=1, le=1000, description="length of the top-k lists")
    relevance_threshold: float | None = Field(
        None, description="ratings >= this count as relevant in ranking metrics (empty: all)"
    )
    experiment: str = Field("recsys-tuning", min_length=1, description="MLflow experiment")
    data_dir: str = Field(".recsys/data", description="folder of snapshots and run files")

    @model_validator(mode="after")
    def _space_fits_model(self) -> TuneParams:
        space_for(self.model.name, self.space)  # ConfigError (a ValueError) when it does not
        return self

    @property
    def study_name(self) -> str:
        return self.study or f"tune-{self.model.name}"


def _task_runner() -> Any:
    """Trials on Dask: the 'tune' extra (a missing one says what to install)."""
    require("prefect_dask", "tune")
    from prefect_dask import DaskTaskRunner

    tuning = get_settings().tuning
    address = (tuning.dask_address or "").strip()
    if address:
        return DaskTaskRunner(address=address)
    workers = tuning.dask_workers
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": False,
            "dashboard_address": None,
        }
    )


@flow(name="tune", task_runner=_task_runner(), log_prints=True)
def tune_flow(params: TuneParams = TuneParams()) -> dict[str, Any]:
    """Add ``n_trials`` trials to the study and log its best parameters; promote nothing.

    Returns the outcome: the study's run, the best parameters (``best``: the training flow's
    ``model`` section) and the counts of trials.
    """
    mlflow_run.configure()
    storage = storage_url(params.storage)
    space = space_for(params.model.name, params.space)
    metric, direction = objective_metric(params.model.predicts_ratings, params.k, params.metric)
    study = params.study_name
    run_id, run_url = retried(start_run)(
        params.experiment,
        f"{study}-{uuid.uuid4().hex[:6]}",
        {
            "recsys.flow": "tune",
            "recsys.model": params.model.name,
            "recsys.study": study,
            "recsys.storage": redact(storage),
            "recsys.objective": f"{direction} {metric}",
            **run_context.flow_run_tags(),
        },
    )
    workdir = Path(params.data_dir) / "runs" / run_id
    outcome: dict[str, Any] = {
        "run_id": run_id,
        "run_url": run_url,
        "study": study,
        "metric": metric,
        "direction": direction,
    }
    status = "FAILED"
    retry_policy = configure_retries()  # RECSYS_IO_RETRIES/_DELAYS for every I/O task
    try:
        snap = retried(collect_snapshot)(params.data, params.data_dir)
        checked = validate_snapshot(snap, params.validation, params.data_dir, run_id, run_url)
        if not checked.success:
            raise DataValidationError(
                f"data validation failed: {checked.summary}", report=checked.report
            )
        feats = build_features(checked.snapshot, params.split, str(workdir / "features"))
        val = split_validation(feats, params.split, str(workdir / "validation"))
        retried(log_to_run)(
            run_id,
            tags={
                "recsys.data_digest": checked.snapshot.digest,
                "recsys.space": str(
                    {n: r.model_dump(exclude_defaults=True) for n, r in space.items()}
                )[:4000],
            },
        )
        failures: dict[int, str] = {}  # trial number -> why it failed
        for start in range(0, params.n_trials, params.parallel):
            batch = retried(ask_trials)(
                study,
                storage,
                direction,
                params.model,
                space,
                min(params.parallel, params.n_trials - start),
                params.seed,
            )
            futures = [
                (
                    number,
                    run_trial.submit(
                        val,
                        params.model,
                        sampled,
                        number=number,
                        metric=metric,
                        k=params.k,
                        relevance_threshold=params.relevance_threshold,
                        experiment=params.experiment,
                        parent_run_id=run_id,
                        study=study,
                    ),
                )
                for number, sampled in batch
            ]
            for number, future in futures:
                future.wait()
                if future.state.is_completed():
                    retried(tell_trial)(study, storage, direction, number, future.result())
                    continue
                # a failed trial is told as failed and the study goes on with the others
                exc = future.result(raise_on_failure=False)
                failures[number] = (
                    f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, BaseException)
                    else str(future.state.message)
                )
                retried(tell_trial)(study, storage, direction, number, None, failures[number])
        best = retried(log_best)(
            study, storage, direction, params.model.name, metric, run_id, str(workdir), failures
        )
        status = "FINISHED"
        outcome.update(
            best=best.model_spec(),
            best_value=best.value,
            best_trial=best.trial,
            default_value=best.default_value,
            trials_complete=best.n_complete,
            trials_failed=len(failures),
            train_command=f"recsys train {best.cli_args()}",
        )
        return outcome
    except BaseException as exc:
        outcome["error"] = redact(str(exc))
        raise
    finally:
        release_retries(retry_policy)
        retried(end_run)(
            run_id,
            status,
            {
                "recsys.status": status.lower(),
                **({"recsys.error": outcome["error"][:4000]} if "error" in outcome else {}),
            },
        )
        if not get_settings().training.keep_run_files:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    tune_flow()
