"""``recsys forget``: what it prints and its exit codes, against a real embedded registry and
event store."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_core.data.synthetic import config_for, generate
from recsys_core.events import EventStore
from recsys_core.features import Interactions
from recsys_core.models import create
from recsys_core.tracking import mlflow_run, registry
from recsys_core.tracking.model_store import load_recommender

runner = CliRunner()


def test_forget_rewrites_versions_and_is_a_no_op_the_second_time(embedded_store, monkeypatch):
    url = f"sqlite:///{embedded_store / 'events.db'}"
    monkeypatch.setenv("RECSYS_EVENTS_URL", url)
    monkeypatch.delenv("RECSYS_SERVE_URL", raising=False)
    EventStore(url).upgrade()
    data = Interactions.from_frame(generate(config_for("tiny")).interactions)
    state = create("bias").fit(data).save(embedded_store / "state")
    run_id = mlflow_run.start_run("cli-forget", "r")
    mlflow_run.log_artifacts(run_id, state, "model_state")
    ref = registry.register("recsys", f"runs:/{run_id}/model_state", run_id, {})
    victim = str(data.users.ids[2])

    first = runner.invoke(app, ["forget", "--user", victim, "--reason", "request 12", "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["outcome"] == "done" and f'"{victim}"' not in first.output
    assert [(v["name"], v["version"]) for v in report["versions"]] == [("recsys", ref.version)]
    assert victim not in load_recommender(ref).user_vocab_.to_list()

    again = runner.invoke(app, ["forget", "--user", victim])
    assert again.exit_code == 0 and "already forgotten" in again.output
    unknown = runner.invoke(app, ["forget", "--user", "no-such-user"])
    assert unknown.exit_code == 0 and "no data of this user was found" in unknown.output


def test_an_unreachable_event_store_is_named(embedded_store, monkeypatch):
    monkeypatch.setenv("RECSYS_EVENTS_URL", "postgresql://u:secret@127.0.0.1:9/ev")
    result = runner.invoke(app, ["forget", "--user", "u1"])
    assert result.exit_code == 2
    assert "RECSYS_EVENTS_URL" in result.output and "secret" not in result.output
