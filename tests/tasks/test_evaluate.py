"""The evaluate task: each baseline a role needs, and each role's champion re-scored once."""

from recsys_core.data.synthetic import config_for, generate
from recsys_core.features.prepare import build
from recsys_core.features.splits import SplitConfig
from recsys_core.models import create
from recsys_core.tracking import mlflow_run, registry
from recsys_core.tracking.model_store import STATE_PATH
from tasks import evaluate as evaluate_task
from tasks.evaluate import evaluate_models


def test_a_version_holding_both_roles_is_scored_once(workspace, monkeypatch):
    feats = build(
        generate(config_for("tiny")).interactions, None, SplitConfig(), workspace / "features"
    )
    train, _ = feats.train_set()
    challenger = create("sgd-mf", {"epochs": 3, "factors": 4}).fit(train)
    model_dir = challenger.save(workspace / "run" / "model")
    champion = create("sgd-mf", {"epochs": 5, "factors": 8}).fit(train)
    run_id = mlflow_run.start_run("eval-test", "champion")
    mlflow_run.log_artifacts(run_id, champion.save(workspace / "champion"), STATE_PATH)
    ref = registry.register("evaltest", f"runs:/{run_id}/{STATE_PATH}", run_id, {})
    for alias in registry.ROLE_ALIASES.values():
        registry.promote(ref, {}, expected=None, alias=alias)

    scored: list[str] = []
    real = evaluate_task.evaluate
    monkeypatch.setattr(
        evaluate_task,
        "evaluate",
        lambda model, *a, **kw: scored.append(model.name) or real(model, *a, **kw),
    )
    scores = evaluate_models(
        str(model_dir),
        feats,
        k=10,
        relevance_threshold=None,
        registered_model="evaltest",
        baselines=["popularity", "bias"],
        champion_aliases=dict(registry.ROLE_ALIASES),
    )
    # the challenger, the two baselines, and the champion once for its two roles
    assert sorted(scored) == sorted(["sgd-mf", "popularity", "bias", "sgd-mf"])
    assert set(scores.baselines) == {"popularity", "bias"}
    assert "rmse" in scores.baselines["bias"] and "rmse" not in scores.baselines["popularity"]
    ranking, rating = scores.champions["ranking"], scores.champions["rating"]
    assert ranking.version == rating.version == ref.version
    assert ranking.metrics == rating.metrics
    assert ranking.metrics["rmse"] != scores.challenger["rmse"]
    # every side judged on the same populations of this split's test users
    sizes = [f"{p}/{n}" for p in ("warm", "cold", "all") for n in ("users", "rows")]
    expected = [scores.challenger[s] for s in sizes]
    assert expected[0] > 0 and expected[-1] == expected[1] + expected[3]
    for other in (ranking.metrics, *scores.baselines.values()):
        assert [other[s] for s in sizes] == expected
    assert "warm/rmse" in scores.baselines["bias"] and "warm/ndcg_at_10" in ranking.metrics


def test_a_replay_split_is_scored_by_the_replay(workspace):
    frame = generate(config_for("tiny")).interactions
    feats = build(frame, None, SplitConfig(strategy="replay"), workspace / "features")
    train, _ = feats.train_set()
    model_dir = create("ease").fit(train).save(workspace / "run" / "model")
    scores = evaluate_models(
        str(model_dir),
        feats,
        k=5,
        relevance_threshold=None,
        registered_model="evaltest-replay",
        baselines=["recent-popularity"],
        champion_aliases={"ranking": registry.ROLE_ALIASES["ranking"]},
        engine="auto",
    )
    _, test = feats.frames()
    # one answer per test interaction, by revealed interactions: the replay's metrics
    assert scores.challenger["n"] == len(test)
    assert {"ndcg_at_5", "recall_at_5", "revealed_0/ndcg_at_5", "cold/hit_rate_at_5"} <= set(
        scores.challenger
    )
    assert scores.baselines["recent-popularity"]["n"] == len(test)
    assert scores.tags["recsys.evaluation.engine"] == "local"
