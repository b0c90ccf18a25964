"""``recsys recommend --explain``: the sentence names the items by title, the numbers are fields
(a version registered in a real embedded MLflow store, as the training flow registers one)."""

import json

from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_core.features import Interactions
from recsys_core.models import create
from recsys_core.tracking import mlflow_run, registry
from tests.recsys_core.serving.test_explain import MOVIES, _ratings

runner = CliRunner()


def test_recommend_explain_names_titles_and_keeps_weights_in_fields(
    embedded_store, tmp_path, monkeypatch
):
    model = create("ease").fit(Interactions.from_frame(_ratings(), item_meta=MOVIES))
    run_id = mlflow_run.start_run("explain-test", "ease")
    mlflow_run.log_artifacts(run_id, model.save(tmp_path / "state"), "model_state")
    mlflow_run.end_run(run_id)
    ref = registry.register("recsys", f"runs:/{run_id}/model_state", run_id, {})
    registry.promote(ref, {}, expected=None, alias="champion-ranking")

    res = runner.invoke(app, ["recommend", "--user", "me", "-k", "1", "--explain", "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout.strip().splitlines()[-1])
    assert (row["item"], row["title"]) == ("181", "Return of the Jedi (1983)")
    assert row["because"] in (
        "Because you watched Star Wars (1977) and Fargo (1996)",
        "Because you watched Fargo (1996) and Star Wars (1977)",
    )
    assert {r["title"] for r in row["reasons"]} == {"Star Wars (1977)", "Fargo (1996)"}
    assert all(isinstance(r["weight"], float) and r["weight"] > 0 for r in row["reasons"])

    from recsys_cli import console as cli_console

    # the CLI's console took its width when it was made: a wide one, so no title is wrapped
    monkeypatch.setattr(cli_console.console, "width", 200)
    table = runner.invoke(app, ["recommend", "--user", "me", "-k", "1", "--explain"])
    assert table.exit_code == 0 and "Because you watched" in table.output
    assert "Return of the Jedi (1983) (181)" in table.output
