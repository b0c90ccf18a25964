"""The batch-recommendations flow on the embedded default (sqlite MLflow, Prefect test server)."""

from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from flows.batch import BatchParams, batch_recommendations_flow
from recsys_core.data.synthetic import config_for, generate
from recsys_core.exceptions import ConfigError
from recsys_core.features import Interactions
from recsys_core.models import create
from recsys_core.tracking import mlflow_run, registry
from recsys_core.tracking.model_store import STATE_PATH

ROOT = Path(__file__).resolve().parents[2]


def _publish(model, folder: Path, name: str) -> registry.VersionRef:
    run_id = mlflow_run.start_run("batch-test", model.name)
    mlflow_run.log_artifacts(run_id, model.save(folder / "state"), STATE_PATH)
    mlflow_run.end_run(run_id)
    ref = registry.register(name, f"runs:/{run_id}/{STATE_PATH}", run_id, {})
    mlflow.MlflowClient().set_registered_model_alias(name, "champion-ranking", ref.version)
    return ref


def test_batch_flow_writes_parquet_and_records_it(embedded_store, prefect_server):
    workspace = embedded_store
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    # no version behind the alias yet: the flow fails before writing anything, saying why
    with pytest.raises(
        ConfigError,
        match="has no version with alias 'champion-ranking'; train and promote one first",
    ):
        batch_recommendations_flow(
            BatchParams(registered_model="batchtest", out=str(workspace / "recs"))
        )
    assert not (workspace / "recs").exists()
    data = Interactions.from_frame(generate(config_for("tiny")).interactions)
    model = create("implicit-als", {"factors": 4, "iterations": 3}).fit(data)
    ref = _publish(model, workspace, "batchtest")
    out = workspace / "recs"
    result = batch_recommendations_flow(
        BatchParams(registered_model="batchtest", out=str(out), k=4, experiment="batchtest")
    )
    part = out / f"model_version={ref.version}"
    assert result["location"] == str(part) and result["rows"] == data.n_users * 4
    frame = pd.read_parquet(part)
    assert len(frame) == result["rows"] and frame.user.nunique() == data.n_users
    run = mlflow.MlflowClient().get_run(result["run_id"])
    assert run.data.params["location"] == str(part)
    assert run.data.params["model_version"] == ref.version
    assert run.data.metrics["rows"] == result["rows"]
    assert run.data.tags["recsys.trigger"] == "manual"
    sample = mlflow.artifacts.load_text(f"runs:/{result['run_id']}/batch/sample.csv")
    assert sample.startswith("user,rank,item,score\n") and len(sample.splitlines()) == 21
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["batch-recommendations"])),
            limit=1,
        )
    assert str(part) in artifact.data and f"{result['rows']:,}" in artifact.data
    # the same flow from the command line
    from typer.testing import CliRunner

    from recsys_cli.main import app

    cli = CliRunner().invoke(
        app,
        [
            "recommend",
            "--all",
            "--out",
            str(workspace / "cli"),
            "-k",
            "2",
            "--registered-model",
            "batchtest",
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert (
        f"{data.n_users * 2:,} rows for {data.n_users:,} users of version {ref.version}"
        in cli.output
    )
    assert (
        len(pd.read_parquet(workspace / "cli" / f"model_version={ref.version}")) == data.n_users * 2
    )


def test_batch_deployment_runs_after_training():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    batch, train = deployments["batch-recommendations"], deployments["train-daily"]
    assert batch["entrypoint"] == "flows/batch.py:batch_recommendations_flow"
    path, func = batch["entrypoint"].split(":")
    assert f"def {func}(" in (ROOT / path).read_text()
    assert batch["concurrency_limit"]["limit"] == 1 and batch["enforce_parameter_schema"]
    assert batch["work_pool"] == train["work_pool"]
    (b,), (t,) = batch["schedules"], train["schedules"]
    # minute hour * * *: the batch starts later in the day than the training
    bm, bh = map(int, b["cron"].split()[:2])
    tm, th = map(int, t["cron"].split()[:2])
    assert (bh, bm) > (th, tm) and b["timezone"] == t["timezone"]
