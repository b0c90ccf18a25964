"""recsys replay: the replay protocol from the command line, logged to MLflow."""

from __future__ import annotations

import json

from mlflow import MlflowClient
from typer.testing import CliRunner

from recsys_cli.main import app

runner = CliRunner()


def test_replay_prints_metrics_by_revealed_interactions_and_logs_a_run(embedded_store, tmp_path):
    png = tmp_path / "plots" / "replay.png"
    out = runner.invoke(
        app,
        [
            "replay",
            "--synthetic-size",
            "tiny",
            "--model",
            "popularity",
            "-k",
            "5",
            "--plot",
            str(png),
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    m = body["metrics"]
    assert {
        "hit_rate_at_5",
        "ndcg_at_5",
        "mrr_at_5",
        "revealed_0/ndcg_at_5",
        "cold/revealed_0/hit_rate_at_5",
        "warm/ndcg_at_5",
    } <= set(m)
    assert "rmse" not in m  # popularity does not predict ratings
    assert body["test_rows"] == m["n"] > 0 and 0 <= m["ndcg_at_5"] <= m["hit_rate_at_5"] <= 1
    assert png.stat().st_size > 1000
    run = MlflowClient().get_run(body["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["revealed_0/ndcg_at_5"] == m["revealed_0/ndcg_at_5"]
    assert run.data.params["split.strategy"] == "replay" and run.data.params["k"] == "5"
    artifacts = {a.path for a in MlflowClient().list_artifacts(body["run_id"], "plots")}
    assert artifacts == {"plots/replay_by_revealed.png"}


def test_replay_table_of_a_rating_model_without_tracking(embedded_store):
    out = runner.invoke(
        app,
        ["replay", "--synthetic-size", "tiny", "--model", "bias", "--no-track"],
        env={"COLUMNS": "200"},
    )
    assert out.exit_code == 0, out.output
    assert "rmse" in out.output and "cold" in out.output and "1-4" in out.output
    assert "MLflow run" not in out.output
    assert MlflowClient().search_experiments(filter_string="name = 'recsys-replay'") == []


def test_replay_bad_options(embedded_store):
    cases = [
        (["--test-fraction", "1.5"], "--test-fraction must lie strictly between 0 and 1"),
        (["--plot", "x.jpg"], "is not a .png path"),
        (["--model", "nope"], "unknown model 'nope'"),
        (["-k", "0"], "k must be a positive integer"),
        (["-p", "reg"], "bad parameter 'reg'"),
    ]
    for args, message in cases:
        out = runner.invoke(app, ["replay", "--synthetic-size", "tiny", "--no-track", *args])
        assert out.exit_code == 2, (args, out.output)
        assert message in " ".join(out.output.split()), (args, out.output)
